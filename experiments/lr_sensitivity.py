"""How the learning rate decides between crawling, converging, oscillating and diverging.

Two parts, both on the lab's optimisers:

1. **Surfaces** (notebooks 000 and 001): gradient descent (the lab's SGD) on the bowl x² + y² from
   (4, 4) for 20 steps at 0.05, 0.3, 0.9 and 1.1, and on x² + 5 from 8 for 30 steps at 0.01, 0.1,
   0.5 and 0.9. A run diverges when its loss becomes non-finite or its gap to the minimum grows
   ten-fold (``lab.trajectory.divergence_step``); divergence is marked in the CSV and on the plots.
2. **Model sweep**: each optimiser (sgd, momentum, rmsprop, adam; registry defaults apart from the
   learning rate) trained at every rate of a log grid on make_moons (2-16-8-2, full batch) and on
   the MNIST MLP (a training subset), through ``experiments.training.train_run``. The final
   training loss against the learning rate shows where each optimiser trains; "trains" means a
   final loss below ``--train-fraction`` times the chance-level loss ln(classes), and the width of
   that range is reported in decades.

Writes ``surface_trajectories.csv`` (surface, learning_rate, step, x, y, loss, diverged),
``surface_summary.csv``, ``lr_bowl.png``, ``lr_quadratic.png``; ``sweep.csv`` (problem, optimizer,
set_learning_rate, then train_run's epoch rows), ``sweep_final.csv``, ``trainable_ranges.csv`` / ``.md``,
``lr_sweep.png``; TensorBoard logs under ``tensorboard/``.

    python -m experiments.lr_sensitivity --out runs/lr
    python -m experiments.lr_sensitivity --skip-sweep            # the surfaces only, seconds
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from experiments import cli

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lab.surfaces import get_surface

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
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# --- part 2: final loss against the learning rate on real models ----------------------------------
@dataclass(frozen=True)
class Problem:
    """A dataset and model for the sweep, with its training budget."""

    name: str
    epochs: int
    batch_size: int | None  # None: full batch
    subset: int | None  # MNIST training examples kept
    classes: int


PROBLEMS = {
    "moons": Problem("moons", epochs=100, batch_size=None, subset=None, classes=2),
    "mnist_mlp": Problem("mnist_mlp", epochs=2, batch_size=32, subset=10_000, classes=10),
}
QUICK_PROBLEMS = {
    "moons": Problem("moons", epochs=20, batch_size=None, subset=None, classes=2),
    "mnist_mlp": Problem("mnist_mlp", epochs=1, batch_size=32, subset=1_000, classes=10),
}
SWEEP_OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
LEARNING_RATES = tuple(float(f"{r:.3g}") for r in np.logspace(-4, 0.5, 10))  # 1e-4 ... 3.16
QUICK_LEARNING_RATES = (1e-3, 0.1, 3.0)


def _load_data(problem: Problem):
    from lab import datasets

    if problem.name == "moons":
        return datasets.load_moons()
    return datasets.mnist_arrays(flatten=True, subset=problem.subset)


def _load_model(problem: Problem, seed: int):
    from lab import models

    return models.moons_net(seed) if problem.name == "moons" else models.mnist_mlp(seed)


def run_model_sweep(
    problems: Sequence[Problem],
    optimizers: Sequence[str],
    learning_rates: Sequence[float],
    *,
    seed: int = 0,
    tensorboard_root: Path | None = None,
    checkpoint_root: Path | None = None,
) -> pd.DataFrame:
    """train_run for every (problem, optimizer, learning rate): its per-epoch rows, labelled.

    With ``checkpoint_root`` each run checkpoints under it (and resumes from there).
    """
    from experiments.training import train_run
    from lab.registry import build_optimizer

    frames = []
    data_cache = {}
    runs = [(p, o, r) for p in problems for o in optimizers for r in learning_rates]
    for problem, optimizer, learning_rate in tqdm(runs, desc="lr sweep", unit="run"):
        if problem.name not in data_cache:
            data_cache[problem.name] = _load_data(problem)
        data = data_cache[problem.name]
        model = _load_model(problem, seed)
        run_folder = Path(problem.name, f"{optimizer}_lr{learning_rate:g}")
        tensorboard = None if tensorboard_root is None else tensorboard_root / run_folder
        rows = train_run(
            model,
            build_optimizer(optimizer, learning_rate=learning_rate),
            data,
            epochs=problem.epochs,
            batch_size=problem.batch_size or len(data.x_train),
            seed=seed,
            tensorboard_dir=tensorboard,
            checkpoint_dir=None if checkpoint_root is None else checkpoint_root / run_folder,
        )
        rows.insert(0, "set_learning_rate", learning_rate)  # train_run's learning_rate: the rate used
        rows.insert(0, "optimizer", optimizer)
        rows.insert(0, "problem", problem.name)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def final_losses(sweep: pd.DataFrame, classes: dict[str, int], train_fraction: float) -> pd.DataFrame:
    """One row per run: the last epoch's loss, whether it diverged, and whether it trained."""
    rows = []
    for (problem, optimizer, learning_rate), group in sweep.groupby(["problem", "optimizer", "set_learning_rate"], sort=False):
        last = group.sort_values("epoch").iloc[-1]
        diverged = bool((group["status"] == "diverged").any()) or not math.isfinite(float(last["loss"]))
        threshold = train_fraction * math.log(classes[problem])
        rows.append(
            {
                "problem": problem,
                "optimizer": optimizer,
                "learning_rate": learning_rate,
                "epochs": int(last["epoch"]),
                "final_loss": float(last["loss"]),
                "final_val_accuracy": float(last.get("val_accuracy", np.nan)),
                "diverged": diverged,
                "threshold": threshold,
                "trains": (not diverged) and float(last["loss"]) < threshold,
            }
        )
    return pd.DataFrame(rows)


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
    """Per (problem, optimizer): the widest band of consecutive grid rates that train, its ends
    and its width in decades (``nan`` when no rate trains, 0 for a single rate)."""
    rows = []
    for (problem, optimizer), group in finals.groupby(["problem", "optimizer"], sort=False):
        group = group.sort_values("learning_rate")
        low, high = _widest_band(group["learning_rate"].astype(float).tolist(), group["trains"].astype(bool).tolist())
        rows.append(
            {
                "problem": problem,
                "optimizer": optimizer,
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
    """Final training loss against the learning rate, per problem; diverged runs as red crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys(finals["problem"]))
    figure, axes = plt.subplots(1, len(problems), figsize=(6.5 * len(problems), 5), squeeze=False)
    for axis, problem in zip(axes[0], problems):
        rows = finals[finals["problem"] == problem]
        # crosses go just above the highest loss drawn (a diverged run's own loss would stretch the
        # axis by decades), one row per optimiser so that crosses at one rate do not hide each other
        drawn = rows.loc[~rows["diverged"], "final_loss"].replace([np.inf, -np.inf], np.nan).dropna()
        ceiling = float(drawn.max()) * 2 if len(drawn) else 10.0
        for index, (optimizer, group) in enumerate(rows.groupby("optimizer", sort=False)):
            group = group.sort_values("learning_rate")
            shown = group["final_loss"].where(~group["diverged"])
            (line,) = axis.loglog(group["learning_rate"], shown, "o-", label=optimizer)
            bad = group[group["diverged"]]
            if len(bad):
                axis.plot(bad["learning_rate"], [ceiling * 1.5**index] * len(bad), "x", color=line.get_color(),
                          markersize=12, markeredgewidth=2.5)
        axis.axhline(rows["threshold"].iloc[0], color="0.4", linestyle="--", label="trains below")
        axis.set_xlabel("learning rate (log)")
        axis.set_ylabel("final training loss (log)")
        axis.set_title(f"{problem}: final loss vs learning rate (× = diverged)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _list(text: str | None, valid: Sequence[str], what: str) -> list[str] | None:
    if text is None:
        return None
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in valid]
    if unknown or not chosen:
        raise cli.UsageError(f"unknown {what} {', '.join(unknown) or repr(text)}; valid: {', '.join(valid)}")
    return chosen


def _rates(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        rates = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise cli.UsageError(f"--learning-rates must be comma-separated numbers, got {text!r}") from None
    if not rates or any(not (r > 0 and math.isfinite(r)) for r in rates):
        raise cli.UsageError(f"--learning-rates must be positive numbers, got {text!r}")
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.make_parser(NAME, __doc__)
    parser.add_argument("--problems", help=f"comma-separated sweep problems (default: {', '.join(PROBLEMS)})")
    parser.add_argument(
        "--optimizers", help=f"comma-separated registry names for the sweep (default: {', '.join(SWEEP_OPTIMIZERS)})"
    )
    parser.add_argument(
        "--learning-rates",
        help="comma-separated learning rates of the sweep (default: 10 log-spaced from 1e-4 to 3.16; --quick: 1e-3,0.1,3)",
    )
    parser.add_argument("--epochs", type=cli.positive_int, help="epochs per sweep run (default: per problem)")
    parser.add_argument(
        "--train-fraction",
        type=cli.positive_float,
        default=0.5,
        help="a run trains when its final loss < this fraction of ln(classes) (default: 0.5)",
    )
    parser.add_argument("--seed", type=int, default=0, help="model and data-order seed (default: 0)")
    parser.add_argument("--skip-sweep", action="store_true", help="only the surfaces part")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    cli.add_resume_argument(parser)
    args = cli.parse_arguments(parser, argv, NAME)
    from lab.registry import OPTIMIZERS

    table = QUICK_PROBLEMS if args.quick else PROBLEMS
    problem_names = _list(args.problems, list(table), "problem") or list(table)
    optimizers = _list(args.optimizers, list(OPTIMIZERS), "optimizer") or (
        ["sgd", "adam"] if args.quick else list(SWEEP_OPTIMIZERS)
    )
    learning_rates = _rates(args.learning_rates) or list(QUICK_LEARNING_RATES if args.quick else LEARNING_RATES)
    out = cli.open_output(args, NAME)

    rows = pd.concat([run_surface_sweep(sweep) for sweep in SURFACE_SWEEPS.values()], ignore_index=True)
    cli.write_csv_atomic(out / "surface_trajectories.csv", rows)
    surface_summary = summarise_surfaces(rows)
    cli.write_csv_atomic(out / "surface_summary.csv", surface_summary)
    for name in SURFACE_SWEEPS:
        plot_surface_sweep(rows, name, out / f"lr_{name}.png")
    print(surface_summary[["surface", "learning_rate", "final_loss", "distance_to_minimum", "diverged"]].to_string(index=False))

    if not args.skip_sweep:
        problems = [table[name] for name in problem_names]
        if args.epochs:
            problems = [Problem(p.name, args.epochs, p.batch_size, p.subset, p.classes) for p in problems]
        sweep = run_model_sweep(
            problems,
            optimizers,
            learning_rates,
            seed=args.seed,
            tensorboard_root=None if args.no_tensorboard else out / "tensorboard",
            checkpoint_root=cli.checkpoint_dir(out),
        )
        cli.write_csv_atomic(out / "sweep.csv", sweep)
        finals = final_losses(sweep, {p.name: p.classes for p in problems}, args.train_fraction)
        cli.write_csv_atomic(out / "sweep_final.csv", finals)
        ranges = trainable_ranges(finals)
        cli.write_csv_atomic(out / "trainable_ranges.csv", ranges)
        from experiments.toy_surfaces import markdown_table

        cli.write_text_atomic(out / "trainable_ranges.md", markdown_table(ranges))
        plot_model_sweep(finals, out / "lr_sweep.png")
        cli.remove_checkpoints(out)
        print(markdown_table(ranges))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
