"""A problem of a user's own, by import path, and a problem without accuracy (the autoencoder),
through the same commands as the lab's problems: compare_optimizers and lr_finder. The user's
problem goes through compare_optimizers in a real subprocess whose only link to the user's module
is PYTHONPATH; the other runs are in the test process (the same import path, one Keras start less
each)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from experiments.cli import run_main

ROOT = Path(__file__).resolve().parents[2]
USER_PROJECT = Path(__file__).resolve().parent / "user_project"  # stands for a project outside the lab


def _run_here(module: str, *args) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_main(importlib.import_module(f"experiments.{module}").main,
                 [*map(str, args), "--no-progress", "--no-tensorboard"])
    assert exit_info.value.code == 0


def _run(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{USER_PROJECT}{os.pathsep}{ROOT}", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.setdefault("KERAS_BACKEND", "tensorflow")
    command = [sys.executable, "-m", f"experiments.{module}", *map(str, args), "--no-progress", "--no-tensorboard"]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_a_users_problem_and_a_keras_optimizer_through_compare_optimizers_and_lr_finder(tmp_path, monkeypatch):
    out = tmp_path / "compare"
    done = _run("compare_optimizers", "--problems", "cancer_problem:PROBLEM", "--optimizers", "sgd", "keras:Adam",
                "--seeds", "2", "--epochs", "4", "--out", out, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = pd.read_csv(out / "results.csv")
    assert set(results["problem"]) == {"cancer"} and list(dict.fromkeys(results["optimizer"])) == ["sgd", "keras:Adam"]
    assert results.groupby(["optimizer", "seed"]).size().tolist() == [4, 4, 4, 4]
    assert (results["status"] == "ok").all()
    final = results.groupby("optimizer").tail(1).set_index("optimizer")
    assert final.loc["keras:Adam", "val_accuracy"] > 0.85  # 4 epochs of Adam learn the data set
    assert final.loc["sgd", "learning_rate"] == pytest.approx(0.01) and final.loc["keras:Adam", "learning_rate"] == pytest.approx(0.001)
    assert "| cancer | keras:Adam |" in (out / "summary.md").read_text()
    assert "breast cancer MLP" in (out / "report.md").read_text()
    assert json.loads((out / "run.json").read_text())["arguments"][:2] == ["--problems", "cancer_problem:PROBLEM"]

    finder = tmp_path / "finder"
    monkeypatch.syspath_prepend(str(USER_PROJECT))
    _run_here("lr_finder", "--problems", "cancer_problem:PROBLEM", "--optimizers", "sgd", "keras:Adam",
              "--num-steps", "20", "--epochs", "3", "--out", finder)
    suggestions = pd.read_csv(finder / "suggestions.csv")
    assert set(suggestions["optimizer"]) == {"sgd", "keras:Adam"} and (suggestions["learning_rate"] > 0).all()
    trainings = pd.read_csv(finder / "results.csv")
    assert trainings.groupby(["optimizer", "setting"]).size().tolist() == [3, 3, 3, 3]
    assert (finder / "range_test.png").is_file() and (finder / "training.png").is_file()


@pytest.mark.slow
def test_the_autoencoder_has_its_loss_and_no_accuracy_columns(tmp_path):
    out = tmp_path / "compare"
    _run_here("compare_optimizers", "--problems", "mnist_autoencoder", "--quick", "--optimizers", "sgd", "adam",
              "--out", out)
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == ["problem", "optimizer", "seed", "epoch", "loss", "val_loss", "learning_rate",
                                     "seconds", "status"]  # fmt: skip
    final = results.set_index("optimizer")
    assert final.loc["adam", "val_loss"] < final.loc["sgd", "val_loss"]  # Adam reconstructs better in one epoch
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["monitor"]) == {"loss"}
    assert "val loss <= 0.02" in (out / "report.md").read_text()
    assert (out / "plots" / "curves_mnist_autoencoder.png").is_file()

    finder = tmp_path / "finder"
    _run_here("lr_finder", "--problems", "mnist_autoencoder", "--quick", "--optimizers", "adam", "--num-steps", "20",
              "--out", finder)
    trainings = pd.read_csv(finder / "results.csv")
    assert "accuracy" not in trainings and "val_accuracy" not in trainings and "val_loss" in trainings
