"""The fair protocol (compare_optimizers --tune): end to end in real subprocesses, SIGKILL and
resume, two workers on one storage (on a poisoned test set, which nothing that selects may read),
the range test, pruning, bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import keras
import pandas as pd
import pytest

from experiments import compare_optimizers, hparams
from experiments.tuning import settings as tuning_settings
from experiments.tuning import studies as tuning_studies
from experiments.tuning import trials as tuning_trials
from experiments.cli import run_main
from lab.search_spaces import space_for
from tests.experiments.processes import (
    compare_command,
    numbers_of,
    run_compare_here,
    sigkill_when_written,
    tuning_study,
)

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 3
# moons, 6 full-batch epochs, 3 trials each for SGD and Adam, 1 final seed
SMALL = ["--problems", "moons", "--optimizers", "sgd", "adam", "--epochs", "6", "--seeds", "1",
         "--tune", str(BUDGET), "--no-progress"]  # fmt: skip


def _env() -> dict:
    import os

    env = dict(os.environ)
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _best_by_the_rule(tuning_frame: pd.DataFrame, optimizer: str) -> pd.Series:
    rows = tuning_frame[(tuning_frame["optimizer"] == optimizer) & (tuning_frame["status"] == "ok")]
    return rows.sort_values(["val_accuracy", "trial"], ascending=[False, True]).iloc[0]


# session, not module: a module fixture is made again whenever a worker returns to the module
@pytest.fixture(scope="session")
def reference_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tuning") / "reference"
    run_compare_here(*SMALL, "--out", out)
    return out


# --- the protocol, end to end ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("tuning_reference_run")  # on one worker, which computes the reference run once
def test_a_tuning_run_writes_trials_final_runs_and_the_report(reference_run):
    out = reference_run
    trials = pd.read_csv(out / "tuning.csv")
    assert list(trials.columns) == ["problem", "optimizer", "trial", "learning_rate", "beta_1", "beta_2",
                                    "val_accuracy", "status", "epochs", "seconds"]  # fmt: skip
    assert trials.groupby("optimizer")["trial"].apply(list).to_dict() == {"adam": [0, 1, 2], "sgd": [0, 1, 2]}
    assert set(trials["status"]) <= set(tuning_settings.STATUSES)
    # the trials are the sampler's first points, the same sampler for both optimizers
    for optimizer in ("sgd", "adam"):
        space = space_for(optimizer)
        expected = [tuning_trials.hyperparameters(space, point) for point in tuning_studies.plan(space, BUDGET)]
        rows = trials[trials["optimizer"] == optimizer]
        for (_, row), values in zip(rows.iterrows(), expected):
            assert {name: row[name] for name in values} == pytest.approx(values, rel=1e-12)
    assert trials["learning_rate"].between(1e-5, 10).all()

    results = pd.read_csv(out / "results.csv")
    columns = list(results.columns)
    assert columns[:4] == ["problem", "optimizer", "setting", "seed"]
    assert columns.index("test_accuracy") == columns.index("val_accuracy") + 1
    last = results["epoch"] == 6
    assert results.loc[last, "test_accuracy"].notna().all() and results.loc[~last, "test_accuracy"].isna().all()
    assert last.sum() == 2 * 2 * 1  # optimizers x (tuned, default) x seeds
    tests = pd.read_csv(out / "test.csv")
    assert len(tests) == 4 and tests["test_accuracy"].between(0, 1).all()
    for optimizer in ("sgd", "adam"):
        runs = results[results["optimizer"] == optimizer]
        best = _best_by_the_rule(trials, optimizer)
        assert runs.loc[runs["setting"] == "tuned", "learning_rate"].tolist() == pytest.approx(
            [best["learning_rate"]] * 6, rel=1e-6)
        assert set(runs.loc[runs["setting"] == "default", "learning_rate"]) == {0.01}  # notebook 004's rate
        # the tuned run of seed 0 is the best trial again (seed 0, the same protocol): the same validation score
        seed0 = runs[(runs["setting"] == "tuned") & (runs["seed"] == 0) & (runs["epoch"] == 6)]
        assert seed0["val_accuracy"].iloc[0] == pytest.approx(best["val_accuracy"], abs=1e-6)

    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4 and set(summary["seeds"]) == {1}
    text = (out / "report.md").read_text()
    for needle in ["# Optimizer comparison: equal tuning budgets", "| adam | beta_2 | [0.9, 0.9999], 1 - value log-uniform |",
                   "| sgd | learning_rate | [1e-05, 10], log-uniform |", "## Rankings: defaults and tuned",
                   "- moons: with the defaults", f"after {BUDGET} trials each", "QMCSampler(qmc_type='sobol'",
                   "| moons | sgd | learning_rate ", "95% CI"]:  # fmt: skip
        assert needle in text, needle
    for png in ["expected_best.png", "performance_profiles.png", "curves_moons.png", "optuna/moons_sgd_history.png",
                "optuna/moons_sgd_slice.png", "optuna/moons_adam_history.png", "optuna/moons_adam_slice.png"]:
        assert (out / "plots" / png).stat().st_size > 5000, png
    curves = pd.read_csv(out / "expected_best.csv")
    assert curves.groupby("optimizer")["k"].apply(list).to_dict() == {"adam": [1, 2, 3], "sgd": [1, 2, 3]}
    assert not (out / "checkpoints").exists()

    # every trial and every final run is a session of the HParams dashboard
    sessions = hparams.read_sessions(out / "tensorboard")
    assert len(sessions) == 2 * BUDGET + 4
    first = trials[(trials["optimizer"] == "adam") & (trials["trial"] == 1)].iloc[0]
    session = sessions["tuning/moons/adam/trial1"]
    assert session["learning_rate"] == pytest.approx(first["learning_rate"]) and session["beta_2"] == pytest.approx(first["beta_2"])
    assert session["stage"] == "tuning" and session["trial"] == 1
    assert sessions["moons/sgd/default/seed0"]["learning_rate"] == pytest.approx(0.01)
    assert sessions["moons/adam/default/seed0"]["beta_1"] == pytest.approx(0.9)
    assert list((out / "tensorboard").glob("events.out.tfevents.*.hparams_config"))

    # --replot re-makes the summary from the files alone
    before = pd.read_csv(out / "summary.csv")
    (out / "summary.csv").unlink()
    run_compare_here("--replot", out)
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), before)


@pytest.mark.slow
@pytest.mark.xdist_group("tuning_reference_run")
def test_sigkill_mid_tuning_then_resume_gives_the_uninterrupted_trials_and_results(reference_run, tmp_path):
    out = tmp_path / "killed"
    process = subprocess.Popen(compare_command(*SMALL, "--no-tensorboard", "--out", out), cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # adam's second trial has checkpointed an epoch: SGD's three are told, and adam's first (alone,
    # on the fit path) or none (adam's trials as one vectorised group, on JAX)
    state = out / "checkpoints" / "tuning" / "moons" / "adam" / "trial1" / "state.json"
    sigkill_when_written(process, state)
    url = tuning_studies.default_storage(out)
    optuna = tuning_studies.quiet_optuna()
    running = tuning_study(url, "adam").get_trials(states=(optuna.trial.TrialState.RUNNING,))
    killed = sorted(trial.user_attrs["index"] for trial in running)
    assert killed == (list(range(BUDGET)) if keras.backend.backend() == "jax" else [1])
    assert not (out / "tuning.csv").exists()

    run_compare_here("--resume", out, "--no-progress")  # the process that was killed is the subprocess
    pd.testing.assert_frame_equal(numbers_of(reference_run / "tuning.csv"), numbers_of(out / "tuning.csv"))
    pd.testing.assert_frame_equal(numbers_of(reference_run / "results.csv"), numbers_of(out / "results.csv"))
    adam = tuning_study(url, "adam").get_trials()
    assert len(adam) == BUDGET + len(killed)  # the killed attempts, marked FAIL, and their retries
    failed = [t for t in adam if t.state == optuna.trial.TrialState.FAIL and "status" not in t.user_attrs]
    retries = [t for t in adam if t.system_attrs.get("retry_history")]
    assert len(failed) == len(retries) == len(killed)
    for attempt, retry in zip(failed, sorted(retries, key=lambda t: t.system_attrs["retry_history"])):
        assert retry.system_attrs["retry_history"] == [attempt.number]
        assert retry.params == attempt.params and retry.user_attrs["index"] == attempt.user_attrs["index"]
    assert len(tuning_studies.counted_trials(tuning_study(url, "adam"))) == BUDGET
    assert not (out / "checkpoints").exists() and (out / "report.md").is_file()


@pytest.mark.slow
@pytest.mark.xdist_group("tuning_reference_run")
def test_two_workers_share_the_trials_one_writes_the_report_and_nothing_that_selects_reads_the_test_split(
    reference_run, tmp_path
):
    # both workers tune moons with every test label flipped (tuning_problems.POISONED): a protocol
    # that selected on the test set would pick other points or other final runs than the reference
    poisoned = list(SMALL)
    poisoned[poisoned.index("moons")] = "tests.experiments.tuning_problems:POISONED"
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    processes = [
        subprocess.Popen(compare_command(*poisoned, "--no-tensorboard", "--storage", url, "--out", tmp_path / name),
                         cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    outputs = [process.communicate(timeout=900) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
    reports = [name for name in ("a", "b") if (tmp_path / name / "report.md").exists()]
    assert len(reports) == 1
    assert sum("worker: ran" in stdout for stdout, _ in outputs) == 1
    optuna = tuning_studies.quiet_optuna()
    workers = set()
    for optimizer in ("sgd", "adam"):
        trials = tuning_study(url, optimizer).get_trials()
        assert len(trials) == BUDGET and all(t.state.is_finished() for t in trials)  # exactly N, none retried
        assert sorted(t.user_attrs["index"] for t in trials) == list(range(BUDGET))
        assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == BUDGET
        assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
        workers |= {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2  # both took trials
    chief = tmp_path / reports[0]
    pd.testing.assert_frame_equal(numbers_of(reference_run / "tuning.csv"), numbers_of(chief / "tuning.csv"))
    clean, dirty = numbers_of(reference_run / "results.csv"), numbers_of(chief / "results.csv")
    scored = [c for c in clean.columns if c.startswith("test_")]
    pd.testing.assert_frame_equal(clean.drop(columns=scored), dirty.drop(columns=scored))
    # the same models, the labels flipped: two classes, so every test accuracy is 1 minus the clean one
    last = clean["test_accuracy"].notna()
    flipped = 1 - clean.loc[last, "test_accuracy"].to_numpy()
    assert dirty.loc[last, "test_accuracy"].to_numpy() == pytest.approx(flipped, abs=1e-6)


# --- the range test, pruning ----------------------------------------------------------------------


@pytest.mark.slow
def test_tune_by_finder_uses_the_range_tests_rate_and_reports_its_steps(tmp_path):
    import keras

    from lab.callbacks import find_lr
    from lab.problems import PROBLEMS, protocol_view
    from lab.registry import build_optimizer

    out = tmp_path / "finder"
    run_compare_here("--problems", "moons", "--optimizers", "sgd", "adam", "--epochs", "3", "--seeds", "1",
              "--tune-by", "finder", "--no-progress", "--no-tensorboard", "--out", out)
    trials = pd.read_csv(out / "tuning.csv")
    assert trials["optimizer"].tolist() == ["sgd", "adam"] and (trials["trial"] == 0).all()
    assert trials["steps"].between(10, tuning_settings.FINDER_STEPS).all()
    results = pd.read_csv(out / "results.csv")
    for _, row in trials.iterrows():
        tuned = results[(results["optimizer"] == row["optimizer"]) & (results["setting"] == "tuned")]
        assert tuned["learning_rate"].tolist() == pytest.approx([row["learning_rate"]] * 3, rel=1e-6)
    # the same range test in this process: the same rate
    problem = PROBLEMS["moons"]
    split = protocol_view(problem.split(), "held_out")
    keras.utils.set_random_seed(0)
    model = problem.model(0)
    model.compile(optimizer=build_optimizer("sgd", learning_rate=0.01), loss=problem.loss, steps_per_execution=1,
                  jit_compile=False)
    result = find_lr(model, split.x_train, split.y_train, start_lr=1e-5, end_lr=10.0, num_steps=100,
                     batch_size=len(split.x_train), verify_steps=0)
    assert trials.loc[0, "learning_rate"] == pytest.approx(result.suggest("minimum"), rel=1e-6)
    assert trials.loc[0, "steps"] == len(result.learning_rates)
    text = (out / "report.md").read_text()
    assert "range test" in text and f"sgd {int(trials.loc[0, 'steps'])} / adam" in text


@pytest.mark.slow
def test_pruned_trials_stop_early_and_count_against_the_budget(tmp_path):
    out = tmp_path / "pruned"
    run_compare_here("--problems", "moons", "--optimizers", "sgd", "--epochs", "5", "--seeds", "1", "--tune", "5",
              "--prune", "--no-progress", "--no-tensorboard", "--out", out)
    trials = pd.read_csv(out / "tuning.csv")
    assert trials["trial"].tolist() == [0, 1, 2, 3, 4]
    pruned = trials[trials["status"] == "pruned"]
    assert len(pruned) >= 1 and (pruned["epochs"] < 5).all()
    optuna = tuning_studies.quiet_optuna()
    states = [t.state for t in tuning_study(tuning_studies.default_storage(out), "sgd").get_trials()]
    assert states.count(optuna.trial.TrialState.PRUNED) == len(pruned) and len(states) == 5
    assert "median pruner" in (out / "report.md").read_text()


# --- bad input: one line and exit code 2 ---------------------------------------------------------------


def _in_process(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_main(compare_optimizers.main, argv)
    return exit_info.value.code, capsys.readouterr().err


def _spaces(tmp_path: Path, text: str, name: str = "spaces.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tune", "0"], "error: --tune: the budget must be at least 1 trial per optimizer, got 0"),
        (["--tune", "-2"], "the budget must be at least 1 trial"),
        (["--tune", "2", "--search-space", "{spaces}/unknown.toml"], "adam: unknown hyperparameter 'momentum'"),
        (["--tune", "2", "--search-space", "{spaces}/empty.json"], "adam.learning_rate: empty range"),
        (["--tune", "2", "--storage", "sqlite:////no/such/folder/tuning.db"], "--storage sqlite:////no/such/folder/tuning.db: cannot open it"),
        (["--tune", "2", "--storage", "nosuchdatabase://host/db"], "--storage nosuchdatabase://host/db: cannot open it"),
        (["--tune", "2", "--tune-by", "finder"], "--tune-by finder takes no budget"),
        (["--tune-by", "finder", "--prune"], "--tune-by finder has none"),
    ],
)
def test_bad_tuning_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    (tmp_path / "unknown.toml").write_text("[adam.momentum]\nlow = 0.1\nhigh = 0.9\n")
    (tmp_path / "empty.json").write_text(json.dumps({"adam": {"learning_rate": {"low": 0.1, "high": 0.1}}}))
    argv = [item.replace("{spaces}", str(tmp_path)) for item in argv]
    code, err = _in_process(["--problems", "moons", "--optimizers", "adam", *argv, "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert message in err
    assert not (tmp_path / "out").exists()


def test_resume_of_a_tuning_run_with_another_budget_is_refused(tmp_path, capsys):
    arguments = ["--problems", "moons", "--optimizers", "adam", "--tune", "3"]
    (tmp_path / "run.json").write_text(json.dumps({"experiment": "compare_optimizers", "arguments": arguments,
                                                   "backend": "tensorflow"}))  # fmt: skip
    code, err = _in_process(["--resume", str(tmp_path), "--tune", "8"], capsys)
    assert code == 2 and "drop --tune" in err and err.strip().count("\n") == 0


def test_a_storage_whose_studies_have_another_budget_is_refused(tmp_path, capsys):
    from lab.problems import PROBLEMS

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    pair = tuning_settings.Pair(PROBLEMS["moons"], "adam", space_for("adam"))
    started = tuning_settings.Settings((pair,), "search", 3, 1, None, None, None, url)
    studies = tuning_studies.open_studies(started, url, resume=False)
    assert studies.chief and len(studies.studies["compare_optimizers:moons:adam"].get_trials()) == 3  # queued
    code, err = _in_process(["--problems", "moons", "--optimizers", "adam", "--tune", "4", "--storage", url,
                             "--out", str(tmp_path / "out")], capsys)  # fmt: skip
    assert code == 2 and err.strip().count("\n") == 0
    assert "study 'compare_optimizers:moons:adam' was started with budget 3, this run asks for 4" in err
    assert not (tmp_path / "out").exists()


def test_help_lists_the_tuning_flags(capsys):
    with pytest.raises(SystemExit):
        compare_optimizers.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ["--tune N", "--tune-by {search,finder}", "--search-space FILE", "--storage URL", "--prune"]:
        assert flag in text


def test_the_budget_is_the_queue_and_taking_never_creates_a_trial(tmp_path):
    from lab.problems import PROBLEMS

    optuna = tuning_studies.quiet_optuna()
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    pair = tuning_settings.Pair(PROBLEMS["moons"], "sgd", space_for("sgd"))
    settings = tuning_settings.Settings((pair,), "search", 2, 1, None, None, None, url)
    studies = tuning_studies.open_studies(settings, url, resume=False)
    study = studies.studies[pair.study_name]
    storage = studies.storage
    taken = [tuning_studies.take_trial(storage, study), tuning_studies.take_trial(storage, study)]
    assert [t.user_attrs["index"] for t in taken] == [0, 1]
    for trial in taken:  # as run_trial does first: the queued point
        for name, distribution in tuning_studies.space_distributions(pair.space).items():
            trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)
    assert tuning_studies.take_trials(storage, study) == [] and len(study.get_trials()) == 2
    # a second process joining the studies is a worker, and sees nothing to take
    joined = tuning_studies.open_studies(settings, url, resume=False)
    assert not joined.chief and tuning_studies.take_trial(joined.storage, joined.studies[pair.study_name]) is None
    # what a resume does to a trial a kill left RUNNING: FAIL, and the same point queued again
    assert tuning_studies.retry_running(storage, study) == [0, 1]
    retried = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["index"] for t in retried] == [0, 1]
    assert [t.params for t in retried] == [t.params for t in study.get_trials(states=(optuna.trial.TrialState.FAIL,))]
    point = tuning_studies.plan(pair.space, 2)[0]
    assert retried[0].params == pytest.approx(point)


def test_problems_travel_to_worker_processes():
    import dataclasses
    import pickle

    from lab.problems import PROBLEMS

    for problem in (PROBLEMS["mnist_mlp"], PROBLEMS["mnist_mlp"].quick_version()):
        copy = pickle.loads(pickle.dumps(problem))
        assert repr(copy.data) == repr(problem.data)  # a partial: equal by what it calls, not by identity
        assert dataclasses.replace(copy, data=problem.data) == problem
        assert repr(dict(copy.quick)) == repr(dict(problem.quick))


def test_workers_opening_one_new_storage_at_the_same_moment_all_open_it(tmp_path):
    # Optuna creates a new storage's schema without a lock: unretried, 6 or 7 of 8 simultaneous
    # openings fail with "table ... already exists" or a duplicate schema-version row. Threads
    # race in the database file as processes do, without 8 interpreters importing TensorFlow.
    import threading

    for round_ in range(3):
        url, start, errors = f"sqlite:///{tmp_path / f'new{round_}.db'}", threading.Barrier(8), []

        def open_it():
            start.wait()
            try:
                tuning_studies.open_storage(url)
            except Exception as error:
                errors.append(str(error))

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert tuning_studies.quiet_optuna().get_all_study_summaries(url) == []  # the schema they made is whole
