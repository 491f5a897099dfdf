"""The learning-rate range test for each optimiser, then short trainings at what it suggests.

Notebook 004's exercise 2 ("train with exponentially increasing LRs, plot loss vs LR to find the
sweet spot") on both of the lab's classification problems, with ``callbacks.find_lr``:

1. For each problem (make_moons, the MNIST MLP) and optimiser (sgd, momentum, rmsprop, adam from
   the registry), a seeded model is swept from ``--start-lr`` to ``--end-lr`` geometrically over
   ``--num-steps`` training steps (stopping early once the smoothed loss exceeds 4x its minimum).
   Every suggestion rule of ``callbacks.lr_finder`` is recorded; ``--method`` picks the one used
   for training (default ``minimum/10``, a tenth of the rate at the lowest smoothed loss; on these
   problems fastai's ``valley`` lands at the very start of the descent, often below the defaults).
2. The same seeded model is then trained for a few epochs at the suggested rate and at the
   notebooks' default rate: notebook 004's 0.01 for every optimiser on moons (full batch), and
   notebook 003's SGD 0.01, momentum 0.01, RMSprop 0.001, Adam 0.001 on MNIST (batch 32).

Writes ``range_test.csv`` (problem, optimizer, step, learning_rate, loss, smoothed_loss),
``suggestions.csv``, ``range_test.png``, ``results.csv`` (one row per training epoch),
``summary.csv``, ``training.png`` and TensorBoard logs of the trainings.

    python -m experiments.lr_finder
    python -m experiments.lr_finder --quick
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.common import (
    UsageError,
    add_resume_argument,
    checkpoint_dir,
    make_parser,
    open_output,
    parse_arguments,
    positive_float,
    positive_int,
    remove_checkpoints,
    run_main,
    write_csv_atomic,
)

NAME = "lr_finder"
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
PROBLEMS = ("moons", "mnist_mlp")
QUICK_OPTIMIZERS = ("sgd", "adam")
SETTINGS = ("default", "suggested")


@dataclass(frozen=True)
class Problem:
    """A data set + model with its batch size, training length and the notebooks' rates."""

    name: str
    batch_size: int | None  # None = full batch
    epochs: int
    default_learning_rates: dict[str, float] = field(default_factory=dict, hash=False)
    subset: int | None = None  # MNIST training examples (None = all 60000)

    def data(self):
        from lab import datasets

        if self.name == "moons":
            return datasets.load_moons()
        return datasets.mnist_arrays(flatten=True, subset=self.subset)

    def model(self, seed: int):
        from lab import models

        return models.moons_net(seed) if self.name == "moons" else models.mnist_mlp(seed)

    def steps_batch_size(self, data) -> int:
        return len(data.x_train) if self.batch_size is None else self.batch_size


def notebook_defaults(problem: str) -> dict[str, float]:
    """Moons: notebook 004 trains all four at 0.01. MNIST: notebook 003's rates (the registry's)."""
    if problem == "moons":
        return {name: 0.01 for name in OPTIMIZERS}
    from lab.registry import OPTIMIZERS as REGISTRY

    return {name: float(REGISTRY[name].defaults["learning_rate"]) for name in OPTIMIZERS}


@dataclass(frozen=True)
class Sweep:
    """The range test's settings."""

    start_lr: float = 1e-5
    end_lr: float = 10.0
    num_steps: int = 100
    smoothing: float = 0.9
    method: str = "minimum/10"


# --------------------------------------------------------------------------------------------
# Part 1: the range tests.


def range_test(problem: Problem, optimizer: str, sweep: Sweep, seed: int, data):
    """``callbacks.find_lr`` on a freshly seeded model compiled with the registry optimiser."""
    import keras

    from callbacks import find_lr
    from lab.registry import build_optimizer

    keras.utils.set_random_seed(seed)
    model = problem.model(seed)
    model.compile(
        optimizer=build_optimizer(optimizer),
        loss="sparse_categorical_crossentropy",
        steps_per_execution=1,  # the finder sets the rate before every step
        jit_compile=False,
    )
    return find_lr(
        model,
        data.x_train,
        data.y_train,
        start_lr=sweep.start_lr,
        end_lr=sweep.end_lr,
        num_steps=sweep.num_steps,
        batch_size=problem.steps_batch_size(data),
        smoothing=sweep.smoothing,
    )


def run_range_tests(
    problems: Sequence[Problem], optimizers: Sequence[str], sweep: Sweep, seed: int, data: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every range test: the curves (one row per step) and every rule's suggestion."""
    from tqdm.auto import tqdm

    from lab.callbacks.lr_finder import SUGGESTIONS

    curves, suggestions = [], []
    jobs = [(problem, optimizer) for problem in problems for optimizer in optimizers]
    progress = tqdm(jobs, desc="range tests", unit="test")
    for problem, optimizer in progress:
        progress.set_postfix_str(f"{problem.name} / {optimizer}")
        result = range_test(problem, optimizer, sweep, seed, data[problem.name])
        frame = result.to_frame()
        frame.insert(0, "problem", problem.name)
        frame.insert(1, "optimizer", optimizer)
        curves.append(frame)
        for method in SUGGESTIONS:
            suggestions.append(
                {
                    "problem": problem.name,
                    "optimizer": optimizer,
                    "method": method,
                    "learning_rate": result.suggest(method),
                    "chosen": method == sweep.method,
                    "default_learning_rate": problem.default_learning_rates[optimizer],
                    "steps": len(frame),
                    "diverged": result.diverged,
                }
            )
    return pd.concat(curves, ignore_index=True), pd.DataFrame(suggestions)


def plot_range_tests(curves: pd.DataFrame, suggestions: pd.DataFrame, path: Path) -> None:
    """One panel per problem: smoothed loss vs learning rate, chosen suggestion and default marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys(curves["problem"]))
    figure, axes = plt.subplots(1, len(problems), figsize=(6.5 * len(problems), 4.6), squeeze=False)
    colours = dict(zip(OPTIMIZERS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for axis, problem in zip(axes[0], problems):
        subset = curves[curves["problem"] == problem]
        for optimizer, group in subset.groupby("optimizer", sort=False):
            colour = colours.get(optimizer)
            axis.plot(group["learning_rate"], group["smoothed_loss"], color=colour, linewidth=1.8, label=optimizer)
            chosen = suggestions[
                (suggestions["problem"] == problem) & (suggestions["optimizer"] == optimizer) & suggestions["chosen"]
            ].iloc[0]
            for rate, marker, size in ((chosen["learning_rate"], "o", 8), (chosen["default_learning_rate"], "x", 9)):
                at = np.interp(np.log(rate), np.log(group["learning_rate"]), group["smoothed_loss"])
                axis.plot([rate], [at], marker, color=colour, markersize=size)
        # from just below the lowest loss (never below zero) to above the start, cutting off the divergence
        losses = subset["smoothed_loss"][np.isfinite(subset["smoothed_loss"])]
        lowest = float(losses.min())
        highest = min(float(losses.max()), 1.6 * float(subset.groupby("optimizer")["smoothed_loss"].first().max()))
        margin = 0.05 * (highest - lowest) if highest > lowest else 0.05 * max(abs(lowest), 1.0)
        axis.set_ylim(max(lowest - margin, 0.0) if lowest >= 0 else lowest - margin, highest + margin)
        axis.set_xscale("log")
        axis.set_xlabel("learning rate")
        axis.set_ylabel("smoothed training loss")
        method = suggestions.loc[suggestions["chosen"], "method"].iloc[0]
        axis.set_title(f"{problem}: range test (o = {method} suggestion, x = notebook default)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------------------------
# Part 2: short trainings at the suggested and the default rates.


@dataclass(frozen=True)
class TrainingRun:
    problem: Problem
    optimizer: str
    setting: str  # "default" or "suggested"
    learning_rate: float
    seed: int


def declare_trainings(problems: Sequence[Problem], optimizers: Sequence[str], suggestions: pd.DataFrame, seed: int):
    chosen = suggestions[suggestions["chosen"]].set_index(["problem", "optimizer"])["learning_rate"]
    return [
        TrainingRun(problem, optimizer, setting, rate, seed)
        for problem in problems
        for optimizer in optimizers
        for setting, rate in (
            ("default", problem.default_learning_rates[optimizer]),
            ("suggested", float(chosen[(problem.name, optimizer)])),
        )
    ]


def run_trainings(
    runs: Sequence[TrainingRun], output: Path, data: dict, jit_compile: bool | str, tensorboard: bool = True
) -> pd.DataFrame:
    from tqdm.auto import tqdm

    from experiments.training import train_run
    from lab.registry import build_optimizer

    frames = []
    progress = tqdm(runs, desc="trainings", unit="run")
    for run in progress:
        progress.set_postfix_str(f"{run.problem.name} / {run.optimizer} / {run.setting}")
        problem_data = data[run.problem.name]
        rows = train_run(
            run.problem.model(run.seed),
            build_optimizer(run.optimizer, learning_rate=run.learning_rate),
            problem_data,
            epochs=run.problem.epochs,
            batch_size=run.problem.steps_batch_size(problem_data),
            seed=run.seed,
            tensorboard_dir=output / "tensorboard" / run.problem.name / f"{run.optimizer}_{run.setting}" if tensorboard else None,
            checkpoint_dir=checkpoint_dir(output, run.problem.name, f"{run.optimizer}_{run.setting}"),
            jit_compile=jit_compile,
        )
        rows.insert(0, "problem", run.problem.name)
        rows.insert(1, "optimizer", run.optimizer)
        rows.insert(2, "setting", run.setting)
        rows.insert(3, "seed", run.seed)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Per problem, optimiser and setting: the rate and the final losses and accuracies."""
    keys = ["problem", "optimizer", "setting"]
    final = results.groupby(keys, sort=False).tail(1).set_index(keys)
    summary = final[["learning_rate", "epoch", "loss", "val_loss", "accuracy", "val_accuracy", "status"]].rename(
        columns={
            "epoch": "epochs",
            "loss": "final_loss",
            "val_loss": "final_val_loss",
            "accuracy": "final_accuracy",
            "val_accuracy": "final_val_accuracy",
        }
    )
    return summary.reset_index()


def plot_trainings(results: pd.DataFrame, path: Path) -> None:
    """Per problem: train loss and test accuracy per epoch; solid = suggested, dashed = default."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    problems = list(dict.fromkeys(results["problem"]))
    colours = dict(zip(OPTIMIZERS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    figure, axes = plt.subplots(len(problems), 2, figsize=(12, 3.8 * len(problems)), squeeze=False)
    for row, problem in zip(axes, problems):
        subset = results[results["problem"] == problem]
        for (optimizer, setting), group in subset.groupby(["optimizer", "setting"], sort=False):
            rate = group["learning_rate"].iloc[0]
            style = dict(
                color=colours.get(optimizer),
                linestyle="-" if setting == "suggested" else "--",
                marker="." if len(group) < 15 else None,
                label=f"{optimizer} {setting} ({rate:.2g})",
            )
            row[0].plot(group["epoch"], group["loss"], **style)
            row[1].plot(group["epoch"], group["val_accuracy"], **style)
        row[0].set_yscale("log")
        row[0].set_title(f"{problem}: train loss")
        row[1].set_title(f"{problem}: test accuracy")
        for axis in row:
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.grid(True, alpha=0.3)
        row[1].legend(fontsize=7, ncol=2)
    figure.suptitle("Training at the range test's suggestion (solid) vs the notebooks' default (dashed)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------------------------
# Command line.


def build_parser():
    from lab.callbacks.lr_finder import SUGGESTIONS

    parser = make_parser(NAME, __doc__.split("\n\n")[0])
    parser.add_argument("--problems", nargs="+", choices=PROBLEMS, default=list(PROBLEMS))
    parser.add_argument(
        "--optimizers",
        nargs="+",
        choices=OPTIMIZERS,
        default=None,
        help="registry optimisers (default: all four; --quick: sgd adam)",
    )
    parser.add_argument("--start-lr", type=positive_float, default=Sweep.start_lr, help="first rate of the sweep")
    parser.add_argument("--end-lr", type=positive_float, default=Sweep.end_lr, help="last rate of the sweep")
    parser.add_argument("--num-steps", type=positive_int, default=None, help="steps of the sweep (default 100; --quick 40)")
    parser.add_argument(
        "--smoothing",
        type=float,
        default=Sweep.smoothing,
        help="EMA weight of the smoothed loss, in [0, 1) (default 0.9: a 10-step window; fastai's 0.98 "
        "averages over 50 steps, half of a 100-step sweep, and shifts the curve right)",
    )
    parser.add_argument(
        "--method", choices=list(SUGGESTIONS), default=Sweep.method, help="suggestion rule used for training"
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="training epochs (default: moons 200 full batch, MNIST 3)"
    )
    parser.add_argument(
        "--mnist-subset", type=positive_int, default=20000, help="MNIST training examples (default 20000; 60000 = all)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    add_resume_argument(parser)
    return parser


def declare(args) -> tuple[list[Problem], list[str], Sweep]:
    if not args.start_lr < args.end_lr:
        raise UsageError(f"--start-lr ({args.start_lr}) must be below --end-lr ({args.end_lr})")
    if not 0.0 <= args.smoothing < 1.0:
        raise UsageError(f"--smoothing must be in [0, 1), got {args.smoothing}")
    num_steps = args.num_steps or (40 if args.quick else 100)
    if num_steps < 10:
        raise UsageError(f"--num-steps must be >= 10 for a readable curve, got {num_steps}")
    sweep = Sweep(args.start_lr, args.end_lr, num_steps, args.smoothing, args.method)
    optimizers = list(args.optimizers or (QUICK_OPTIMIZERS if args.quick else OPTIMIZERS))
    if args.quick:
        catalogue = {
            "moons": Problem("moons", None, args.epochs or 20, notebook_defaults("moons")),
            "mnist_mlp": Problem("mnist_mlp", 64, args.epochs or 1, notebook_defaults("mnist_mlp"), 1200),
        }
    else:
        catalogue = {
            "moons": Problem("moons", None, args.epochs or 200, notebook_defaults("moons")),
            "mnist_mlp": Problem(
                "mnist_mlp", 32, args.epochs or 3, notebook_defaults("mnist_mlp"), min(args.mnist_subset, 60000)
            ),
        }
    return [catalogue[name] for name in args.problems], optimizers, sweep


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(build_parser(), argv, NAME)
    problems, optimizers, sweep = declare(args)
    output = open_output(args, NAME)
    data = {problem.name: problem.data() for problem in problems}

    if (output / "suggestions.csv").is_file():  # resumed: train at the rates suggested before
        curves, suggestions = pd.read_csv(output / "range_test.csv"), pd.read_csv(output / "suggestions.csv")
    else:
        curves, suggestions = run_range_tests(problems, optimizers, sweep, args.seed, data)
        write_csv_atomic(output / "range_test.csv", curves)
        write_csv_atomic(output / "suggestions.csv", suggestions)
    plot_range_tests(curves, suggestions, output / "range_test.png")

    runs = declare_trainings(problems, optimizers, suggestions, args.seed)
    results = run_trainings(
        runs, output, data, jit_compile=False if args.quick else "auto", tensorboard=not args.no_tensorboard
    )
    write_csv_atomic(output / "results.csv", results)
    summary = summarise(results)
    write_csv_atomic(output / "summary.csv", summary)
    plot_trainings(results, output / "training.png")
    remove_checkpoints(output)
    with pd.option_context("display.width", 180, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"range tests, trainings, plots and TensorBoard logs in {output}")
    return 0


if __name__ == "__main__":
    run_main(main)
