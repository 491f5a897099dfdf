"""The studies on the grid runner: ``--jobs 2`` (spawned processes) gives the numbers of
``--jobs 1``, and a run SIGKILLed mid-trial and ``--resume``d gives the files of an uninterrupted
one.

Every study declares its runs as grid trials and hands them to the one runner
(``experiments.grid.run_grid``), so the kill/resume and the spawn pool are checked once per
mechanism, not once per study: weight_decay's run exercises all three ways a study writes its
files (the grid's rows after each trial; a table of its own after each trial through the
runner's ``after`` hook, ``weight_norms.csv``; tables made from the rows at the end,
``summary.csv``). The main job and the LR finder, which have stages of their own, keep their own
checks (``test_compare_optimizers.py``, ``test_lr_finder_experiment.py``), and so do the
vectorised groups (``test_vectorized.py``) and the tuning workers (``test_tuning*.py``).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from experiments.cli import run_main
from tests.experiments.processes import sigkill_when_written

ROOT = Path(__file__).resolve().parents[2]
QUIET = ("--no-tensorboard", "--no-progress")


@dataclass(frozen=True)
class Study:
    arguments: tuple[str, ...]
    results: str  # the grid's results file
    files: tuple[str, ...]  # the files compared, the results file first
    killed: tuple[str, ...]  # the checkpoint folder of the trial the kill interrupts
    finished_before: int  # trials finished before it
    epochs: int  # of the interrupted trial


STUDIES = {
    # coupled wd 0, 0.01, then decoupled wd 0, 0.01: killed in the third
    "weight_decay": Study(
        ("--quick", "--epochs", "30", "--weight-decays", "0", "0.01"), "results.csv",
        ("results.csv", "weight_norms.csv", "summary.csv"),
        ("moons", "adam_epsilon=1e-08_epsilon_placement=paper", "decoupled", "weight_decay0.0", "seed0"), 2, 30,
    ),
}


def _command(name: str, *args) -> list[str]:
    return [sys.executable, "-m", f"experiments.{name}", *map(str, args)]


def _env() -> dict[str, str]:
    return {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _numbers(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return frame.drop(columns=[column for column in ("seconds",) if column in frame])


def _assert_same_files(study: Study, expected: Path, actual: Path) -> None:
    for name in study.files:
        pd.testing.assert_frame_equal(_numbers(expected / name), _numbers(actual / name), obj=name)


def _run_here(name: str, *args) -> None:
    """The command in this process: one TensorFlow start less where the process is not what is tested."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(importlib.import_module(f"experiments.{name}").main, list(map(str, args)))
    assert exit_info.value.code == 0


# session, not module: a module fixture is made again whenever a worker returns to the module
@pytest.fixture(scope="session")
def reference(request, tmp_path_factory) -> tuple[str, Path]:
    """The uninterrupted --jobs 1 run."""
    name = request.param
    out = tmp_path_factory.mktemp(name) / "reference"
    _run_here(name, *STUDIES[name].arguments, *QUIET, "--out", out)
    return name, out




def _on_one_worker(name: str):
    """The parameter ``name``, its tests on one worker (``--dist loadgroup``): one reference run per study."""
    return pytest.param(name, marks=pytest.mark.xdist_group(f"study_{name}"), id=name)


@pytest.mark.slow
@pytest.mark.parametrize("reference", [_on_one_worker(name) for name in sorted(STUDIES)], indirect=True)
def test_two_jobs_give_the_numbers_of_one(reference, tmp_path):
    name, expected = reference
    study = STUDIES[name]
    _run_here(name, *study.arguments, *QUIET, "--jobs", "2", "--out", tmp_path / "parallel")  # spawns its workers
    _assert_same_files(study, expected, tmp_path / "parallel")
    arguments = json.loads((tmp_path / "parallel" / "run.json").read_text())["arguments"]
    assert arguments[arguments.index("--jobs") + 1] == "2"


@pytest.mark.slow
@pytest.mark.parametrize("reference", [_on_one_worker(name) for name in sorted(STUDIES)], indirect=True)
def test_sigkill_mid_trial_then_resume_gives_the_uninterrupted_files(reference, tmp_path):
    name, expected = reference
    study = STUDIES[name]
    out = tmp_path / "killed"
    process = subprocess.Popen(_command(name, *study.arguments, *QUIET, "--out", out), cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out.joinpath("checkpoints", *study.killed, "state.json")
    sigkill_when_written(process, state)
    killed = json.loads(state.read_text())
    assert 1 <= killed["epoch"] < study.epochs and not killed["finished"]
    # only the trials finished before the kill are in the results file
    partial = pd.read_csv(out / study.results)
    reference_rows = pd.read_csv(expected / study.results)
    labels = list(reference_rows.columns[: list(reference_rows.columns).index("epoch")])
    finished = reference_rows[labels].drop_duplicates().head(study.finished_before)
    pd.testing.assert_frame_equal(partial[labels].drop_duplicates().reset_index(drop=True),
                                  finished.reset_index(drop=True))

    _run_here(name, "--resume", out, "--no-progress")  # the process that was killed is the subprocess
    _assert_same_files(study, expected, out)
    assert not (out / "checkpoints").exists()
