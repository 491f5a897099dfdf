"""Running the main job for the end-to-end tests: as a real subprocess (and killing it at a chosen
moment, for the resume tests) or in the test process; its CSV files' numbers and its tuning studies."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

TIMING = ["seconds"]  # the one column that differs between two runs of the same numbers


def compare_command(*args) -> list[str]:
    """``python -m experiments.compare_optimizers ARGS`` with this interpreter, for ``subprocess``."""
    return [sys.executable, "-m", "experiments.compare_optimizers", *map(str, args)]


def run_compare_here(*args) -> None:
    """``compare_optimizers ARGS`` in the test process, which must exit 0: one start of Keras less
    where the process is not what is tested."""
    from experiments import compare_optimizers
    from experiments.cli import run_main

    with pytest.raises(SystemExit) as exit_info:
        run_main(compare_optimizers.main, list(map(str, args)))
    assert exit_info.value.code == 0


def tuning_study(url: str, optimizer: str, problem: str = "moons"):
    """The run's Optuna study of ``problem`` x ``optimizer`` in the storage at ``url``."""
    from experiments.tuning.studies import quiet_optuna

    return quiet_optuna().load_study(study_name=f"compare_optimizers:{problem}:{optimizer}", storage=url)


def numbers_of(path: Path) -> pd.DataFrame:
    """A results CSV without its timing column, to compare two runs row by row."""
    return pd.read_csv(path).drop(columns=TIMING)


def sigkill_when_written(process: subprocess.Popen, path: Path, timeout: float = 300.0) -> None:
    """SIGKILL ``process`` as soon as ``path`` exists (or it exits, or ``timeout`` passes) and
    check that the kill, not a normal exit, ended it."""
    deadline = time.monotonic() + timeout
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, f"the process ended by itself (code {process.returncode})"
