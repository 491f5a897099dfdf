"""python -m experiments.compare_optimizers: end to end in real subprocesses, errors, resume, summary."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments import compare_optimizers, report
from experiments.cli import run_main
from tests.experiments.processes import compare_command, numbers_of, run_compare_here, sigkill_when_written

ROOT = Path(__file__).resolve().parents[2]
# moons, 20 full-batch epochs: SGD at learning rate 10 diverges, Adam and momentum train
SMALL = ["--problems", "moons", "--optimizers", "sgd:learning_rate=10", "adam", "momentum",
         "--epochs", "20", "--seeds", "1", "--no-tensorboard", "--no-progress"]  # fmt: skip


def _env(**extra: str) -> dict:
    env = dict(os.environ)
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.update(extra)
    return env


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(compare_command(*args), cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=600)


def _last_line(stderr: str) -> str:
    """The message, after any start-up chatter TensorFlow's C++ logging prints first."""
    return stderr.strip().splitlines()[-1]


def _in_process(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_main(compare_optimizers.main, argv)
    return exit_info.value.code, capsys.readouterr().err


# --- the quick run, end to end -------------------------------------------------------------------


@pytest.mark.slow
def test_quick_run_writes_every_output(tmp_path):
    from matplotlib.image import imread
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "quick"
    done = _run("--quick", "--optimizers", "sgd", "adam", "--out", out, "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "| moons | adam |" in done.stdout  # the summary table is printed

    frame = pd.read_csv(out / "results.csv")
    assert list(frame.columns) == ["problem", "optimizer", "seed", "epoch", "loss", "accuracy", "val_loss",
                                   "val_accuracy", "learning_rate", "seconds", "status"]  # fmt: skip
    counts = frame.groupby(["problem", "optimizer", "seed"]).size().to_dict()
    assert counts == {("mnist_mlp", "adam", 0): 1, ("mnist_mlp", "sgd", 0): 1, ("moons", "adam", 0): 50, ("moons", "sgd", 0): 50}
    assert (frame["status"] == "ok").all()
    assert frame.loc[frame["problem"] == "moons", "learning_rate"].eq(0.01).all()  # 004: all at 0.01
    mnist = frame[frame["problem"] == "mnist_mlp"].set_index("optimizer")
    assert mnist.loc["sgd", "learning_rate"] == 0.01 and mnist.loc["adam", "learning_rate"] == 0.001
    # one epoch on 6000 images: Adam is well ahead of SGD at 0.01
    assert mnist.loc["adam", "val_accuracy"] > 0.85 > mnist.loc["sgd", "val_accuracy"] + 0.05

    info = json.loads((out / "run.json").read_text())
    assert info["experiment"] == "compare_optimizers" and info["backend"] == os.environ["KERAS_BACKEND"]
    assert info["processor"] and info["threads"] >= 1 and info["versions"]["keras"]
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4 and set(summary["seeds"]) == {1}
    for name in ["summary.md", "report.md"]:
        assert "| moons | adam |" in (out / name).read_text()
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == ["curves_mnist_mlp.png", "curves_moons.png", "moons_boundaries.png", "time_to_target.png"]
    for png in pngs:
        image = imread(out / "plots" / png)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert f"plots/{png}" in (out / "report.md").read_text()
    assert not (out / "checkpoints").exists()

    events = EventAccumulator(str(out / "tensorboard" / "moons" / "adam" / "seed0" / "train"), size_guidance={"tensors": 0})
    events.Reload()
    tags = events.Tags()["tensors"] + events.Tags()["scalars"]
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= set(tags)
    loss_steps = [event.step for event in events.Tensors("epoch_loss")]
    assert loss_steps == list(range(50))
    validation = EventAccumulator(str(out / "tensorboard" / "moons" / "adam" / "seed0" / "validation"))
    validation.Reload()
    assert "epoch_accuracy" in validation.Tags()["tensors"]

    # --replot re-makes the summary and the plots from the CSV files alone
    (out / "summary.csv").unlink()
    for png in (out / "plots").glob("*.png"):
        png.unlink()
    run_compare_here("--replot", out)
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), summary)
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == pngs


# --- determinism, divergence, resume after SIGKILL -----------------------------------------------


# session, not module: a module fixture is made again whenever a worker returns to the module
@pytest.fixture(scope="session")
def reference_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    run_compare_here(*SMALL, "--out", out)
    return out


@pytest.mark.slow
@pytest.mark.xdist_group("compare_reference_run")  # on one worker, which computes the reference run once
def test_divergence_is_a_result_and_the_other_runs_carry_on(reference_run):
    frame = pd.read_csv(reference_run / "results.csv")
    sgd = frame[frame["optimizer"] == "sgd:learning_rate=10"]
    assert 1 < len(sgd) < 20
    assert sgd["status"].iloc[-1] == "diverged" and (sgd["status"].iloc[:-1] == "ok").all()
    for name in ["adam", "momentum"]:
        run = frame[frame["optimizer"] == name]
        assert len(run) == 20 and (run["status"] == "ok").all()
    summary = pd.read_csv(reference_run / "summary.csv").set_index("optimizer")
    assert summary.loc["sgd:learning_rate=10", "diverged"] == 1
    assert str(summary.loc["sgd:learning_rate=10", "diverged_epochs"]).split(".")[0] == str(len(sgd))
    assert f"diverged 1/1 (epoch {len(sgd)})" in (reference_run / "summary.md").read_text()


@pytest.mark.slow
@pytest.mark.xdist_group("compare_reference_run")
def test_the_same_seeds_in_two_other_processes_give_the_same_files(reference_run, tmp_path):
    # the runs train again in two worker processes: the same seeds give the same numbers there
    run_compare_here(*SMALL, "--out", tmp_path / "parallel", "--jobs", "2")  # spawns its workers
    pd.testing.assert_frame_equal(numbers_of(reference_run / "results.csv"), numbers_of(tmp_path / "parallel" / "results.csv"))
    pd.testing.assert_frame_equal(
        pd.read_csv(reference_run / "boundaries.csv"), pd.read_csv(tmp_path / "parallel" / "boundaries.csv")
    )


@pytest.mark.slow
@pytest.mark.xdist_group("compare_reference_run")
def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(reference_run, tmp_path):
    out = tmp_path / "killed"
    # the fit path, which checkpoints every epoch: on JAX the runs would otherwise train as one
    # vectorised group, which checkpoints by time (its own kill is in test_vectorized.py); the
    # reference's numbers are the same either way
    process = subprocess.Popen(compare_command(*SMALL, "--vectorize", "off", "--out", out), cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait until the last run (momentum) has checkpointed an epoch: the first two are finished
    state = out / "checkpoints" / "moons" / "momentum" / "seed0" / "state.json"
    sigkill_when_written(process, state)
    killed_at = json.loads(state.read_text())["epoch"]
    assert 1 <= killed_at < 20
    partial = pd.read_csv(out / "results.csv")
    assert set(partial["optimizer"]) == {"sgd:learning_rate=10", "adam"}  # finished runs only

    run_compare_here("--resume", out, "--no-progress")  # the process that was killed is the subprocess
    pd.testing.assert_frame_equal(numbers_of(reference_run / "results.csv"), numbers_of(out / "results.csv"))
    assert not (out / "checkpoints").exists()
    assert (out / "report.md").is_file()


# --- bad input: "error: ..." and exit code 2, never a traceback -------------------------------


def test_unknown_optimizer_is_a_usage_error_in_a_subprocess(tmp_path):
    done = _run("--optimizers", "adamm", "--out", tmp_path / "x")
    assert done.returncode == 2
    message = _last_line(done.stderr)
    assert message.startswith("error: ") and "Traceback" not in done.stderr
    assert "unknown optimizer 'adamm'" in message and "sgd, momentum" in message
    assert not (tmp_path / "x").exists()


def test_corrupt_mnist_names_the_file(tmp_path):
    bad = tmp_path / "mnist.npz"
    np.savez(bad, x_train=np.zeros((10, 28, 28), np.uint8), y_train=np.zeros(10, np.uint8),
             x_test=np.zeros((10, 28, 28), np.uint8), y_test=np.zeros(10, np.uint8))  # fmt: skip
    done = _run("--quick", "--problems", "mnist_mlp", "--out", tmp_path / "out", "--no-progress", LAB_MNIST=str(bad))
    assert done.returncode == 2, done.stderr
    message = _last_line(done.stderr)
    assert message.startswith("error: cannot load the data of problem 'mnist_mlp'") and str(bad) in message
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--problems", "cifar"], "unknown problem 'cifar'; valid problems: mnist_mlp, moons, mnist_cnn, digits"),
        (["--optimizers", "adam:learnin_rate=1"], "unknown argument 'learnin_rate' for adam"),
        (["--optimizers", "adam:learning_rate"], "malformed override"),
        (["--optimizers", "adam:learning_rate=-1"], "learning_rate"),
        (["--optimizers", "adam", "adam"], "the same optimizer twice"),
        (["--epochs", "0"], "--epochs: expected a positive integer, got '0'"),
        (["--batch-size", "-3"], "--batch-size: expected a positive integer"),
        (["--seeds", "0"], "--seeds: expected a positive integer"),
        (["--target-accuracy", "1.5"], "--target must be in (0, 1] for an accuracy"),
        (["--problems", "no_such_module:PROBLEM"], "cannot import 'no_such_module'"),
        (["--problems", "lab.problems:PROTOCOLS"], "is a tuple, not a lab.problems.Problem"),
        (["--optimizers", "keras:NoSuchOptimizer"], "keras.optimizers has no attribute 'NoSuchOptimizer'"),
        (["--optimizers", "lab.problems:Problem"], "is not a keras.optimizers.Optimizer subclass"),
        (["--jobs", "0"], "--jobs: expected a positive integer"),
        (["--jobs", "2", "--strategy", "mirrored"], "--jobs and --strategy cannot be combined"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv, message, capsys, tmp_path):
    code, err = _in_process([*argv, "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert "error:" in err and message in err
    assert not (tmp_path / "out" / "results.csv").exists()


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, err = _in_process(["--problems", "moons", "--out", str(blocker / "out")], capsys)
    assert code == 2 and err.startswith("error: cannot write to output folder")


def test_resume_needs_a_run_of_this_experiment(tmp_path, capsys):
    code, err = _in_process(["--resume", str(tmp_path)], capsys)
    assert code == 2 and "no run.json there; it is not a compare_optimizers output folder" in err
    (tmp_path / "run.json").write_text(json.dumps({"experiment": "weight_decay", "spec": {}}))
    code, err = _in_process(["--resume", str(tmp_path)], capsys)
    assert code == 2 and "run.json is not from compare_optimizers (experiment 'weight_decay')" in err
    code, err = _in_process(["--replot", str(tmp_path)], capsys)
    assert code == 2 and "not from compare_optimizers" in err


def test_resume_takes_its_settings_from_the_folder(tmp_path, capsys):
    arguments = ["--problems", "moons", "--optimizers", "adam", "--seeds", "1", "--epochs", "1"]
    (tmp_path / "run.json").write_text(json.dumps({"experiment": "compare_optimizers", "arguments": arguments, "backend": "tensorflow"}))
    code, err = _in_process(["--resume", str(tmp_path), "--epochs", "3"], capsys)
    assert code == 2 and "drop --epochs" in err


@pytest.mark.xdist_group("compare_reference_run")
def test_an_existing_run_is_not_overwritten(reference_run, capsys):
    code, err = _in_process(["--out", str(reference_run)], capsys)
    assert code == 2 and "already holds a run; use --resume" in err


def test_help_documents_every_flag_with_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare_optimizers.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ["--problems", "--optimizers", "--epochs", "--batch-size", "--seeds", "--out", "--target-accuracy",
                 "--no-tensorboard", "--quick", "--replot", "--resume"]:  # fmt: skip
        assert flag in text
    assert "sgd momentum rmsprop adam" in text and "default: 3" in text
    # every registry name is listed (argparse may wrap the list between words)
    assert "sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw, nadam, lion" in " ".join(text.split())


def test_trials_apply_per_problem_defaults():
    from lab.problems import PROBLEMS

    problems = [PROBLEMS[name] for name in compare_optimizers.DEFAULT_PROBLEMS]
    trials = compare_optimizers.declare_trials(problems, compare_optimizers.DEFAULT_OPTIMIZERS, 3)
    assert len(trials) == 2 * 4 * 3
    assert [t.key for t in trials[:2]] == [("mnist_mlp", "sgd", "0"), ("mnist_mlp", "sgd", "1")]
    assert str(trials[-1].folder) == "moons/adam/seed2"
    mnist = [t for t in trials if t.problem.name == "mnist_mlp"]
    moons = [t for t in trials if t.problem.name == "moons"]
    assert {(t.epochs_to_run, t.problem.batch_size) for t in mnist} == {(10, 32)}
    assert {(t.epochs_to_run, t.problem.batch_size) for t in moons} == {(200, None)}
    quick = compare_optimizers.declare_trials([p.quick_version() for p in problems], ["adam"], 1)
    assert {(t.problem.name, t.epochs_to_run) for t in quick} == {("mnist_mlp", 1), ("moons", 50)}
    assert compare_optimizers.declare_trials(problems, ["adam"], 1, epochs=7)[-1].epochs_to_run == 7


# --- summary arithmetic on a hand-made CSV ------------------------------------------------------


def test_summary_arithmetic_on_a_hand_made_csv(tmp_path):
    csv = tmp_path / "results.csv"
    csv.write_text(
        "problem,optimizer,seed,epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds,status\n"
        "moons,adam,0,1,0.60,0.70,0.61,0.80,0.01,1.0,ok\n"
        "moons,adam,0,2,0.40,0.90,0.41,0.96,0.01,2.0,ok\n"
        "moons,adam,0,3,0.30,0.95,0.31,0.94,0.01,3.0,ok\n"
        "moons,adam,1,1,0.50,0.75,0.51,0.90,0.01,1.5,ok\n"
        "moons,adam,1,2,0.30,0.92,0.31,0.92,0.01,3.0,ok\n"
        "moons,adam,1,3,0.20,0.97,0.21,0.97,0.01,4.5,ok\n"
        "moons,sgd,0,1,0.70,0.50,0.70,0.50,0.01,1.0,ok\n"
        "moons,sgd,0,2,nan,0.50,nan,0.50,0.01,2.0,diverged\n"
        "moons,sgd,1,1,0.69,0.55,0.69,0.60,0.01,1.0,ok\n"
        "moons,sgd,1,2,0.68,0.58,0.68,0.62,0.01,2.0,ok\n"
        "moons,sgd,1,3,0.67,0.60,0.67,0.64,0.01,3.0,ok\n"
    )
    summary = report.summarize(pd.read_csv(csv), {"moons": report.Target("accuracy", 0.95)})
    assert summary["optimizer"].tolist() == ["adam", "sgd"]  # the order of results.csv
    summary = summary.set_index("optimizer")
    adam, sgd = summary.loc["adam"], summary.loc["sgd"]
    assert adam["seeds"] == 2
    assert adam["monitor"] == "accuracy"
    assert adam["final_val_mean"] == pytest.approx((0.94 + 0.97) / 2)
    assert adam["final_val_std"] == pytest.approx(np.std([0.94, 0.97], ddof=1))
    assert adam["final_loss_mean"] == pytest.approx(0.25)
    assert adam["reached"] == 2
    assert adam["epochs_to_target_mean"] == pytest.approx((2 + 3) / 2)
    assert adam["seconds_to_target_mean"] == pytest.approx((2.0 + 4.5) / 2)
    assert adam["wall_seconds_mean"] == pytest.approx(3.75)
    assert adam["diverged"] == 0
    assert sgd["reached"] == 0 and np.isnan(sgd["epochs_to_target_mean"])
    assert sgd["diverged"] == 1 and sgd["diverged_epochs"] == "2"
    assert np.isnan(sgd["final_loss_mean"])  # seed 0's loss is NaN: no mean over the other seed alone

    table = report.summary_table(summary.reset_index()).set_index("optimizer")
    assert table.loc["adam", "final val"] == "accuracy 95.50 ± 2.12 %"
    assert table.loc["adam", "epochs to target"] == "2.5"
    assert table.loc["sgd", "epochs to target"] == report.NOT_REACHED
    assert table.loc["sgd", "status"] == "diverged 1/2 (epoch 2)"
    assert table.loc["sgd", "final loss"] == "n/a"
    one_seed = report.summarize(pd.read_csv(csv).query("seed == 0"), {"moons": report.Target("accuracy", 0.95)})
    assert report.summary_table(one_seed)["final val"].tolist() == ["accuracy 94.00 %", "accuracy 50.00 %"]
    partly = report.summarize(pd.read_csv(csv), {"moons": report.Target("accuracy", 0.965)})
    assert report.summary_table(partly).loc[0, "epochs to target"] == "3.0 (1/2 seeds)"
    # a loss target: lower is better
    by_loss = report.summarize(pd.read_csv(csv), {"moons": report.Target("loss", 0.35, higher_is_better=False)})
    assert by_loss.set_index("optimizer").loc["adam", "epochs_to_target_mean"] == pytest.approx((3 + 2) / 2)
