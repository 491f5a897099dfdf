"""Claiming queued trials is atomic on every storage the lab offers: processes that share a
SQLite file or a PostgreSQL server, all claiming at the same moment, never take one trial twice.

Real processes, a real storage, no Keras training: the claim (``studies.take_trials``) is what is
checked. On SQLite it needs ``BEGIN IMMEDIATE`` transactions (``studies.open_storage``): without
them three processes took 8 to 10 of the 150 trials twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.tuning.studies import open_storage, quiet_optuna

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tuning_storages")]

ROOT = Path(__file__).resolve().parents[2]
QUEUED = 150
PROCESSES = 3
# opens the storage, says it is ready, waits for the go file, then claims trials one by one until none is queued
CLAIMER = """
import json, sys, time
from pathlib import Path
from experiments.tuning.studies import open_storage, quiet_optuna, take_trials
url, go = sys.argv[1], Path(sys.argv[2])
storage = open_storage(url)
study = quiet_optuna().load_study(study_name="claims", storage=storage)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
taken = []
while claimed := take_trials(storage, study, limit=1):
    taken.append(claimed[0].number)
print(json.dumps(taken), flush=True)
"""


def test_processes_claiming_at_once_never_take_a_trial_twice(storage_url, tmp_path):
    study = quiet_optuna().create_study(study_name="claims", storage=open_storage(storage_url))
    for index in range(QUEUED):
        study.enqueue_trial({"x": float(index)}, skip_if_exists=False)
    go = tmp_path / "go"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, "-c", CLAIMER, storage_url, str(go)], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(PROCESSES)]
    for process in processes:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
    go.touch()
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0] * PROCESSES, [stderr for _, stderr in outputs]
    claims = [json.loads(stdout) for stdout, _ in outputs]
    numbers = sorted(number for taken in claims for number in taken)
    assert numbers == list(range(QUEUED)), f"claimed twice: {sorted({n for n in numbers if numbers.count(n) > 1})}"
    # the claims interleaved (more than one process took trials), so the race was there to lose
    assert sum(1 for taken in claims if taken) >= 2
