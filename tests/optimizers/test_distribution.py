"""Every lab optimiser gives the single-device result inside tf.distribute.MirroredStrategy over
two logical CPU devices (TensorFlow only; run in a fresh subprocess, see mirrored_check.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.optimizers.test_serialization import CONFIGURED

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mirrored_strategy_matches_single_device():
    environment = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.optimizers.mirrored_check"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert set(report["optimizers"]) == set(CONFIGURED)
    for name, numbers in report["optimizers"].items():
        assert numbers["moved"] > 1e-2, name
        # the two replicas' gradients are summed in a different order than one device's batch
        assert numbers["max_difference"] < 1e-5, (name, numbers)
