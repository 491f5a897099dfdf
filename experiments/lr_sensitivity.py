"""How the learning rate decides between crawling, converging, oscillating and diverging.

Two parts, both on the lab's optimisers:

1. **Surfaces** (notebooks 000 and 001): gradient descent (the lab's SGD) on the bowl x² + y² from
   (4, 4) for 20 steps at 0.05, 0.3, 0.9 and 1.1, and on x² + 5 from 8 for 30 steps at 0.01, 0.1,
   0.5 and 0.9. A run diverges when its loss becomes non-finite or its gap to the minimum grows
   ten-fold (``lab.trajectory.divergence_step``); divergence is marked in the CSV and on the plots.
2. **Model sweep**: each optimiser (sgd, momentum, rmsprop, adam, and the recent muon,
   schedule-free AdamW, RAdam and Prodigy; registry defaults apart from the learning rate)
   trained at every rate of a log grid on make_moons (2-16-8-2, full batch, 100 epochs) and on
   the MNIST MLP (a 10,000-image subset, 2 epochs), as trials of ``experiments.grid``. The final
   training loss against the learning rate shows where each optimiser trains; "trains" means a
   final loss below ``--train-fraction`` times the chance-level loss ln(classes), and the width of
   that range is reported in decades. Protocol: held out -- the sweep picks a best rate (by final
   training loss), so it trains on the training part and validates on the validation part
   (``final_val_accuracy``); the test set is not read.

   The final training loss is measured once after training, over the whole training part, at
   the weights the optimiser says to evaluate (``lab.callbacks.averaged_weights``): the averaged
   iterate x for schedule-free AdamW, whose runs also validate on x every epoch (the grid's rule,
   ``experiments.grid``); the model's own weights for the others.
   ``final_training_loss.csv`` holds it beside the loss at the weights trained (y for
   schedule-free AdamW, where the two differ).

   Muon orthogonalises the updates of the kernels (matrices) and steps the biases with its AdamW
   at ``adam_lr_ratio`` (0.1) times the rate. Prodigy is parameter-free: its "learning rate" is a
   multiplier of the step size it estimates (default 1), so for Prodigy the sweep's rate axis is
   that multiplier -- the figure and the tables say so.

Writes ``surface_trajectories.csv`` (surface, learning_rate, step, x, y, loss, diverged),
``surface_summary.csv``, ``lr_bowl.png``, ``lr_quadratic.png``; ``sweep.csv`` (problem, optimizer,
set_learning_rate, seed, then train_run's epoch rows), ``final_training_loss.csv``, ``sweep_final.csv``,
``trainable_ranges.csv`` / ``.md``, ``lr_sweep.png``; TensorBoard logs under ``tensorboard/``.

    python -m experiments.lr_sensitivity --out runs/lr
    python -m experiments.lr_sensitivity --skip-sweep            # the surfaces only, seconds
    python -m experiments.lr_sensitivity --problems moons --optimizers sgd adam --learning-rates 0.01 0.1 1

Backend: ``KERAS_BACKEND`` as everywhere in Keras; when it is unset this command uses JAX if it is
installed, as ``experiments.compare_optimizers`` does (on a 2-core CPU several times faster than
TensorFlow: moons' one-step epochs are mostly fit's per-epoch overhead, and on JAX the grid trains
the rates of one optimiser as one program), else TensorFlow. The backend is recorded in ``run.json``; numbers are reproducible on the same backend.
"""

from __future__ import annotations

if __name__ == "__main__":  # the command line's default backend, chosen before Keras is imported
    from experiments.cli import prefer_jax_backend

    prefer_jax_backend()

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import cli, report
from experiments.grid import Trial, run_grid
from lab.problems import PROBLEMS, mnist_split

NAME = "lr_sensitivity"


# --- part 1: the notebooks' learning rates on the surfaces ------------------------------------------
@dataclass(frozen=True)
class SurfaceSweep:
    """Gradient descent on one surface from one start at several learning rates."""

    surface: str
    start: tuple[float, ...]
    steps: int
    learning_rates: tuple[float, ...]


SURFACE_SWEEPS: dict[str, SurfaceSweep] = {
    "bowl": SurfaceSweep("bowl", (4.0, 4.0), 20, (0.05, 0.3, 0.9, 1.1)),  # notebook 000
    "quadratic": SurfaceSweep("quadratic", (8.0,), 30, (0.01, 0.1, 0.5, 0.9)),  # notebook 001
}


def run_surface_sweep(sweep: SurfaceSweep) -> pd.DataFrame:
    """Rows of surface, learning_rate, step, x, y, loss, diverged (the run's verdict on every row)."""
    from lab.optimizers import SGD
    from lab.surfaces import get_surface
    from lab.trajectory import descend, divergence_step

    surface = get_surface(sweep.surface)
    frames = []
    for learning_rate in sweep.learning_rates:
        trajectory = descend(surface, SGD(learning_rate=learning_rate), sweep.start, sweep.steps)
        diverged_at = divergence_step(trajectory.losses, surface.minimum_value)
        frames.append(
            pd.DataFrame(
                {
                    "surface": sweep.surface,
                    "learning_rate": learning_rate,
                    "step": np.arange(sweep.steps + 1),
                    "x": trajectory.positions[:, 0],
                    "y": trajectory.positions[:, 1] if surface.dimension == 2 else np.nan,
                    "loss": trajectory.losses,
                    "diverged": diverged_at is not None,
                    "diverged_at_step": diverged_at if diverged_at is not None else pd.NA,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def summarise_surfaces(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (surface, learning_rate): the end point, its loss and distance, the verdict."""
    from lab.surfaces import get_surface

    summary = []
    for (name, learning_rate), group in rows.groupby(["surface", "learning_rate"], sort=False):
        surface = get_surface(name)
        last = group.sort_values("step").iloc[-1]
        point = [last["x"]] if surface.dimension == 1 else [last["x"], last["y"]]
        summary.append(
            {
                "surface": name,
                "learning_rate": learning_rate,
                "steps": int(last["step"]),
                "final_x": last["x"],
                "final_y": last["y"],
                "final_loss": last["loss"],
                "distance_to_minimum": surface.distance_to_minimum(point),
                "diverged": bool(last["diverged"]),
                "diverged_at_step": last["diverged_at_step"],
            }
        )
    return pd.DataFrame(summary)


def plot_surface_sweep(rows: pd.DataFrame, name: str, path: Path) -> None:
    """One panel per learning rate, as in the notebooks; diverged runs are marked in red."""
    from lab.surfaces import get_surface

    plt = report.pyplot()

    surface = get_surface(name)
    rows = rows[rows["surface"] == name]
    rates = list(dict.fromkeys(rows["learning_rate"]))
    figure, axes = plt.subplots(2, math.ceil(len(rates) / 2), figsize=(12, 10.5), squeeze=False)
    for axis, learning_rate in zip(axes.flat, rates):
        group = rows[rows["learning_rate"] == learning_rate].sort_values("step")
        diverged = bool(group["diverged"].iloc[0])
        if surface.dimension == 2:
            mesh_x, mesh_y, values = surface.grid(150)
            axis.contour(mesh_x, mesh_y, values, levels=20, alpha=0.5)
            axis.plot(group["x"], group["y"], "o-", color="red" if diverged else "tab:blue", linewidth=2, markersize=5)
            axis.plot(group["x"].iloc[0], group["y"].iloc[0], "go", markersize=10)
            axis.plot(*surface.minima[0], "r*", markersize=15)
            axis.set_ylim(*surface.box[1])
            axis.set_ylabel("y")
            final = f"final ({group['x'].iloc[-1]:.3g}, {group['y'].iloc[-1]:.3g})"
        else:
            xs, values = surface.grid(300)
            axis.plot(xs, values, color="0.6", linewidth=2)
            axis.plot(group["x"], group["loss"], "o-", color="red" if diverged else "tab:blue", linewidth=2, markersize=5)
            axis.plot(group["x"].iloc[0], group["loss"].iloc[0], "g*", markersize=15)
            axis.set_ylim(0, max(100.0, float(values.max())))
            axis.set_ylabel("f(x)")
            final = f"final x = {group['x'].iloc[-1]:.4g}"
        axis.set_xlim(*surface.box[0])
        axis.set_xlabel("x")
        axis.set_title(f"learning rate = {learning_rate:g}\n{final}")
        axis.grid(True, alpha=0.3)
        if diverged:
            step = group["diverged_at_step"].iloc[0]
            axis.text(0.5, 0.92, f"DIVERGED (step {step})", transform=axis.transAxes, fontsize=14, color="red",
                      ha="center", weight="bold")
    for axis in list(axes.flat)[len(rates):]:
        axis.set_visible(False)
    figure.suptitle(f"Gradient descent on {surface.formula}: effect of the learning rate", fontsize=14)
    report.save_figure(figure, path, dpi=100)


# --- part 2: final loss against the learning rate on real models ----------------------------------
SWEEP_PROBLEMS = {
    "moons": dataclasses.replace(
        PROBLEMS["moons"], epochs=100, description="make_moons 2-16-8-2, full batch, 100 epochs",
        quick={"epochs": 20, "description": "make_moons 2-16-8-2, full batch, 20 epochs (quick)"},
    ),
    "mnist_mlp": dataclasses.replace(
        PROBLEMS["mnist_mlp"], data=partial(mnist_split, subset=10_000), epochs=2,
        description="MNIST MLP 784-128-10 on a 10,000-image subset, batch 32, 2 epochs",
        quick={"data": partial(mnist_split, subset=1_000), "epochs": 1,
               "description": "MNIST MLP on a 1,000-image subset, 1 epoch (quick)"},
    ),
}
SWEEP_OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam", "muon", "schedule_free_adamw", "radam", "prodigy")
QUICK_OPTIMIZERS = ("sgd", "adam")
#: parameter-free optimisers: the swept value multiplies the step size they estimate
MULTIPLIER_OPTIMIZERS = ("prodigy",)
LEARNING_RATES = tuple(float(f"{r:.3g}") for r in np.logspace(-4, 0.5, 10))  # 1e-4 ... 3.16
QUICK_LEARNING_RATES = (1e-3, 0.1, 3.0)
PROTOCOL = "held_out"
SWEEP_FILE = "sweep.csv"
FINAL_FILE = "final_training_loss.csv"
_EVALUATION_BATCH = 4096


def rate_kind(optimizer: str) -> str:
    """``"multiplier"`` for a parameter-free optimiser's swept value, else ``"learning_rate"``."""
    return "multiplier" if optimizer.split(":")[0] in MULTIPLIER_OPTIMIZERS else "learning_rate"


def _training_loss(model, data, loss) -> float:
    """The loss over the whole training part at the model's current weights (in large batches)."""
    import keras

    function = keras.losses.get(loss)
    total = 0.0
    for start in range(0, len(data.x_train), _EVALUATION_BATCH):
        inputs = data.x_train[start:start + _EVALUATION_BATCH]
        outputs = model(inputs, training=False)
        values = keras.ops.convert_to_numpy(function(data.y_train[start:start + _EVALUATION_BATCH], outputs))
        total += float(np.sum(values.astype(np.float64)))
    return total / len(data.x_train)


def final_training_loss(trial: Trial, model, data) -> dict[str, pd.DataFrame]:
    """After a trial: its training loss at the weights trained and at the weights its optimiser
    evaluates (the averaged iterate where it keeps one; else the same number)."""
    from lab.callbacks.averaged_weights import averaged_weights_in, keeps_averaged_iterate

    trained = _training_loss(model, data, trial.problem.loss)
    evaluated = trained
    if keeps_averaged_iterate(model.optimizer):
        with averaged_weights_in(model):
            evaluated = _training_loss(model, data, trial.problem.loss)
    return {FINAL_FILE: pd.DataFrame([{"final_train_loss": evaluated, "final_train_loss_at_trained_weights": trained}])}


def declare_sweep(problems, optimizers: Sequence[str], learning_rates: Sequence[float], seeds: int, *,
                  epochs: int | None = None, batch_size: int | None = None,
                  jit_compile: bool | str = "auto") -> list[Trial]:
    """Every problem x optimizer x learning rate x seed (``set_learning_rate``: train_run's own
    ``learning_rate`` column is the rate the optimiser used); a run whose optimiser keeps an
    averaged iterate validates on it."""
    return [
        Trial(problem=problem, optimizer=optimizer, seed=seed, epochs=epochs, batch_size=batch_size,
              protocol=PROTOCOL, optimizer_arguments={"learning_rate": learning_rate}, jit_compile=jit_compile,
              labels=(("problem", problem.name), ("optimizer", optimizer), ("set_learning_rate", learning_rate),
                      ("seed", seed)))
        for problem in problems
        for optimizer in optimizers
        for learning_rate in learning_rates
        for seed in range(seeds)
    ]


def class_counts(problems) -> dict[str, int]:
    """Classes of each (classification) problem, from its training labels."""
    counts = {}
    for problem in problems:
        if problem.loss != "sparse_categorical_crossentropy":
            raise cli.UsageError(f"--problems {problem.name}: the sweep's threshold is a fraction of the chance-level "
                                 "cross-entropy; it needs a classification problem")
        counts[problem.name] = int(np.unique(problem.split().y_train).size)
    return counts


def final_losses(sweep: pd.DataFrame, classes: dict[str, int], train_fraction: float,
                 final: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run: its final training loss, whether it diverged, and whether it trained.

    The final loss is ``final``'s ``final_train_loss`` (``final_training_loss``: measured after
    training at the weights evaluated) where ``final`` has the run, else the last epoch's running
    loss; ``last_epoch_loss`` is the latter in any case."""
    rows = []
    keys = ["problem", "optimizer", "set_learning_rate", "seed"]
    measured = {}
    if final is not None and len(final):
        measured = {tuple(str(v) for v in key): value for *key, value in
                    final[[*keys, "final_train_loss"]].itertuples(index=False, name=None)}
    for (problem, optimizer, learning_rate, seed), group in sweep.groupby(keys, sort=False):
        last = group.sort_values("epoch").iloc[-1]
        loss = float(measured.get(tuple(str(v) for v in (problem, optimizer, learning_rate, seed)), last["loss"]))
        diverged = (bool((group["status"] == "diverged").any()) or not math.isfinite(float(last["loss"]))
                    or not math.isfinite(loss))
        threshold = train_fraction * math.log(classes[problem])
        rows.append(
            {
                "problem": problem,
                "optimizer": optimizer,
                "learning_rate": learning_rate,
                "rate_is": rate_kind(optimizer),
                "seed": seed,
                "epochs": int(last["epoch"]),
                "final_loss": loss,
                "last_epoch_loss": float(last["loss"]),
                "final_val_accuracy": float(last.get("val_accuracy", np.nan)),
                "diverged": diverged,
                "threshold": threshold,
                "trains": (not diverged) and loss < threshold,
            }
        )
    return pd.DataFrame(rows)


def per_rate(finals: pd.DataFrame) -> pd.DataFrame:
    """One row per (problem, optimizer, learning rate) over the seeds: a rate trains when every
    seed trains, diverges when one does; its loss is the mean (undefined over a diverged seed)."""
    columns = {
        "final_loss": ("final_loss", lambda losses: losses.mean(skipna=False)),
        "trains": ("trains", "all"),
        "diverged": ("diverged", "any"),
    }
    if "threshold" in finals:
        columns["threshold"] = ("threshold", "first")
    return finals.groupby(["problem", "optimizer", "learning_rate"], sort=False).agg(**columns).reset_index()


def _widest_band(rates: Sequence[float], trains: Sequence[bool]) -> tuple[float, float]:
    """The lowest and highest rate of the widest run of consecutive grid rates that all train
    (``nan``s when none trains): a rate that fails between two that train splits the range."""
    best, start = (math.nan, math.nan), None
    for rate, ok in zip(rates, trains):
        if not ok:
            start = None
            continue
        start = rate if start is None else start
        if math.isnan(best[0]) or rate / start > best[1] / best[0]:
            best = (start, rate)
    return best


def trainable_ranges(finals: pd.DataFrame) -> pd.DataFrame:
    """Per (problem, optimizer): the widest band of consecutive grid rates that train (over every
    seed), its ends and its width in decades (``nan`` when no rate trains, 0 for a single rate);
    ``rate_is`` says whether the rates are learning rates or a parameter-free one's multipliers."""
    rows = []
    for (problem, optimizer), group in per_rate(finals).groupby(["problem", "optimizer"], sort=False):
        group = group.sort_values("learning_rate")
        low, high = _widest_band(group["learning_rate"].astype(float).tolist(), group["trains"].astype(bool).tolist())
        rows.append(
            {
                "problem": problem,
                "optimizer": optimizer,
                "rate_is": rate_kind(optimizer),
                "rates_tried": len(group),
                "rates_that_train": int(group["trains"].sum()),
                "lowest": low,
                "highest": high,
                "width_decades": math.log10(high / low),
                "best_learning_rate": float(group.loc[group["final_loss"].fillna(np.inf).idxmin(), "learning_rate"]),
                "diverged_from": float(group[group["diverged"]]["learning_rate"].min())
                if group["diverged"].any()
                else math.nan,
            }
        )
    return pd.DataFrame(rows)


def plot_model_sweep(finals: pd.DataFrame, path: Path) -> None:
    """Final training loss (mean over seeds) against the learning rate, per problem; diverged
    rates as crosses; a parameter-free optimiser's multiplier on the same axis, dashed."""
    plt = report.pyplot()
    rates = per_rate(finals)
    problems = list(dict.fromkeys(rates["problem"]))
    figure, axes = plt.subplots(1, len(problems), figsize=(6.5 * len(problems), 5), squeeze=False)
    for axis, problem in zip(axes[0], problems):
        rows = rates[rates["problem"] == problem]
        # crosses go just above the highest loss drawn (a diverged run's own loss would stretch the
        # axis by decades), one row per optimiser so that crosses at one rate do not hide each other
        drawn = rows.loc[~rows["diverged"], "final_loss"].replace([np.inf, -np.inf], np.nan).dropna()
        ceiling = float(drawn.max()) * 2 if len(drawn) else 10.0
        for index, (optimizer, group) in enumerate(rows.groupby("optimizer", sort=False)):
            group = group.sort_values("learning_rate")
            shown = group["final_loss"].where(~group["diverged"])
            multiplier = rate_kind(optimizer) == "multiplier"
            # tab10 without its grey, which the threshold line uses
            colour = plt.get_cmap("tab10")([0, 1, 2, 3, 4, 5, 6, 8, 9][index % 9])
            (line,) = axis.loglog(group["learning_rate"], shown, "s--" if multiplier else "o-", color=colour,
                                  label=optimizer + (" (× its own step size)" if multiplier else ""))
            bad = group[group["diverged"]]
            if len(bad):
                axis.plot(bad["learning_rate"], [ceiling * 1.5**index] * len(bad), "x", color=line.get_color(),
                          markersize=12, markeredgewidth=2.5)
        axis.axhline(rows["threshold"].iloc[0], color="0.4", linestyle="--", label="trains below")
        swept_multiplier = any(rate_kind(optimizer) == "multiplier" for optimizer in rows["optimizer"])
        multiplier_note = "; Prodigy: multiplier of its estimated step" if swept_multiplier else ""
        axis.set_xlabel("learning rate (log)" + multiplier_note)
        axis.set_ylabel("final training loss (log)")
        axis.set_title(f"{problem}: final loss vs learning rate (× = diverged)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8, ncol=2)
    report.save_figure(figure, path, dpi=110)


def build_parser():
    parser = cli.make_parser(
        NAME,
        __doc__.split("\n\n")[0] + "\n\nDefaults: the surfaces, then moons (100 full-batch epochs) and the MNIST "
        "MLP\n(10,000 images, 2 epochs) swept over 10 rates from 1e-4 to 3.16 with sgd momentum rmsprop adam\n"
        "muon schedule_free_adamw radam prodigy (Prodigy's rate: a multiplier), 1 seed (--quick: 20 and 1\n"
        "epochs, 1,000 images, rates 1e-3 0.1 3, sgd adam).",
    )
    cli.add_training_arguments(parser, problems=tuple(SWEEP_PROBLEMS), optimizers=SWEEP_OPTIMIZERS, seeds=1)
    parser.add_argument(
        "--learning-rates", nargs="+", type=cli.positive_float, default=None, metavar="RATE",
        help="learning rates of the sweep (default: 10 log-spaced from 1e-4 to 3.16; --quick: 1e-3 0.1 3)",
    )
    parser.add_argument(
        "--train-fraction", type=cli.positive_float, default=0.5,
        help="a run trains when its final loss < this fraction of ln(classes) (default: 0.5)",
    )
    parser.add_argument("--skip-sweep", action="store_true", help="only the surfaces part")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse_arguments(build_parser(), argv, NAME)
    if not args.skip_sweep:
        problems = cli.resolve_problems(args, SWEEP_PROBLEMS)
        quick_optimizers = args.quick and "--optimizers" not in args.command_line
        optimizers = cli.check_optimizers(QUICK_OPTIMIZERS if quick_optimizers else args.optimizers)
        learning_rates = args.learning_rates or list(QUICK_LEARNING_RATES if args.quick else LEARNING_RATES)
        # --quick: no XLA, whose compiling costs more than such small runs take
        trials = declare_sweep(problems, optimizers, learning_rates, args.seeds, epochs=args.epochs,
                               batch_size=args.batch_size, jit_compile=False if args.quick else "auto")
        classes = class_counts(problems)
        options = cli.grid_options(args)
        if not options["distributed"].is_chief:  # a cluster worker: trains in step, keeps nothing
            run_grid(trials, Path("."), results_file=SWEEP_FILE, after=final_training_loss,
                     extra_files=[FINAL_FILE], **options)
            return 0
    out = cli.open_output(args, NAME)

    rows = pd.concat([run_surface_sweep(sweep) for sweep in SURFACE_SWEEPS.values()], ignore_index=True)
    cli.write_csv_atomic(out / "surface_trajectories.csv", rows)
    surface_summary = summarise_surfaces(rows)
    cli.write_csv_atomic(out / "surface_summary.csv", surface_summary)
    for name in SURFACE_SWEEPS:
        plot_surface_sweep(rows, name, out / f"lr_{name}.png")
    print(surface_summary[["surface", "learning_rate", "final_loss", "distance_to_minimum", "diverged"]].to_string(index=False))
    if args.skip_sweep:
        print(f"wrote {out}")
        return 0

    grid = run_grid(trials, out, results_file=SWEEP_FILE, after=final_training_loss, extra_files=[FINAL_FILE],
                    **options)
    finals = final_losses(grid.results, classes, args.train_fraction, grid.extras.get(FINAL_FILE))
    cli.write_csv_atomic(out / "sweep_final.csv", finals)
    ranges = trainable_ranges(finals)
    cli.write_csv_atomic(out / "trainable_ranges.csv", ranges)
    cli.write_text_atomic(out / "trainable_ranges.md", report.markdown_table(ranges, "{:.4g}"))
    plot_model_sweep(finals, out / "lr_sweep.png")
    print(report.markdown_table(ranges, "{:.4g}"))
    multipliers = [optimizer for optimizer in optimizers if rate_kind(optimizer) == "multiplier"]
    if multipliers:
        print(f"{', '.join(multipliers)}: parameter-free; the swept rate is a multiplier of its estimated step size")
    print("protocol: held out -- trained on the training part, final_val_accuracy on the validation part; "
          "the test set is not read")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
