"""Runs that several test modules check, made once per test run (session fixtures).

A test that uses one carries ``pytest.mark.xdist_group`` with the fixture's name, so that under
``--dist loadgroup`` all of them run on the worker that made it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the weight-decay study, 4 trials of 30 full-batch moons epochs: long enough for a SIGKILL to land
# inside a trial (tests/experiments/test_studies_on_the_grid.py)
WEIGHT_DECAY_ARGUMENTS = ("--quick", "--epochs", "30", "--weight-decays", "0", "0.01")


class CommandRun(NamedTuple):
    out: Path  # the run's output folder
    stdout: str


@pytest.fixture(scope="session")
def weight_decay_run(tmp_path_factory) -> CommandRun:
    """``python -m experiments.weight_decay`` in a real subprocess, TensorBoard logs included: the
    study's end-to-end test (test_weight_decay.py) and the uninterrupted ``--jobs 1`` run the grid
    runner's mechanisms are compared with (test_studies_on_the_grid.py)."""
    out = tmp_path_factory.mktemp("weight_decay") / "reference"
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(
        [sys.executable, "-m", "experiments.weight_decay", *WEIGHT_DECAY_ARGUMENTS, "--no-progress", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return CommandRun(out, completed.stdout)
