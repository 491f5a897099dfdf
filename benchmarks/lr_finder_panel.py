"""Does the range test's suggestion train? A panel of optimisers x problems x batch sizes.

    python -m benchmarks.lr_finder_panel [--epochs-scale 1.0]

For each cell (problem, optimiser, batch size) an exhaustive half-decade grid of short trainings
(rates 1e-4, 3.2e-4, ..., 10) gives the best rate and its score: the training accuracy after the
short training (the range test is about how fast a rate trains; test accuracy is recorded beside
it). Then ``lab.callbacks.find_lr`` (sweep 1e-5 to 10 over 100 steps, its other defaults)
suggests rates by every rule, each trained with the same protocol and scored as a ratio to the
best grid score. The default suggestion must reach 0.95 in every cell.

    problems    moons (lab.datasets.load_moons, lab.models.moons_net, 10 epochs),
                digits (scikit-learn's load_digits /16, 1437 train / 360 test, 64-32-10 MLP,
                10 epochs), mnist (lab.datasets.mnist_arrays(subset=3000), lab.models.mnist_mlp,
                3 epochs)
    optimisers  lab SGD, SGD(momentum=0.9), Adam, RMSprop; each at Keras's other defaults
    batches     32 and 128 (same epochs: the larger batch takes a quarter of the steps)

Each cell keeps one compiled model; a training resets its weights and optimiser variables and
assigns the rate, so the whole grid runs on one compiled train function (nothing retraced). Rows
(one per training) go to ``benchmarks/results/lr_finder_panel.csv``. JAX unless
``KERAS_BACKEND`` says otherwise.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.machine import append_csv_row, describe_machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "lr_finder_panel.csv"
GRID = 10.0 ** np.arange(-4.0, 1.01, 0.5)
BATCH_SIZES = (32, 128)
RULES = ("verified", "valley", "slide", "minimum", "steep")


def digits_split(seed: int = 0):
    """scikit-learn's 8x8 digits scaled to [0, 1], a stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from lab.datasets import Split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        (x / 16.0).astype(np.float32), y.astype(np.int32), test_size=0.2, random_state=seed, stratify=y)
    return Split(x_train, y_train, x_test, y_test)


def digits_mlp(seed: int = 0):
    import keras

    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu", kernel_initializer=keras.initializers.GlorotUniform(seed)),
        keras.layers.Dense(10, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seed + 1)),
    ], name="digits_mlp")


def problems() -> dict[str, tuple[Any, Any, int]]:
    """name -> (data split, model builder, epochs)."""
    from lab import datasets, models

    return {
        "moons": (datasets.load_moons(), models.moons_net, 10),
        "digits": (digits_split(), digits_mlp, 10),
        "mnist": (datasets.mnist_arrays(subset=3000), models.mnist_mlp, 3),
    }


def optimizers() -> dict[str, Any]:
    from lab.optimizers import SGD, Adam, RMSprop

    return {
        "sgd": lambda: SGD(learning_rate=0.01),
        "sgd_momentum": lambda: SGD(learning_rate=0.01, momentum=0.9),
        "adam": lambda: Adam(learning_rate=0.001),
        "rmsprop": lambda: RMSprop(learning_rate=0.001),
    }


class Cell:
    """One compiled model; ``score(rate)`` is the test accuracy of a short training at ``rate``."""

    def __init__(self, data, build, make_optimizer, batch_size: int, epochs: int) -> None:
        import keras

        self.data, self.batch_size, self.epochs = data, batch_size, epochs
        keras.utils.set_random_seed(0)
        self.model = build(0)
        self.model.compile(optimizer=make_optimizer(), loss="sparse_categorical_crossentropy",
                           metrics=["accuracy"])
        self.model.optimizer.build(self.model.trainable_variables)
        self.start = [(v, np.array(v.numpy(), copy=True))
                      for v in [*self.model.weights, *self.model.optimizer.variables]]

    def reset(self, rate: float) -> None:
        for variable, value in self.start:
            variable.assign(value)
        self.model.optimizer.learning_rate = float(rate)

    def score(self, rate: float) -> tuple[float, float]:
        """(training accuracy, test accuracy) after the short training; 0 for a diverged run."""
        import keras

        self.reset(rate)
        keras.utils.set_random_seed(0)
        data = self.data
        self.model.fit(data.x_train, data.y_train, batch_size=self.batch_size, epochs=self.epochs, verbose=0)
        scores = []
        for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
            logs = self.model.evaluate(x, y, batch_size=512, verbose=0, return_dict=True)
            scores.append(float(logs["accuracy"]) if np.isfinite(logs["loss"]) else 0.0)
        return scores[0], scores[1]


def run(epochs_scale: float) -> list[dict[str, Any]]:
    import keras

    from lab.callbacks import find_lr

    rows = []
    for problem, (data, build, epochs) in problems().items():
        epochs = max(1, round(epochs * epochs_scale))
        for name, make_optimizer in optimizers().items():
            for batch_size in BATCH_SIZES:
                keras.backend.clear_session()
                cell = Cell(data, build, make_optimizer, batch_size, epochs)
                key = {"problem": problem, "optimizer": name, "batch_size": batch_size, "epochs": epochs}
                began = time.perf_counter()
                grid = {float(rate): cell.score(rate) for rate in GRID}
                grid_seconds = time.perf_counter() - began
                best_rate = max(grid, key=lambda rate: grid[rate][0])
                best = grid[best_rate][0]
                best_test = max(test for _, test in grid.values())
                began = time.perf_counter()
                keras.utils.set_random_seed(0)
                cell.reset(1e-3)
                result = find_lr(cell.model, data.x_train, data.y_train, start_lr=1e-5, end_lr=10.0,
                                 num_steps=100, batch_size=batch_size)
                finder_seconds = time.perf_counter() - began
                suggestions = result.suggestions._asdict()
                scored = {rate: score for rate, score in grid.items()}
                for rule in RULES:
                    rate = float(suggestions[rule])
                    if rate not in scored:
                        scored[rate] = cell.score(rate)
                    rows.append(row(key, "rule", rule, rate, scored[rate], best_rate, best, best_test,
                                    finder_seconds))
                for rate, score in grid.items():
                    rows.append(row(key, "grid", "", rate, score, best_rate, best, best_test,
                                    grid_seconds / len(grid)))
                ratios = "  ".join(f"{rule} {scored[float(suggestions[rule])][0] / best:.3f}" for rule in RULES)
                print(f"{problem:7s} {name:13s} {batch_size:4d}  best {best_rate:8.2g} -> {best:.3f}  {ratios}",
                      flush=True)
    return rows


def row(key: dict, kind: str, rule: str, rate: float, score: tuple[float, float], best_rate: float,
        best: float, best_test: float, seconds: float) -> dict[str, Any]:
    return {**key, "kind": kind, "rule": rule, "learning_rate": rate, "score": score[0],
            "test_accuracy": score[1], "best_rate": best_rate, "best_score": best, "ratio": score[0] / best,
            "test_ratio": score[1] / best_test, "seconds": seconds}


def table(rows: list[dict[str, Any]]) -> str:
    """The README's table: one line per cell, the best grid rate and score, each rule's ratio."""
    cells: dict[tuple, dict] = {}
    for row in rows:
        if row["kind"] != "rule":
            continue
        cell = cells.setdefault((row["problem"], row["optimizer"], row["batch_size"]),
                                {"best_rate": row["best_rate"], "best_score": row["best_score"]})
        cell[row["rule"]] = (row["learning_rate"], row["ratio"], row["test_ratio"])
    lines = ["| problem | optimiser | batch | best grid rate | best score | "
             + " | ".join(f"{rule} (rate, ratio)" for rule in RULES) + " |",
             "| --- | --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in RULES) + " |"]
    for (problem, optimizer, batch_size), cell in cells.items():
        entries = " | ".join(f"{cell[rule][0]:.2g}, {cell[rule][1]:.3f}" for rule in RULES)
        lines.append(f"| {problem} | {optimizer} | {batch_size} | {cell['best_rate']:.2g} | "
                     f"{cell['best_score']:.3f} | {entries} |")
    worst = " | ".join(f"{min(cell[rule][1] for cell in cells.values()):.3f}" for rule in RULES)
    lines.append(f"| **worst cell** | | | | | {worst} |")
    worst_test = " | ".join(f"{min(cell[rule][2] for cell in cells.values()):.3f}" for rule in RULES)
    lines.append(f"| worst cell, test accuracy | | | | | {worst_test} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lr_finder_panel",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs-scale", type=float, default=1.0,
                        help="multiply every problem's epochs (default 1; below 1 for a smoke run)")
    args = parser.parse_args(argv)
    machine = describe_machine()
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    rows = run(args.epochs_scale)
    print(f"\n{time.perf_counter() - began:.0f} s\n")
    print(table(rows))
    import keras

    append_csv_row(RESULTS, [{**machine, "backend": keras.backend.backend(), "load_average_before": load_before,
                              **row} for row in rows])
    print(f"\nrows appended to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
