"""Every lab learning-rate schedule, plotted, and what the main ones do to training.

Part 1, the curves: each schedule of ``lab.schedules`` over 100 epochs (one step = one epoch),
initial learning rate 0.1 -- notebook 000's figure (constant, step, exponential, cosine, warm-up +
cosine), the floors of notebooks 002 and 004 (cosine and warm-up + cosine down to 0.001), and the
schedules the notebooks lack (one-cycle, cyclical in its three modes, warm restarts, a
``Sequential`` composition). Writes ``schedules.csv`` (schedule, panel, epoch, learning_rate),
``schedules.json`` (each schedule's Keras config) and ``schedules.png``.

Part 2, the effect: one optimiser (SGD with momentum 0.9 by default) trained with a constant rate,
step decay, cosine, warm-up + cosine and one-cycle -- all peaking at the same rate -- on make_moons
and the MNIST MLP. Schedules are declared in epochs and converted to steps with
``lab.schedules.per_epoch``. Writes ``results.csv`` (one row per problem, schedule and epoch),
``summary.csv``, ``training.png`` and TensorBoard logs under ``tensorboard/``.

    python -m experiments.schedules                 # both parts
    python -m experiments.schedules --curves-only   # part 1 only (a second or two)
    python -m experiments.schedules --quick         # a smoke run of both parts
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.cli import (
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
    write_json_atomic,
)

NAME = "schedules"
INITIAL_LEARNING_RATE = 0.1  # notebook 000's initial_lr
CURVE_EPOCHS = 100  # notebook 000's total_epochs
FLOOR = 0.001  # notebooks 002 and 004: alpha_min / eta_min
LOG_PANELS = ("floors (notebooks 002, 004)", "composition")  # a log axis shows the floor


# --------------------------------------------------------------------------------------------
# Part 1: the curves, declared as data.


@dataclass(frozen=True)
class Curve:
    """One schedule of the figure: its panel, a label (the CSV key) and how to build it.

    ``build(epochs)`` returns a schedule whose step unit is one epoch.
    """

    panel: str
    label: str
    build: Callable[[int], object]


def curve_catalogue() -> list[Curve]:
    """The figure's schedules, grouped in panels; step unit = one epoch, lr0 = 0.1."""
    from keras import optimizers as keras_optimizers

    from lab import schedules as s

    lr = INITIAL_LEARNING_RATE
    notebook = "notebook 000"
    floors = "floors (notebooks 002, 004)"
    cycle = "one-cycle"
    cyclical = "cyclical"
    restarts = "warm restarts"
    composed = "composition"
    return [
        # Notebook 000, Part 6, with its arguments: drop 0.5 every 10 epochs, decay 0.95 per
        # epoch, cosine to 0 over total_epochs, 10 warm-up epochs from 0 then cosine to 0.
        Curve(notebook, "constant", lambda n: s.Constant(lr)),
        Curve(notebook, "step", lambda n: s.StepDecay(lr, decay_rate=0.5, decay_steps=10)),
        Curve(notebook, "exponential", lambda n: s.ExponentialDecay(lr, decay_steps=1, decay_rate=0.95)),
        Curve(notebook, "cosine", lambda n: s.CosineAnnealing(lr, decay_steps=n)),
        Curve(notebook, "warmup_cosine", lambda n: s.WarmupCosine(lr, warmup_steps=10, decay_steps=n - 10)),
        # Notebooks 002 and 004: cosine annealing with a floor (PyTorch's eta_min = 0.001), and
        # 002's warm-up + cosine with the same floor.
        Curve(floors, "cosine_floor", lambda n: s.CosineAnnealing(lr, decay_steps=n, min_learning_rate=FLOOR)),
        Curve(
            floors,
            "warmup_cosine_floor",
            lambda n: s.WarmupCosine(lr, warmup_steps=10, decay_steps=n - 10, min_learning_rate=FLOOR),
        ),
        # The schedules the notebooks do not have.
        Curve(cycle, "one_cycle_cos", lambda n: s.OneCycle(lr, total_steps=n)),
        Curve(cycle, "one_cycle_linear", lambda n: s.OneCycle(lr, total_steps=n, anneal="linear")),
        Curve(cyclical, "cyclical_triangular", lambda n: s.CyclicalLR(FLOOR, lr, step_size=10)),
        Curve(
            cyclical, "cyclical_triangular2", lambda n: s.CyclicalLR(FLOOR, lr, step_size=10, mode="triangular2")
        ),
        Curve(
            cyclical,
            "cyclical_exp_range",
            lambda n: s.CyclicalLR(FLOOR, lr, step_size=10, mode="exp_range", gamma=0.97),
        ),
        Curve(restarts, "warm_restarts_t_mul_2", lambda n: s.CosineWarmRestarts(lr, first_decay_steps=10, t_mul=2.0)),
        Curve(
            restarts,
            "warm_restarts_t_mul_1_m_mul_0.7",
            lambda n: s.CosineWarmRestarts(lr, first_decay_steps=20, t_mul=1.0, m_mul=0.7, min_learning_rate=FLOOR),
        ),
        # Composition: 10 epochs at 0.01, 60 epochs of cosine from 0.1 to the floor, then a
        # Keras built-in schedule for the rest; each piece counts from 0 at its boundary.
        Curve(
            composed,
            "sequential",
            lambda n: s.Sequential(
                [
                    s.Constant(lr / 10),
                    s.CosineAnnealing(lr, decay_steps=60, min_learning_rate=FLOOR),
                    keras_optimizers.schedules.ExponentialDecay(FLOOR, decay_steps=1, decay_rate=0.97),
                ],
                boundaries=[10, 70],
            ),
        ),
    ]


def schedule_values(schedule, epochs: int) -> np.ndarray:
    """The schedule at steps 0 .. epochs-1, called once on the vector of steps; float64.

    Lab and Keras schedules are element-wise ``keras.ops`` math, so this equals calling the
    schedule step by step (to float32 rounding) at a fraction of the cost.
    """
    from keras import ops

    steps = ops.convert_to_tensor(np.arange(epochs, dtype=np.float32))
    return np.asarray(ops.convert_to_numpy(schedule(steps)), dtype=np.float64).reshape(epochs)


def curve_table(epochs: int = CURVE_EPOCHS, catalogue: Sequence[Curve] | None = None) -> tuple[pd.DataFrame, dict]:
    """Tidy rows (schedule, panel, epoch, learning_rate) and each schedule's Keras config."""
    import keras

    rows = []
    configs = {}
    for curve in catalogue or curve_catalogue():
        schedule = curve.build(epochs)
        values = schedule_values(schedule, epochs)
        configs[curve.label] = keras.optimizers.schedules.serialize(schedule)
        rows.append(
            pd.DataFrame(
                {"schedule": curve.label, "panel": curve.panel, "epoch": np.arange(epochs), "learning_rate": values}
            )
        )
    return pd.concat(rows, ignore_index=True), configs


def plot_curves(frame: pd.DataFrame, path: Path) -> None:
    """One panel per group of schedules, from the CSV's rows only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(frame["panel"]))
    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.6 * rows), squeeze=False)
    for axis, panel in zip(axes.flat, panels):
        for label, group in frame[frame["panel"] == panel].groupby("schedule", sort=False):
            axis.plot(group["epoch"], group["learning_rate"], linewidth=1.8, label=label)
        axis.set_title(panel + (" (log scale)" if panel in LOG_PANELS else ""))
        if panel in LOG_PANELS:
            axis.set_yscale("log")
        axis.set_xlabel("epoch")
        axis.set_ylabel("learning rate")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[len(panels) :]:
        axis.set_visible(False)
    figure.suptitle(f"lab.schedules over {frame['epoch'].max() + 1} epochs (initial learning rate {INITIAL_LEARNING_RATE})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------------------------
# Part 2: the effect on training, declared as data.

TRAINING_SCHEDULES = ("constant", "step", "cosine", "warmup_cosine", "one_cycle")


@dataclass(frozen=True)
class Problem:
    """A data set + model, with the epochs and batch size it is trained for."""

    name: str  # "moons" or "mnist_mlp"
    epochs: int
    batch_size: int
    subset: int | None = None  # MNIST training examples kept (None = all 60000)

    def data(self):
        from lab import datasets

        if self.name == "moons":
            return datasets.load_moons()
        return datasets.mnist_arrays(flatten=True, subset=self.subset)

    def model(self, seed: int):
        from lab import models

        return models.moons_net(seed) if self.name == "moons" else models.mnist_mlp(seed)


PROBLEMS = ("moons", "mnist_mlp")


def training_schedule(name: str, peak_learning_rate: float, epochs: int, steps_per_epoch: int):
    """The schedule ``name`` over ``epochs`` epochs, peaking at ``peak_learning_rate``.

    All are declared in epochs and converted to steps with ``per_epoch``: step decay halves the
    rate four times over the run (every quarter), cosine anneals to 0 over the run, warm-up +
    cosine warms up linearly from 0 over the first tenth, one-cycle is PyTorch's default shape.
    """
    from lab import schedules as s

    peak = peak_learning_rate
    if name == "constant":
        return s.Constant(peak)
    if name == "step":
        return s.per_epoch(s.StepDecay, steps_per_epoch, initial_learning_rate=peak, decay_rate=0.5, decay_steps=epochs / 4)
    if name == "cosine":
        return s.per_epoch(s.CosineAnnealing, steps_per_epoch, initial_learning_rate=peak, decay_steps=epochs)
    if name == "warmup_cosine":
        return s.per_epoch(
            s.WarmupCosine, steps_per_epoch, peak_learning_rate=peak, warmup_steps=epochs / 10, decay_steps=epochs * 0.9
        )
    if name == "one_cycle":
        return s.per_epoch(s.OneCycle, steps_per_epoch, max_learning_rate=peak, total_steps=epochs)
    raise UsageError(f"unknown schedule {name!r}; valid: {', '.join(TRAINING_SCHEDULES)}")


@dataclass(frozen=True)
class TrainingRun:
    problem: Problem
    schedule: str
    optimizer: str  # a registry spec
    peak_learning_rate: float
    seed: int
    jit_compile: bool | str = "auto"  # False in --quick: XLA compiling costs more than tiny runs take


def run_training(runs: Sequence[TrainingRun], output: Path, tensorboard: bool = True) -> pd.DataFrame:
    """Train every run (``experiments.training.train_run``); tidy rows of all of them."""
    from tqdm.auto import tqdm

    from experiments.training import train_run
    from lab.registry import build_optimizer

    frames = []
    cache: dict[Problem, object] = {}
    progress = tqdm(runs, desc="training", unit="run")
    for run in progress:
        progress.set_postfix_str(f"{run.problem.name} / {run.schedule}")
        if run.problem not in cache:
            cache[run.problem] = run.problem.data()
        data = cache[run.problem]
        steps_per_epoch = math.ceil(len(data.x_train) / run.problem.batch_size)
        schedule = training_schedule(run.schedule, run.peak_learning_rate, run.problem.epochs, steps_per_epoch)
        rows = train_run(
            run.problem.model(run.seed),
            build_optimizer(run.optimizer, learning_rate=schedule),
            data,
            epochs=run.problem.epochs,
            batch_size=run.problem.batch_size,
            seed=run.seed,
            tensorboard_dir=output / "tensorboard" / run.problem.name / run.schedule if tensorboard else None,
            checkpoint_dir=checkpoint_dir(output, run.problem.name, run.schedule),
            jit_compile=run.jit_compile,
        )
        rows.insert(0, "problem", run.problem.name)
        rows.insert(1, "schedule", run.schedule)
        rows.insert(2, "optimizer", run.optimizer)
        rows.insert(3, "seed", run.seed)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def summarise_training(results: pd.DataFrame) -> pd.DataFrame:
    """Per problem and schedule: final and best test accuracy, final losses, time, status."""
    final = results.groupby(["problem", "schedule"], sort=False).tail(1)
    best = results.groupby(["problem", "schedule"], sort=False)["val_accuracy"].max().rename("best_val_accuracy")
    summary = final.set_index(["problem", "schedule"])[
        ["epoch", "loss", "val_loss", "val_accuracy", "learning_rate", "seconds", "status"]
    ].join(best)
    summary = summary.rename(
        columns={
            "epoch": "epochs",
            "loss": "final_loss",
            "val_loss": "final_val_loss",
            "val_accuracy": "final_val_accuracy",
            "learning_rate": "final_learning_rate",
        }
    )
    return summary.reset_index()


def plot_training(results: pd.DataFrame, path: Path) -> None:
    """Rows: problems; columns: train loss, test loss, test accuracy, learning rate per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    problems = list(dict.fromkeys(results["problem"]))
    columns = [("loss", "train loss", True), ("val_loss", "test loss", True), ("val_accuracy", "test accuracy", False), ("learning_rate", "learning rate (end of epoch)", False)]
    figure, axes = plt.subplots(len(problems), len(columns), figsize=(4.2 * len(columns), 3.4 * len(problems)), squeeze=False)
    for row, problem in zip(axes, problems):
        subset = results[results["problem"] == problem]
        for axis, (column, title, log) in zip(row, columns):
            for schedule, group in subset.groupby("schedule", sort=False):
                axis.plot(group["epoch"], group[column], marker="." if len(group) < 15 else None, label=schedule)
            axis.set_title(f"{problem}: {title}")
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            if log:
                axis.set_yscale("log")
            axis.grid(True, alpha=0.3)
        row[0].legend(fontsize=7)
    optimizer = results["optimizer"].iloc[0]
    figure.suptitle(f"Learning-rate schedules in training ({optimizer}, same peak rate)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------------------------
# Command line.


def build_parser():
    parser = make_parser(NAME, __doc__.split("\n\n")[0])
    parser.add_argument("--curves-only", action="store_true", help="only part 1: the schedule curves (no training)")
    parser.add_argument(
        "--problems", nargs="+", choices=PROBLEMS, default=list(PROBLEMS), help="problems to train on (default: both)"
    )
    parser.add_argument(
        "--schedules",
        nargs="+",
        choices=TRAINING_SCHEDULES,
        default=list(TRAINING_SCHEDULES),
        help="schedules to train with (default: all five)",
    )
    parser.add_argument(
        "--optimizer", default="momentum", help="registry spec of the optimiser (default: momentum = SGD, momentum 0.9)"
    )
    parser.add_argument(
        "--learning-rate", type=positive_float, default=0.05, help="peak learning rate of every schedule (default 0.05)"
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help="epochs of every problem (default: moons 40, MNIST 10)")
    parser.add_argument(
        "--mnist-subset", type=positive_int, default=20000, help="MNIST training examples used (default 20000; 60000 = all)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    add_resume_argument(parser)
    return parser


def declare_training(args) -> list[TrainingRun]:
    from lab.registry import parse_spec

    try:
        spec = parse_spec(args.optimizer)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.quick:
        problems = {"moons": Problem("moons", args.epochs or 4, 32), "mnist_mlp": Problem("mnist_mlp", args.epochs or 2, 64, 1200)}
    else:
        problems = {
            "moons": Problem("moons", args.epochs or 40, 32),
            "mnist_mlp": Problem("mnist_mlp", args.epochs or 10, 32, min(args.mnist_subset, 60000)),
        }
    return [
        TrainingRun(problems[name], schedule, spec.label, args.learning_rate, args.seed, False if args.quick else "auto")
        for name in args.problems
        for schedule in args.schedules
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(build_parser(), argv, NAME)
    runs = [] if args.curves_only else declare_training(args)
    output = open_output(args, NAME)

    curves, configs = curve_table(CURVE_EPOCHS)
    write_csv_atomic(output / "schedules.csv", curves)
    write_json_atomic(output / "schedules.json", configs)
    plot_curves(curves, output / "schedules.png")
    print(f"{curves['schedule'].nunique()} schedules over {CURVE_EPOCHS} epochs -> {output / 'schedules.png'}")
    if not runs:
        return 0

    results = run_training(runs, output, tensorboard=not args.no_tensorboard)
    write_csv_atomic(output / "results.csv", results)
    summary = summarise_training(results)
    write_csv_atomic(output / "summary.csv", summary)
    plot_training(results, output / "training.png")
    remove_checkpoints(output)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"results, plots and TensorBoard logs in {output}")
    return 0


if __name__ == "__main__":
    run_main(main)
