"""The learning-rate range test for each optimiser, then short trainings at what it suggests.

Notebook 004's exercise 2 ("train with exponentially increasing LRs, plot loss vs LR to find the
sweet spot") on any of the lab's problems (or a user's own), with ``lab.callbacks.find_lr``:

1. For each problem (default: make_moons and the MNIST MLP on a 20,000-image subset) and optimiser
   (sgd, momentum, rmsprop, adam from the registry, or any spec), a seeded model is swept from
   ``--start-lr`` to ``--end-lr`` geometrically over ``--num-steps`` training steps on the
   problem's training part (stopping early once the smoothed loss exceeds 4x its minimum). Every
   suggestion rule of ``lab.callbacks.lr_finder`` is recorded; ``--method`` picks the one used for
   training (default ``minimum``, a tenth of the rate at the lowest smoothed loss).
2. The same seeded models are then trained (``--seeds``) at the suggested rate and at the default
   rate (the problem's, else the registry's: notebook 004's 0.01 for every optimiser on moons,
   notebook 003's rates on MNIST), under the held-out protocol: trained on the training part,
   validated on the validation part, so the comparison reads no test data.

Writes ``range_test.csv`` (problem, optimizer, step, learning_rate, loss, smoothed_loss),
``suggestions.csv``, ``range_test.png``, ``results.csv`` (one row per training epoch),
``summary.csv``, ``training.png`` and TensorBoard logs of the trainings.

    python -m experiments.lr_finder
    python -m experiments.lr_finder --quick
    python -m experiments.lr_finder --problems digits mymodule:PROBLEM --optimizers sgd keras:Adam
"""

from __future__ import annotations

if __name__ == "__main__":  # the command line's default backend, chosen before Keras is imported
    from experiments.cli import prefer_jax_backend

    prefer_jax_backend()

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import cli
from experiments.grid import DataCache, Trial, build_optimizer, chosen_learning_rate, run_grid
from lab.problems import Problem, mnist_split, protocol_view

NAME = "lr_finder"
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
PROBLEMS = ("moons", "mnist_mlp")
QUICK_OPTIMIZERS = ("sgd", "adam")
SETTINGS = ("default", "suggested")
MNIST_EPOCHS = 3  # the MNIST MLP's trainings here: 3 epochs on the subset, not notebook 003's 10


@dataclass(frozen=True)
class Sweep:
    """The range test's settings."""

    start_lr: float = 1e-5
    end_lr: float = 10.0
    num_steps: int = 100
    smoothing: float = 0.9
    method: str = "minimum"


# --------------------------------------------------------------------------------------------
# Part 1: the range tests.


def default_learning_rate(problem: Problem, optimizer: str) -> float:
    """The rate a plain run of ``optimizer`` on ``problem`` uses (the problem's, else the spec's;
    the peak of the problem's schedule shape where it has one)."""
    import keras

    trial = Trial(problem=problem, optimizer=optimizer)
    rate = chosen_learning_rate(trial)
    if not isinstance(rate, (int, float)):  # the optimiser's default, or a fixed schedule at step 0
        rate = build_optimizer(trial).learning_rate
    return float(f"{float(keras.ops.convert_to_numpy(rate)):.7g}")


def range_test(problem: Problem, optimizer: str, sweep: Sweep, seed: int, data):
    """``find_lr`` on a freshly seeded model of ``problem``, on its training part."""
    import keras

    from lab.callbacks import find_lr
    from lab.registry import build_optimizer as build_spec

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = problem.model(seed)
    model.compile(
        optimizer=build_spec(optimizer),
        loss=problem.loss,
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
        batch_size=problem.batch_size or len(data.x_train),
        smoothing=sweep.smoothing,
        verify_steps=0,  # the rules alone; --method picks the one trained
    )


def run_range_tests(
    problems: Sequence[Problem], optimizers: Sequence[str], sweep: Sweep, seed: int, progress: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every range test: the curves (one row per step) and every rule's suggestion."""
    from tqdm.auto import tqdm

    from lab.callbacks.lr_finder import SUGGESTIONS

    data = DataCache()
    curves, suggestions = [], []
    jobs = [(problem, optimizer) for problem in problems for optimizer in optimizers]
    bar = tqdm(jobs, desc="range tests", unit="test", disable=not progress)
    for problem, optimizer in bar:
        bar.set_postfix_str(f"{problem.name} / {optimizer}")
        result = range_test(problem, optimizer, sweep, seed, protocol_view(data(problem), "held_out"))
        frame = result.to_frame()
        frame.insert(0, "problem", problem.name)
        frame.insert(1, "optimizer", optimizer)
        curves.append(frame)
        default = default_learning_rate(problem, optimizer)
        for method in SUGGESTIONS:
            suggestions.append(
                {
                    "problem": problem.name,
                    "optimizer": optimizer,
                    "method": method,
                    "learning_rate": result.suggest(method),
                    "chosen": method == sweep.method,
                    "default_learning_rate": default,
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


def declare_trainings(problems: Sequence[Problem], optimizers: Sequence[str], suggestions: pd.DataFrame, seeds: int,
                      jit_compile: bool | str = "auto") -> list[Trial]:
    """Each problem x optimizer x setting (default, suggested) x seed, held out."""
    rates = suggestions.set_index(["problem", "optimizer"])
    chosen = suggestions[suggestions["chosen"]].set_index(["problem", "optimizer"])["learning_rate"]
    trials = []
    for problem in problems:
        for optimizer in optimizers:
            default = float(rates.loc[(problem.name, optimizer), "default_learning_rate"].iloc[0])
            for setting, rate in (("default", default), ("suggested", float(chosen[(problem.name, optimizer)]))):
                for seed in range(seeds):
                    labels = (("problem", problem.name), ("optimizer", optimizer), ("setting", setting), ("seed", seed))
                    trials.append(Trial(problem=problem, optimizer=optimizer, seed=seed, labels=labels,
                                        protocol="held_out", optimizer_arguments={"learning_rate": rate},
                                        jit_compile=jit_compile))
    return trials


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Per problem, optimiser, setting and seed: the rate and the final losses and metrics."""
    keys = ["problem", "optimizer", "setting", "seed"]
    final = results.groupby(keys, sort=False).tail(1).set_index(keys)
    scores = [c for c in final.columns if c not in ("learning_rate", "epoch", "seconds", "status")]
    summary = final[["learning_rate", "epoch", *scores, "status"]].rename(
        columns={"epoch": "epochs", **{c: f"final_{c}" for c in scores}}
    )
    return summary.reset_index()


def plot_trainings(results: pd.DataFrame, path: Path, monitors: dict[str, str]) -> None:
    """Per problem: train loss and validation score per epoch; solid = suggested, dashed = default."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    problems = list(dict.fromkeys(results["problem"]))
    colours = dict(zip(OPTIMIZERS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    figure, axes = plt.subplots(len(problems), 2, figsize=(12, 3.8 * len(problems)), squeeze=False)
    for row, problem in zip(axes, problems):
        subset = results[results["problem"] == problem]
        for (optimizer, setting), group in subset[subset["seed"] == 0].groupby(["optimizer", "setting"], sort=False):
            rate = group["learning_rate"].iloc[0]
            style = dict(
                color=colours.get(optimizer),
                linestyle="-" if setting == "suggested" else "--",
                marker="." if len(group) < 15 else None,
                label=f"{optimizer} {setting} ({rate:.2g})",
            )
            row[0].plot(group["epoch"], group["loss"], **style)
            row[1].plot(group["epoch"], group[f"val_{monitors[problem]}"], **style)
        row[0].set_yscale("log")
        row[0].set_title(f"{problem}: train loss")
        row[1].set_title(f"{problem}: validation {monitors[problem]}")
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

    parser = cli.make_parser(NAME, __doc__.split("\n\n")[0])
    cli.add_training_arguments(parser, problems=PROBLEMS, optimizers=OPTIMIZERS, seeds=1, strategies=False)
    parser.add_argument("--start-lr", type=cli.positive_float, default=Sweep.start_lr, help="first rate of the sweep")
    parser.add_argument("--end-lr", type=cli.positive_float, default=Sweep.end_lr, help="last rate of the sweep")
    parser.add_argument("--num-steps", type=cli.positive_int, default=None, help="steps of the sweep (default 100; --quick 40)")
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
        "--mnist-subset", type=cli.positive_int, default=20000,
        help="training images of mnist_mlp here (default 20000; 60000 = all); it trains 3 epochs",
    )
    return parser


def declare(args) -> tuple[list[Problem], list[str], Sweep]:
    """The problems (mnist_mlp on its subset), optimisers and sweep of the command line."""
    if not args.start_lr < args.end_lr:
        raise cli.UsageError(f"--start-lr ({args.start_lr}) must be below --end-lr ({args.end_lr})")
    if not 0.0 <= args.smoothing < 1.0:
        raise cli.UsageError(f"--smoothing must be in [0, 1), got {args.smoothing}")
    num_steps = args.num_steps or (40 if args.quick else 100)
    if num_steps < 10:
        raise cli.UsageError(f"--num-steps must be >= 10 for a readable curve, got {num_steps}")
    sweep = Sweep(args.start_lr, args.end_lr, num_steps, args.smoothing, args.method)
    given = "--optimizers" in args.command_line
    optimizers = cli.check_optimizers(args.optimizers if given or not args.quick else QUICK_OPTIMIZERS)
    problems = []
    for problem in cli.resolve_problems(args):
        if problem.name == "mnist_mlp" and not args.quick:
            subset = min(args.mnist_subset, 60000)
            problem = replace(problem, data=partial(mnist_split, subset=None if subset == 60000 else subset),
                              epochs=MNIST_EPOCHS)
        problems.append(replace(problem, epochs=args.epochs) if args.epochs else problem)
    return problems, optimizers, sweep


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse_arguments(build_parser(), argv, NAME)
    problems, optimizers, sweep = declare(args)
    options = cli.grid_options(args)
    output = cli.open_output(args, NAME)

    if (output / "suggestions.csv").is_file():  # resumed: train at the rates suggested before
        curves, suggestions = pd.read_csv(output / "range_test.csv"), pd.read_csv(output / "suggestions.csv")
    else:
        curves, suggestions = run_range_tests(problems, optimizers, sweep, 0, options["progress"])
        cli.write_csv_atomic(output / "range_test.csv", curves)
        cli.write_csv_atomic(output / "suggestions.csv", suggestions)
    plot_range_tests(curves, suggestions, output / "range_test.png")

    trials = declare_trainings(problems, optimizers, suggestions, args.seeds, "auto" if not args.quick else False)
    results = run_grid(trials, output, **options).results
    summary = summarise(results)
    cli.write_csv_atomic(output / "summary.csv", summary)
    plot_trainings(results, output / "training.png", {problem.name: problem.monitor for problem in problems})
    with pd.option_context("display.width", 180, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"range tests, trainings, plots and TensorBoard logs in {output}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
