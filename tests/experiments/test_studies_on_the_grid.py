"""The studies on the grid runner: ``--jobs 2`` (spawned processes) gives the numbers of
``--jobs 1``, and a run SIGKILLed mid-trial and ``--resume``d gives the files of an uninterrupted
one.

Every study declares its runs as grid trials and hands them to the one runner
(``experiments.grid.run_grid``), so the kill/resume and the spawn pool are checked once per
mechanism, not once per study: weight_decay's run exercises all three ways a study writes its
files (the grid's rows after each trial; a table of its own after each trial through the
runner's ``after`` hook, ``weight_norms.csv``; tables made from the rows at the end,
``summary.csv``). The uninterrupted ``--jobs 1`` run they are compared with is the study's own
end-to-end run (``tests/experiments/conftest.py``), made once in a subprocess with its TensorBoard
logs, so the checks also show that those logs leave the numbers as they are. The main job and the
LR finder, which have stages of their own, keep their own checks (``test_compare_optimizers.py``,
``test_lr_finder_experiment.py``), and so do the vectorised groups (``test_vectorized.py``) and the
tuning workers (``test_tuning*.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments import weight_decay as experiment
from experiments.cli import run_main
from tests.experiments.conftest import WEIGHT_DECAY_ARGUMENTS
from tests.experiments.processes import sigkill_when_written

ROOT = Path(__file__).resolve().parents[2]
QUIET = ("--no-tensorboard", "--no-progress")


# the weight-decay study (tests/experiments/conftest.py): coupled wd 0, 0.01, then decoupled wd 0,
# 0.01, 30 epochs each; killed in the third trial
FILES = ("results.csv", "weight_norms.csv", "summary.csv")  # compared; the grid's results file first
KILLED = ("moons", "adam_epsilon=1e-08_epsilon_placement=paper", "decoupled", "weight_decay0.0", "seed0")
FINISHED_BEFORE_THE_KILL = 2
EPOCHS = int(WEIGHT_DECAY_ARGUMENTS[WEIGHT_DECAY_ARGUMENTS.index("--epochs") + 1])


def _command(*args) -> list[str]:
    return [sys.executable, "-m", "experiments.weight_decay", *map(str, args)]


def _env() -> dict[str, str]:
    return {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _numbers(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return frame.drop(columns=[column for column in ("seconds",) if column in frame])


def _assert_same_files(expected: Path, actual: Path) -> None:
    for name in FILES:
        pd.testing.assert_frame_equal(_numbers(expected / name), _numbers(actual / name), obj=name)


def _run_here(*args) -> None:
    """The command in this process: one TensorFlow start less where the process is not what is tested."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(experiment.main, list(map(str, args)))
    assert exit_info.value.code == 0


@pytest.mark.slow
@pytest.mark.xdist_group("weight_decay_run")  # on the worker that made the run it compares to
def test_two_jobs_give_the_numbers_of_one(weight_decay_run, tmp_path):
    _run_here(*WEIGHT_DECAY_ARGUMENTS, *QUIET, "--jobs", "2", "--out", tmp_path / "parallel")  # spawns its workers
    _assert_same_files(weight_decay_run.out, tmp_path / "parallel")
    arguments = json.loads((tmp_path / "parallel" / "run.json").read_text())["arguments"]
    assert arguments[arguments.index("--jobs") + 1] == "2"


@pytest.mark.slow
@pytest.mark.xdist_group("weight_decay_run")
def test_sigkill_mid_trial_then_resume_gives_the_uninterrupted_files(weight_decay_run, tmp_path):
    expected = weight_decay_run.out
    out = tmp_path / "killed"
    process = subprocess.Popen(_command(*WEIGHT_DECAY_ARGUMENTS, *QUIET, "--out", out), cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out.joinpath("checkpoints", *KILLED, "state.json")
    sigkill_when_written(process, state)
    killed = json.loads(state.read_text())
    assert 1 <= killed["epoch"] < EPOCHS and not killed["finished"]
    # only the trials finished before the kill are in the results file
    partial = pd.read_csv(out / FILES[0])
    reference_rows = pd.read_csv(expected / FILES[0])
    labels = list(reference_rows.columns[: list(reference_rows.columns).index("epoch")])
    finished = reference_rows[labels].drop_duplicates().head(FINISHED_BEFORE_THE_KILL)
    pd.testing.assert_frame_equal(partial[labels].drop_duplicates().reset_index(drop=True),
                                  finished.reset_index(drop=True))

    _run_here("--resume", out, "--no-progress")  # the process that was killed is the subprocess
    _assert_same_files(expected, out)
    assert not (out / "checkpoints").exists()
