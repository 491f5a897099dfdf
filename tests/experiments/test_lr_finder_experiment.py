"""experiments.lr_finder: range tests on moons, then trainings at the suggestion and the default."""

import numpy as np
import pandas as pd
import pytest

from experiments import lr_finder as experiment
from experiments.cli import run_main


# the quick run on moons with fewer steps and epochs: the run both the quick test and the kill test read
STEPS, EPOCHS = 20, 12
SMALL = ["--quick", "--problems", "moons", "--optimizers", "sgd", "adam", "--num-steps", str(STEPS), "--epochs",
         str(EPOCHS), "--no-progress"]  # fmt: skip


def _command(*args) -> list[str]:
    import sys

    return [sys.executable, "-m", "experiments.lr_finder", *map(str, args)]


def _environment() -> dict:
    import os

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}


def _numbers(path):
    return pd.read_csv(path).drop(columns=["seconds"])


def _run_here(*args) -> None:
    """The command in this process: one TensorFlow start less where the process is not what is tested."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(experiment.main, list(map(str, args)))
    assert exit_info.value.code == 0


# session, not module: a module fixture is made again whenever a worker returns to the module
@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
    """The uninterrupted run, with its TensorBoard logs: the quick test reads its files, the kill
    test compares with its numbers."""
    out = tmp_path_factory.mktemp("finder") / "reference"
    _run_here(*SMALL, "--out", out)
    return out


@pytest.mark.slow
@pytest.mark.xdist_group("finder_reference_run")  # on the worker that made the run
def test_quick_moons_range_tests_and_trainings(reference_run):
    out = reference_run
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert names == {
        "range_test.csv",
        "range_test.png",
        "suggestions.csv",
        "results.csv",
        "summary.csv",
        "training.png",
        "tensorboard",
        "run.json",  # what --resume reads; the checkpoints are gone once the results are written
    }

    curves = pd.read_csv(out / "range_test.csv")
    assert list(curves.columns) == ["problem", "optimizer", "step", "learning_rate", "loss", "smoothed_loss"]
    assert set(curves["optimizer"]) == {"sgd", "adam"}  # --quick's optimisers
    start, end, steps, beta = 1e-5, 10.0, STEPS, 0.9
    for optimizer, curve in curves.groupby("optimizer"):
        count = len(curve)
        assert 10 < count <= steps
        i = curve["step"].to_numpy()
        np.testing.assert_array_equal(i, np.arange(count))
        # the geometric sweep, step by step
        np.testing.assert_allclose(curve["learning_rate"], start * (end / start) ** (i / (steps - 1)), rtol=1e-9)
        # the smoothed loss is the bias-corrected EMA of the recorded losses
        average, expected = 0.0, []
        for k, loss in enumerate(curve["loss"]):
            average = beta * average + (1 - beta) * loss
            expected.append(average / (1 - beta ** (k + 1)))
        np.testing.assert_allclose(curve["smoothed_loss"], expected, rtol=1e-9)
        # full batch: the first losses are those of the untrained net on two classes, about ln 2
        assert curve["loss"].iloc[0] == pytest.approx(np.log(2), abs=0.1)

    suggestions = pd.read_csv(out / "suggestions.csv")
    assert set(suggestions["method"]) == {"valley", "slide", "minimum", "steep"}
    assert ((suggestions["learning_rate"] >= start / 10) & (suggestions["learning_rate"] <= end)).all()
    chosen = suggestions[suggestions["chosen"]].set_index("optimizer")
    assert (chosen["method"] == "minimum").all()
    for optimizer, row in chosen.iterrows():
        curve = curves[curves["optimizer"] == optimizer]
        # a tenth of a swept rate whose smoothed loss is the lowest outside the trimmed ends
        # (the first 10% and the divergence tail of at most 5 points)
        count = len(curve)
        body = curve.iloc[count // 10 : count - min(5, count // 5)]
        best = body.loc[body["smoothed_loss"].idxmin(), "learning_rate"]
        assert row["learning_rate"] == pytest.approx(best / 10, rel=1e-9)
    assert (suggestions["default_learning_rate"] == 0.01).all()  # notebook 004 on moons

    results = pd.read_csv(out / "results.csv")
    assert list(results.columns[:4]) == ["problem", "optimizer", "setting", "seed"]
    assert len(results) == 2 * 2 * EPOCHS  # optimisers x settings x epochs of moons (full batch)
    assert (results["status"] == "ok").all()
    rates = results.groupby(["optimizer", "setting"])["learning_rate"].agg(["min", "max"])
    for optimizer in ("sgd", "adam"):
        assert rates.loc[(optimizer, "default")].tolist() == pytest.approx([0.01, 0.01])
        assert rates.loc[(optimizer, "suggested")].tolist() == pytest.approx([chosen.loc[optimizer, "learning_rate"]] * 2, rel=1e-6)

    summary = pd.read_csv(out / "summary.csv").set_index(["optimizer", "setting"])
    assert (summary["seed"] == 0).all() and "final_val_accuracy" in summary  # held out: validation, not test
    # 12 full-batch steps at 0.01 barely move the moons net; the range test's rate trains it
    for optimizer in ("sgd", "adam"):
        assert summary.loc[(optimizer, "suggested"), "final_loss"] < summary.loc[(optimizer, "default"), "final_loss"]
    assert (out / "range_test.png").stat().st_size > 20_000
    assert len(list((out / "tensorboard" / "moons").glob("*/*/seed0/train/events.out.tfevents.*"))) == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--start-lr", "1", "--end-lr", "0.1"], "--start-lr"),
        (["--smoothing", "1.0"], "--smoothing"),
        (["--num-steps", "3"], "--num-steps"),
    ],
)
def test_bad_sweeps_exit_with_code_2_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        run_main(experiment.main, [*argv, "--out", str(out)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_default_rates_are_the_notebooks():
    from lab.problems import PROBLEMS

    rates = {name: experiment.default_learning_rate(PROBLEMS["moons"], name) for name in experiment.OPTIMIZERS}
    assert rates == {"sgd": 0.01, "momentum": 0.01, "rmsprop": 0.01, "adam": 0.01}  # notebook 004
    rates = {name: experiment.default_learning_rate(PROBLEMS["mnist_mlp"], name) for name in experiment.OPTIMIZERS}
    assert rates == {"sgd": 0.01, "momentum": 0.01, "rmsprop": 0.001, "adam": 0.001}  # notebook 003
    assert experiment.default_learning_rate(PROBLEMS["mnist_mlp"], "keras:Adam:learning_rate=0.003") == 0.003


# --- SIGKILL + --resume after the range tests, in the trainings, gives the same numbers ---------
# (--jobs N is the grid runner's pool, checked by the main job's and the studies' tests)


@pytest.mark.slow
@pytest.mark.xdist_group("finder_reference_run")  # with the reference run it compares to
def test_sigkill_in_the_trainings_then_resume_equals_an_uninterrupted_run(reference_run, tmp_path):
    import json
    import subprocess
    from pathlib import Path

    from tests.experiments.processes import sigkill_when_written

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "killed"
    process = subprocess.Popen(_command(*SMALL, "--no-tensorboard", "--out", out), cwd=root, env=_environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # trials: sgd default, sgd suggested, adam default, adam suggested; kill inside the third
    state = out / "checkpoints" / "moons" / "adam" / "default" / "seed0" / "state.json"
    sigkill_when_written(process, state)
    assert 1 <= json.loads(state.read_text())["epoch"] < EPOCHS
    _run_here("--resume", out)  # the process that was killed is the subprocess
    pd.testing.assert_frame_equal(_numbers(reference_run / "results.csv"), _numbers(out / "results.csv"))
    assert not (out / "checkpoints").exists()
