"""Every lab learning-rate schedule, plotted, and what the main ones do to training.

Part 1, the curves: each schedule of ``lab.schedules`` over 100 epochs (one step = one epoch),
initial learning rate 0.1 -- notebook 000's figure (constant, step, exponential, cosine, warm-up +
cosine), the floors of notebooks 002 and 004 (cosine and warm-up + cosine down to 0.001), and the
schedules the notebooks lack (one-cycle, cyclical in its three modes, warm restarts, a
``Sequential`` composition, linear warm-up, linear and polynomial decay, Keras's piecewise-constant
and inverse-time decay and PyTorch's multi-step, and warm-up-stable-decay with its three
cool-downs). Writes ``schedules.csv`` (schedule, panel, epoch, learning_rate), ``schedules.json``
(each schedule's Keras config) and ``schedules.png``.

Part 2, the effect: an optimiser (SGD with momentum 0.9 by default) trained with a constant rate,
step decay, cosine, warm-up + cosine and one-cycle -- all peaking at the same rate -- on make_moons
(batch 32, 40 epochs) and the MNIST MLP (a 20,000-image subset, batch 32, 10 epochs), as trials of
``experiments.grid``. Schedules are declared in epochs and converted to steps with
``lab.schedules.per_epoch``. Protocol: held out -- the summary reports each run's best
validation accuracy, a best epoch, so the runs train on the training part and validate on the
validation part; the test set is not read. Writes ``results.csv`` (one row per problem,
schedule, optimizer, seed and epoch), ``summary.csv``, ``training.png`` and TensorBoard logs
under ``tensorboard/``.

    python -m experiments.schedules                 # both parts
    python -m experiments.schedules --curves-only   # part 1 only (a second or two)
    python -m experiments.schedules --quick         # a smoke run of both parts
    python -m experiments.schedules --problems moons --schedules constant one_cycle --optimizers momentum adam
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import cli, report
from experiments.grid import Trial, run_grid
from lab.problems import PROBLEMS, mnist_split, protocol_view

NAME = "schedules"
INITIAL_LEARNING_RATE = 0.1  # notebook 000's initial_lr
CURVE_EPOCHS = 100  # notebook 000's total_epochs
FLOOR = 0.001  # notebooks 002 and 004: alpha_min / eta_min
LOG_PANELS = ("floors (notebooks 002, 004)", "composition", "piecewise and inverse time")  # a log axis shows the floor


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
    linear = "warm-up, linear and polynomial"
    piecewise = "piecewise and inverse time"
    wsd = "warm-up, stable, decay (WSD)"
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
        # Warm-up alone (then flat) and straight or polynomial decays: to 0 over the run, to the
        # floor with power 2, and Keras's cycle, each restart over the next multiple of 30 epochs.
        Curve(linear, "linear_warmup", lambda n: s.LinearWarmup(lr, warmup_steps=10)),
        Curve(linear, "linear_decay", lambda n: s.LinearDecay(lr, decay_steps=n)),
        Curve(
            linear, "polynomial_power_2", lambda n: s.PolynomialDecay(lr, decay_steps=n, end_learning_rate=FLOOR, power=2.0)
        ),
        Curve(
            linear,
            "polynomial_cycle",
            lambda n: s.PolynomialDecay(lr, decay_steps=30, end_learning_rate=FLOOR, cycle=True),
        ),
        # Keras's PiecewiseConstantDecay (a boundary belongs to the piece before it), PyTorch's
        # MultiStepLR (switching at each milestone), and inverse-time decay, smooth and stepped.
        Curve(piecewise, "piecewise_constant", lambda n: s.PiecewiseConstant([30, 60, 80], [lr, lr / 2, lr / 10, FLOOR])),
        Curve(piecewise, "multi_step", lambda n: s.PiecewiseConstant.from_milestones(lr, [30, 60, 80], gamma=0.1)),
        Curve(piecewise, "inverse_time", lambda n: s.InverseTimeDecay(lr, decay_steps=10, decay_rate=0.5)),
        Curve(
            piecewise,
            "inverse_time_staircase",
            lambda n: s.InverseTimeDecay(lr, decay_steps=10, decay_rate=0.5, staircase=True),
        ),
        # WSD: 10 warm-up epochs, the peak held, the last 20% cooled down to 0 in each shape.
        *(
            Curve(
                wsd,
                f"wsd_{shape}",
                lambda n, shape=shape: s.WarmupStableDecay(lr, total_steps=n, warmup_steps=10, decay_shape=shape),
            )
            for shape in ("linear", "cosine", "1-sqrt")
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
    plt = report.pyplot()
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
    report.save_figure(figure, path, dpi=110)


# --------------------------------------------------------------------------------------------
# Part 2: the effect on training, declared as data.

TRAINING_SCHEDULES = ("constant", "step", "cosine", "warmup_cosine", "one_cycle", "warmup_stable_decay")
DEFAULT_SCHEDULES = TRAINING_SCHEDULES[:5]  # the notebooks' five; warmup-stable-decay on request
PROTOCOL = "held_out"
QUICK_MNIST_SUBSET = 1200


def training_problems(mnist_subset: int) -> dict:
    """This study's versions of moons and the MNIST MLP (``--quick``: fewer epochs and images)."""
    return {
        "moons": dataclasses.replace(
            PROBLEMS["moons"], epochs=40, batch_size=32, description="make_moons 2-16-8-2, batch 32, 40 epochs",
            quick={"epochs": 4, "description": "make_moons 2-16-8-2, batch 32, 4 epochs (quick)"},
        ),
        "mnist_mlp": dataclasses.replace(
            PROBLEMS["mnist_mlp"], data=partial(mnist_split, subset=min(mnist_subset, 60_000)), epochs=10,
            description=f"MNIST MLP 784-128-10 on {min(mnist_subset, 60_000):,} images, batch 32, 10 epochs",
            quick={"data": partial(mnist_split, subset=QUICK_MNIST_SUBSET), "epochs": 2, "batch_size": 64,
                   "description": f"MNIST MLP on {QUICK_MNIST_SUBSET:,} images, batch 64, 2 epochs (quick)"},
        ),
    }


def training_schedule(name: str, peak_learning_rate: float, epochs: int, steps_per_epoch: int):
    """The schedule ``name`` over ``epochs`` epochs, peaking at ``peak_learning_rate``.

    All are declared in epochs and converted to steps with ``per_epoch``: step decay halves the
    rate four times over the run (every quarter), cosine anneals to 0 over the run, warm-up +
    cosine warms up linearly from 0 over the first tenth, one-cycle is PyTorch's default shape,
    warmup-stable-decay warms up over the first tenth, holds the peak and cools down linearly to
    0 over the last fifth (Hägele et al.'s recipe).
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
    if name == "warmup_stable_decay":
        return s.per_epoch(s.WarmupStableDecay, steps_per_epoch, peak_learning_rate=peak, total_steps=epochs,
                           warmup_steps=epochs / 10, decay_fraction=0.2)
    raise cli.UsageError(f"unknown schedule {name!r}; valid: {', '.join(TRAINING_SCHEDULES)}")


def declare_training(problems, schedules: Sequence[str], optimizers: Sequence[str], peak_learning_rate: float,
                     seeds: int, *, epochs: int | None = None, batch_size: int | None = None,
                     jit_compile: bool | str = "auto") -> list[Trial]:
    """Every problem x schedule x optimizer x seed, each schedule built for its run's steps."""
    trials = []
    for problem in problems:
        examples = len(protocol_view(problem.split(), PROTOCOL).x_train)  # the schedules count steps
        run_epochs = epochs or problem.epochs
        steps_per_epoch = math.ceil(examples / (batch_size or problem.batch_size or examples))
        for schedule in schedules:
            rate = training_schedule(schedule, peak_learning_rate, run_epochs, steps_per_epoch)
            trials += [
                Trial(problem=problem, optimizer=optimizer, seed=seed, epochs=epochs, batch_size=batch_size,
                      protocol=PROTOCOL, optimizer_arguments={"learning_rate": rate}, jit_compile=jit_compile,
                      labels=(("problem", problem.name), ("schedule", schedule), ("optimizer", optimizer),
                              ("seed", seed)))
                for optimizer in optimizers
                for seed in range(seeds)
            ]
    return trials


def summarise_training(results: pd.DataFrame) -> pd.DataFrame:
    """Per run: final and best validation accuracy, final losses and rate, time, status."""
    keys = ["problem", "schedule", "optimizer", "seed"]
    final = results.groupby(keys, sort=False).tail(1)
    best = results.groupby(keys, sort=False)["val_accuracy"].max().rename("best_val_accuracy")
    summary = final.set_index(keys)[
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
    """Rows: problems; columns: train loss, validation loss and accuracy, learning rate per epoch
    (the mean over seeds)."""
    from matplotlib.ticker import MaxNLocator

    plt = report.pyplot()
    problems = list(dict.fromkeys(results["problem"]))
    several = results["optimizer"].nunique() > 1
    columns = [("loss", "train loss", True), ("val_loss", "validation loss", True),
               ("val_accuracy", "validation accuracy", False), ("learning_rate", "learning rate (end of epoch)", False)]
    figure, axes = plt.subplots(len(problems), len(columns), figsize=(4.2 * len(columns), 3.4 * len(problems)), squeeze=False)
    for row, problem in zip(axes, problems):
        subset = results[results["problem"] == problem]
        for axis, (column, title, log) in zip(row, columns):
            for (schedule, optimizer), group in subset.groupby(["schedule", "optimizer"], sort=False):
                curve = group.groupby("epoch")[column].mean()
                axis.plot(curve.index, curve.to_numpy(), marker="." if len(curve) < 15 else None,
                          label=f"{schedule} {optimizer}" if several else schedule)
            axis.set_title(f"{problem}: {title}")
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            if log:
                axis.set_yscale("log")
            axis.grid(True, alpha=0.3)
        row[0].legend(fontsize=7)
    optimizers = ", ".join(dict.fromkeys(results["optimizer"]))
    figure.suptitle(f"Learning-rate schedules in training ({optimizers}, same peak rate)")
    report.save_figure(figure, path, dpi=110)


# --------------------------------------------------------------------------------------------
# Command line.


def build_parser():
    parser = cli.make_parser(
        NAME,
        __doc__.split("\n\n")[0] + "\n\nDefaults for part 2: moons (batch 32, 40 epochs) and the MNIST MLP "
        "(20,000 images,\nbatch 32, 10 epochs), all five schedules peaking at 0.05, momentum, 1 seed\n(--quick: "
        "4 and 2 epochs, 1,200 images in batches of 64).",
    )
    parser.add_argument("--curves-only", action="store_true", help="only part 1: the schedule curves (no training)")
    cli.add_training_arguments(parser, problems=("moons", "mnist_mlp"), optimizers=("momentum",), seeds=1)
    parser.add_argument(
        "--schedules", nargs="+", choices=TRAINING_SCHEDULES, default=list(DEFAULT_SCHEDULES),
        help="schedules to train with (default: the first five)",
    )
    parser.add_argument(
        "--learning-rate", type=cli.positive_float, default=0.05, help="peak learning rate of every schedule (default 0.05)"
    )
    parser.add_argument(
        "--mnist-subset", type=cli.positive_int, default=20000, help="MNIST training examples used (default 20000; 60000 = all)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse_arguments(build_parser(), argv, NAME)
    trials, options = [], None
    if not args.curves_only:
        problems = cli.resolve_problems(args, training_problems(args.mnist_subset))
        optimizers = cli.check_optimizers(args.optimizers)
        trials = declare_training(problems, args.schedules, optimizers, args.learning_rate, args.seeds,
                                  epochs=args.epochs, batch_size=args.batch_size,
                                  jit_compile=False if args.quick else "auto")
        options = cli.grid_options(args)
        if not options["distributed"].is_chief:  # a cluster worker: trains in step, keeps nothing
            run_grid(trials, Path("."), **options)
            return 0
    output = cli.open_output(args, NAME)

    curves, configs = curve_table(CURVE_EPOCHS)
    cli.write_csv_atomic(output / "schedules.csv", curves)
    cli.write_json_atomic(output / "schedules.json", configs)
    plot_curves(curves, output / "schedules.png")
    print(f"{curves['schedule'].nunique()} schedules over {CURVE_EPOCHS} epochs -> {output / 'schedules.png'}")
    if not trials:
        return 0

    results = run_grid(trials, output, **options).results
    summary = summarise_training(results)
    cli.write_csv_atomic(output / "summary.csv", summary)
    plot_training(results, output / "training.png")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("protocol: held out -- trained on the training part, val_* (and the best epoch) on the validation "
          "part; the test set is not read")
    print(f"results, plots and TensorBoard logs in {output}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
