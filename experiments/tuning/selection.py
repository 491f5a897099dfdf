"""Selection and the final runs: ``tuning.csv`` from the studies (or from one LR range test per
pair), the best trial of each pair by its validation score, the winner and the defaults re-trained
over seeds, and each final model's one evaluation on the test set."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments import cli
from experiments.grid import RESULTS_FILE, TENSORBOARD, DataCache, Trial, run_grid
from experiments.tuning.settings import (
    FINDER_STEPS,
    FINDER_SUGGESTION,
    TEST_FILE,
    TRIAL_SEED,
    TUNING_FILE,
    Pair,
    Settings,
)
from experiments.tuning.studies import Studies, counted_trials
from experiments.tuning.trials import trial_of
from lab.search_spaces import SearchSpace


def trial_records(settings: Settings, studies: Studies) -> pd.DataFrame:
    """``tuning.csv``: one row per trial index (a retried trial's killed attempt is not one)."""
    rows = []
    names = list(dict.fromkeys(d.name for pair in settings.pairs for d in pair.space))
    for pair in settings.pairs:
        for trial in counted_trials(studies.studies[pair.study_name]):
            attributes = trial.user_attrs
            row = {"problem": pair.problem.name, "optimizer": pair.optimizer, "trial": int(attributes["index"])}
            row.update({name: attributes.get(f"value_{name}", np.nan) for name in names})
            score = attributes.get("score")
            row[pair.monitor] = np.nan if score is None else float(score)
            row.update(status=attributes["status"], epochs=int(attributes["epochs"]), seconds=float(attributes["seconds"]))
            rows.append(row)
    frame = pd.DataFrame(rows)
    return _tidy_tuning_columns(frame, names)


def _tidy_tuning_columns(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    if frame.empty:
        return frame
    scores = sorted(c for c in frame.columns if c.startswith("val_"))
    head = ["problem", "optimizer", "trial", *[n for n in names if n in frame], *scores]
    return frame[head + [c for c in frame.columns if c not in head]]


def select_best(tuning: pd.DataFrame, pair: Pair) -> tuple[dict[str, float], int, bool]:
    """The best trial's hyperparameters, its index and whether it finished ``ok`` (module rule 3).
    Reads ``tuning.csv``'s rows only: validation scores, never the test set."""
    rows = tuning[(tuning["problem"] == pair.problem.name) & (tuning["optimizer"] == pair.optimizer)]
    rows = rows[np.isfinite(rows[pair.monitor].to_numpy(dtype=float))] if pair.monitor in rows else rows.iloc[:0]
    finished = rows[rows["status"] == "ok"]
    candidates, ok = (finished, True) if len(finished) else (rows, False)
    names = [d.name for d in pair.space if d.name in tuning]  # the range test tunes the rate alone
    if candidates.empty:  # every trial's score is NaN: the first point, stated in the report
        first = tuning[(tuning["problem"] == pair.problem.name) & (tuning["optimizer"] == pair.optimizer)]
        first = first.sort_values("trial").iloc[0]
        return {name: float(first[name]) for name in names}, int(first["trial"]), False
    ascending = not pair.problem.higher_is_better
    best = candidates.sort_values([pair.monitor, "trial"], ascending=[ascending, True], kind="stable").iloc[0]
    return {name: float(best[name]) for name in names}, int(best["trial"]), ok


def run_finder(pair: Pair, settings: Settings, data: DataCache) -> dict[str, Any]:
    """``find_lr`` on a seeded model over the space's learning-rate range: ``tuning.csv``'s row."""
    import keras

    from experiments.grid import build_optimizer
    from lab.callbacks import find_lr
    from lab.problems import protocol_view

    rate = next(d for d in pair.space if d.name == "learning_rate")
    split = protocol_view(data(pair.problem), "held_out")
    trial = trial_of(pair, 0, {}, settings)
    keras.backend.clear_session()
    keras.utils.set_random_seed(TRIAL_SEED)
    model = pair.problem.model(TRIAL_SEED)
    model.compile(optimizer=build_optimizer(trial), loss=pair.problem.loss, steps_per_execution=1, jit_compile=False)
    batch_size = settings.batch_size or pair.problem.batch_size or len(split.x_train)
    start = time.perf_counter()
    result = find_lr(model, split.x_train, split.y_train, start_lr=rate.low, end_lr=rate.high,
                     num_steps=FINDER_STEPS, batch_size=batch_size, verify_steps=0)  # the sweep's cost only
    seconds = time.perf_counter() - start
    return {"problem": pair.problem.name, "optimizer": pair.optimizer, "trial": 0,
            "learning_rate": float(result.suggest(FINDER_SUGGESTION)), pair.monitor: np.nan, "status": "ok",
            "epochs": 0, "steps": int(len(result.learning_rates)), "seconds": seconds}


def finder_records(settings: Settings, out: Path) -> pd.DataFrame:
    """Every pair's range test, written to ``tuning.csv`` after each (a resumed run skips those done)."""
    path = out / TUNING_FILE
    frame = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    data = DataCache()
    for pair in settings.pairs:
        done = not frame.empty and ((frame["problem"] == pair.problem.name) & (frame["optimizer"] == pair.optimizer)).any()
        if done:
            continue
        row = run_finder(pair, settings, data)
        frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
        cli.write_csv_atomic(path, _tidy_tuning_columns(frame, ["learning_rate"]))
    return pd.read_csv(path)


def final_trials(settings: Settings, tuning: pd.DataFrame) -> list[tuple[Pair, Trial]]:
    """Every pair x (tuned, default) x seed, under the held-out protocol."""
    trials = []
    for pair in settings.pairs:
        tuned, _, _ = select_best(tuning, pair)
        for setting, arguments in (("tuned", tuned), ("default", {})):
            for seed in range(settings.seeds):
                trials.append((pair, Trial(
                    problem=pair.problem, optimizer=pair.optimizer, seed=seed, epochs=settings.epochs,
                    batch_size=settings.batch_size, protocol="held_out", optimizer_arguments=arguments,
                    labels=(("problem", pair.problem.name), ("optimizer", pair.optimizer), ("setting", setting),
                            ("seed", seed)))))
    return trials


def test_scores(trial: Trial, model, data) -> dict[str, pd.DataFrame]:
    """After a final run: its one and only evaluation on the test set (``test_<metric>``)."""
    from lab.callbacks.averaged_weights import evaluated_weights_in

    batch_size = max(trial.batch_size or trial.problem.batch_size or len(data.x_test), 1024)
    with evaluated_weights_in(model):  # a schedule-free optimiser's averaged iterate, as validated
        scores = model.evaluate(data.x_test, data.y_test, batch_size=batch_size, verbose=0, return_dict=True)
    return {TEST_FILE: pd.DataFrame([{f"test_{name}": float(value) for name, value in scores.items()}])}


def merge_test_scores(results: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """``results.csv`` with each run's test scores on its last row, beside its ``val_`` columns."""
    keys = ["problem", "optimizer", "setting", "seed"]
    results = results.drop(columns=[c for c in results.columns if c.startswith("test_")])
    last = results.groupby(keys, sort=False)["epoch"].transform("max") == results["epoch"]
    merged = results.merge(tests, on=keys, how="left")
    test_columns = [c for c in tests.columns if c.startswith("test_")]
    merged.loc[~last.to_numpy(), test_columns] = np.nan
    columns = list(results.columns)
    position = max(i for i, c in enumerate(columns) if c.startswith("val_")) + 1
    return merged[columns[:position] + sorted(test_columns) + columns[position:]]


def run_finals(settings: Settings, tuning: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Train the final runs (a grid: resumable), score them on the test set, write ``results.csv``."""
    pairs_and_trials = final_trials(settings, tuning)
    trials = [trial for _, trial in pairs_and_trials]
    grid = run_grid(trials, out, jobs=settings.jobs, progress=settings.progress, tensorboard=settings.tensorboard,
                    after=test_scores, extra_files=(TEST_FILE,), vectorize=settings.vectorize)
    results = merge_test_scores(grid.results, grid.extras[TEST_FILE])
    cli.write_csv_atomic(out / RESULTS_FILE, results)
    if settings.tensorboard:
        from experiments import hparams

        for pair, trial in pairs_and_trials:
            hparams.write_session(out / TENSORBOARD / trial.folder, {
                "stage": dict(trial.labels)["setting"], "problem": trial.problem.name, "optimizer": trial.optimizer,
                "seed": trial.seed, **effective_arguments(trial, pair.space)})
    return results


def effective_arguments(trial: Trial, space: SearchSpace) -> dict[str, float]:
    """The values the trial's optimiser has for the space's hyperparameters (defaults included;
    the learning rate as chosen, the peak where the problem shapes it into a schedule)."""
    from experiments.grid import build_optimizer, chosen_learning_rate

    config = build_optimizer(trial).get_config()
    rate = chosen_learning_rate(trial)
    if isinstance(rate, (int, float)):
        config["learning_rate"] = rate
    return {d.name: float(config[d.name]) for d in space if isinstance(config.get(d.name), (int, float))}
