"""Experiments in a process where TensorFlow cannot be imported, as where it is not installed.

TensorBoard logs need TensorFlow's ``tf.summary``; without it an experiment that would write them
stops with one line naming both ways out and exit code 2, and ``--no-tensorboard`` runs it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("jax")  # the backend these processes train on


def _run_without_tensorflow(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    code = (
        "import runpy, sys\n"
        "sys.modules['tensorflow'] = None  # every `import tensorflow` fails\n"
        f"sys.argv = [{module!r}, *sys.argv[1:]]\n"
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "module, args",
    [
        ("experiments.compare_optimizers", ["--quick", "--problems", "moons", "--no-progress"]),
        pytest.param("experiments.gd_variants", ["--quick"], marks=pytest.mark.slow),
        pytest.param("experiments.weight_decay", ["--quick"], marks=pytest.mark.slow),
    ],
)
def test_missing_tensorflow_is_one_line_and_exit_code_2(tmp_path, module, args):
    completed = _run_without_tensorflow(module, *args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr
    message = completed.stderr.strip().splitlines()[-1]
    assert message.startswith("error: TensorBoard logging (keras.callbacks.TensorBoard) needs TensorFlow")
    assert message.endswith(": pip install tensorflow-cpu, or run with --no-tensorboard")


@pytest.mark.slow
def test_no_tensorboard_runs_without_tensorflow(tmp_path):
    out = tmp_path / "out"
    args = ["--problems", "moons", "--optimizers", "adam", "--epochs", "3", "--seeds", "1", "--no-progress"]
    completed = _run_without_tensorflow(
        "experiments.compare_optimizers", *args, "--no-tensorboard", "--out", str(out), cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = pd.read_csv(out / "results.csv")
    assert results["epoch"].tolist() == [1, 2, 3] and (results["status"] == "ok").all()
    assert (out / "plots" / "moons_boundaries.png").stat().st_size > 0
    assert not (out / "tensorboard").exists()
