"""Vectorised tuning groups on a shared Optuna storage, SQLite and a real PostgreSQL server:
workers in real subprocesses take whole groups and run no trial twice, and a worker killed with
SIGKILL in the middle of a group leaves a run whose resume gives the uninterrupted trials.

The PostgreSQL server is started here, on loopback (``tests.postgres_server``); where it cannot
be started the PostgreSQL cases skip, saying why, and under CI they fail instead."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import keras
import pandas as pd
import pytest

from experiments.tuning import studies as tuning_studies
from tests.experiments.processes import (
    compare_command,
    numbers_of,
    run_compare_here,
    sigkill_when_written,
    tuning_study,
)

pytestmark = [
    pytest.mark.backend_agnostic,
    pytest.mark.skipif(keras.backend.backend() != "jax", reason="vectorised groups are JAX only"),
    pytest.mark.slow,
    pytest.mark.xdist_group("tuning_storages"),  # one worker: the reference run and the server, made once
]

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 4
OPTIMIZERS = ("sgd", "adam")
# moons, 8 full-batch epochs, 4 trials each of SGD and Adam (one vectorised group per optimiser), 1 final seed
SMALL = ["--problems", "moons", "--optimizers", *OPTIMIZERS, "--epochs", "8", "--seeds", "1",
         "--tune", str(BUDGET), "--no-progress", "--no-tensorboard"]  # fmt: skip


def _env() -> dict:
    return {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("storages") / "reference"
    run_compare_here(*SMALL, "--out", out)
    return out


def test_two_workers_take_whole_groups_and_run_no_trial_twice(reference_run, storage_url, tmp_path):
    processes = [
        subprocess.Popen(compare_command(*SMALL, "--storage", storage_url, "--out", tmp_path / name), cwd=ROOT, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    outputs = [process.communicate(timeout=900) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
    reports = [name for name in ("a", "b") if (tmp_path / name / "report.md").exists()]
    assert len(reports) == 1  # the chief's
    optuna = tuning_studies.quiet_optuna()
    for optimizer in OPTIMIZERS:
        trials = tuning_study(storage_url, optimizer).get_trials()
        # exactly the budget, every trial finished once: none taken twice, none retried
        assert len(trials) == BUDGET and all(t.state.is_finished() for t in trials)
        assert sorted(t.user_attrs["index"] for t in trials) == list(range(BUDGET))
        assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        # the study's trials were one group, taken whole by one worker
        assert len({t.user_attrs["worker"] for t in trials}) == 1, optimizer
    chief = tmp_path / reports[0]
    pd.testing.assert_frame_equal(numbers_of(reference_run / "tuning.csv"), numbers_of(chief / "tuning.csv"))
    pd.testing.assert_frame_equal(numbers_of(reference_run / "results.csv"), numbers_of(chief / "results.csv"))


def test_sigkill_mid_group_then_resume_gives_the_uninterrupted_trials(reference_run, storage_url, tmp_path):
    out = tmp_path / "killed"
    process = subprocess.Popen(compare_command(*SMALL, "--storage", storage_url, "--out", out), cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Adam's group has checkpointed an epoch of its members: SGD's group is told, Adam's is RUNNING
    sigkill_when_written(process, out / "checkpoints" / "tuning" / "moons" / "adam" / "trial1" / "state.json")
    optuna = tuning_studies.quiet_optuna()
    running = tuning_study(storage_url, "adam").get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert sorted(t.user_attrs["index"] for t in running) == list(range(BUDGET))  # the whole group, cut
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in tuning_study(storage_url, "sgd").get_trials())
    assert not (out / "tuning.csv").exists()

    run_compare_here("--resume", out)
    pd.testing.assert_frame_equal(numbers_of(reference_run / "tuning.csv"), numbers_of(out / "tuning.csv"))
    pd.testing.assert_frame_equal(numbers_of(reference_run / "results.csv"), numbers_of(out / "results.csv"))
    adam = tuning_study(storage_url, "adam")
    assert len(adam.get_trials()) == 2 * BUDGET  # the killed attempts, marked FAIL, and their retries
    assert sorted(t.user_attrs["index"] for t in tuning_studies.counted_trials(adam)) == list(range(BUDGET))
    assert not (out / "checkpoints").exists() and (out / "report.md").is_file()
