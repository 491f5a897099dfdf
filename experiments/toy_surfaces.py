"""Optimiser trajectories on the notebooks' test surfaces.

The notebooks' optimisers -- SGD, momentum in each style (keras, heavy-ball, EMA), Nesterov,
AdaGrad, RMSprop, Adam and AdamW -- and the recent ones -- schedule-free AdamW, RAdam, Prodigy and
schedule-free SGD -- start from the same point on the bowl x² + y², the ravine x² + 10y²
(notebook 000), Rosenbrock (a = 1, b = 100; notebook 002), Beale, and the 1-D non-convex
x⁴ − 5x³ + 4x² + 3x from −1, 0, 2 and 4 (notebook 001), and take a fixed number of steps. Each
point is a ``keras.Variable``; the gradient comes from autodiff; the step is ``optimizer.apply``.

Which point a trajectory shows: the one the optimiser evaluates (``lab.trajectory.descend`` with
``evaluated=True``). For the schedule-free methods that is the averaged iterate x of their
``evaluation_weights``, not the interpolation y the variable holds while the gradient is taken
there; for every other optimiser it is the variable itself.

Muon is left out: it orthogonalises the update of matrix-shaped variables only, and a surface's
point is a vector, so Muon would silently be its AdamW fallback here (its learning-rate sweep on
the MNIST MLP, ``experiments.lr_sensitivity``, is where it applies). NAdamW is left out too: on
these surfaces it is Nadam with AdamW's decoupled decay, and what the decay does here (pull the
point towards the origin) AdamW already shows.

The ravine run uses notebook 000's settings: from (8, 3), 50 steps of vanilla GD at 0.05,
heavy-ball momentum at 0.05 with β = 0.9, RMSprop at 0.5 with ρ = 0.9 and Adam at 0.5 with ε = 1e-8
placed as in the paper -- the lab's classes end where the notebook's NumPy code ends.

Learning rates: the three momentum styles share one step size: the EMA form runs at
``lr / (1 − β)``, at which it coincides with heavy-ball (and Keras's form always does under a
constant learning rate), so the three curves lie on top of each other -- that is the point.
Schedule-free AdamW and RAdam run at Adam's rate (the swap a user makes), schedule-free SGD at
the EMA form's ``lr / (1 − β)`` (its base sequence takes the whole step, as the EMA form does),
and Prodigy, parameter-free, at its multiplier 1 on every surface. RAdam's first steps (its
variance estimate is unusable until ``ρ_t > 5``, the first 5 steps at β₂ = 0.999) are momentum
steps at the learning rate, unscaled by the gradient's size: at Adam's rate on the steep ravine,
Rosenbrock and Beale they throw it off.

Writes ``trajectories.csv`` (surface, optimizer, step, x, y, loss; y empty in 1-D),
``final_distances.csv`` / ``.md`` (distance from the last point to the nearest minimum),
and one figure per surface, ``surface_<name>.png``: the trajectories on the contour plot (or on
the curve in 1-D) next to the loss gap f − f* per step on a log axis; the notebooks' optimisers
in the top row, the recent ones in a second row with Adam drawn again in grey for reference.

    python -m experiments.toy_surfaces --out runs/toy
    python -m experiments.toy_surfaces --surfaces ravine --optimizers sgd,heavy_ball,rmsprop,adam
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from experiments import cli, report

NAME = "toy_surfaces"


NOTEBOOKS = "the notebooks' optimisers"
RECENT = "recent optimisers"
REFERENCE = "adam"  # drawn again, in grey, beside the recent optimisers


@dataclass(frozen=True)
class OptimizerChoice:
    """A named optimiser of the lineup: a registry spec (learning rate set per surface) and the
    row of the figures it is drawn in."""

    label: str
    spec: str
    group: str = NOTEBOOKS


#: The lineup, in plotting order.
OPTIMIZERS: dict[str, OptimizerChoice] = {
    choice.label: choice
    for choice in [
        OptimizerChoice("sgd", "sgd"),
        OptimizerChoice("momentum", "momentum:momentum=0.9,momentum_style=keras"),
        OptimizerChoice("heavy_ball", "momentum:momentum=0.9,momentum_style=heavy_ball"),
        OptimizerChoice("ema_momentum", "momentum:momentum=0.9,momentum_style=ema"),
        OptimizerChoice("nesterov", "nesterov:momentum=0.9"),
        OptimizerChoice("adagrad", "adagrad"),
        OptimizerChoice("rmsprop", "rmsprop:rho=0.9,epsilon=1e-8"),
        OptimizerChoice("adam", "adam:epsilon=1e-8,epsilon_placement=paper"),
        OptimizerChoice("adamw", "adamw:epsilon=1e-8,epsilon_placement=paper"),
        OptimizerChoice("schedule_free_adamw", "schedule_free_adamw", RECENT),
        OptimizerChoice("radam", "radam", RECENT),
        OptimizerChoice("prodigy", "prodigy", RECENT),
        OptimizerChoice("schedule_free_sgd", "schedule_free_sgd", RECENT),
    ]
}


LINE_STYLES = ("-", "--", "-.", ":")


def _rates(gd: float, momentum: float, adagrad: float, rmsprop: float, adam: float) -> dict[str, float]:
    """Per-optimiser learning rates; the three momentum styles take one common step size, which
    schedule-free SGD takes too; Prodigy's is its multiplier 1 (parameter-free)."""
    return {
        "sgd": gd,
        "momentum": momentum,
        "heavy_ball": momentum,
        "ema_momentum": momentum / (1 - 0.9),
        "nesterov": momentum,
        "adagrad": adagrad,
        "rmsprop": rmsprop,
        "adam": adam,
        "adamw": adam,
        "schedule_free_adamw": adam,
        "radam": adam,
        "prodigy": 1.0,
        "schedule_free_sgd": momentum / (1 - 0.9),
    }


@dataclass(frozen=True)
class SurfaceRun:
    """One surface, one start, a number of steps and a learning rate for each optimiser."""

    label: str
    surface: str
    start: tuple[float, ...]
    steps: int
    learning_rates: dict[str, float] = field(hash=False)


RUNS: dict[str, SurfaceRun] = {
    run.label: run
    for run in [
        SurfaceRun("bowl", "bowl", (4.0, 4.0), 50, _rates(0.1, 0.05, 1.0, 0.1, 0.5)),
        # notebook 000: GD 0.05, heavy-ball 0.05 / 0.9, RMSprop 0.5 / 0.9, Adam 0.5
        SurfaceRun("ravine", "ravine", (8.0, 3.0), 50, _rates(0.05, 0.05, 1.0, 0.5, 0.5)),
        SurfaceRun("rosenbrock", "rosenbrock", (-1.2, 1.0), 1000, _rates(2e-3, 1e-3, 0.5, 0.01, 0.1)),
        SurfaceRun("beale", "beale", (1.0, 1.5), 1000, _rates(0.01, 1e-3, 0.5, 0.01, 0.1)),
        # notebook 001: 100 steps at 0.01 from each start
        *(
            SurfaceRun(f"nonconvex_{start:g}", "nonconvex", (float(start),), 100, _rates(0.01, 0.01, 0.01, 0.01, 0.01))
            for start in (-1, 0, 2, 4)
        ),
    ]
}

#: Runs and optimisers of ``--quick``.
QUICK_RUNS = ("ravine", "nonconvex_-1")
QUICK_OPTIMIZERS = ("sgd", "heavy_ball", "nesterov", "rmsprop", "adam", "schedule_free_adamw")


def build(label: str, learning_rate: float):
    """A fresh lab optimiser for the lineup entry ``label`` at ``learning_rate``."""
    from lab import registry

    return registry.parse_spec(OPTIMIZERS[label].spec).build(learning_rate=learning_rate)


def run_surface(run: SurfaceRun, optimizers: Sequence[str], *, steps: int | None = None) -> pd.DataFrame:
    """Trajectories of ``optimizers`` on ``run``: rows of surface, optimizer, step, x, y, loss;
    the points are those each optimiser evaluates (the averaged iterate of a schedule-free one)."""
    from lab.surfaces import get_surface
    from lab.trajectory import descend

    surface = get_surface(run.surface)
    steps = run.steps if steps is None else steps
    frames = []
    for label in optimizers:
        trajectory = descend(surface, build(label, run.learning_rates[label]), run.start, steps, evaluated=True)
        positions = trajectory.positions
        frames.append(
            pd.DataFrame(
                {
                    "surface": run.label,
                    "optimizer": label,
                    "step": np.arange(steps + 1),
                    "x": positions[:, 0],
                    "y": positions[:, 1] if surface.dimension == 2 else np.nan,
                    "loss": trajectory.losses,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def run_all(runs: Sequence[SurfaceRun], optimizers: Sequence[str], *, steps: int | None = None) -> pd.DataFrame:
    """All trajectories, one run after the other, with a progress bar."""
    frames = [run_surface(run, optimizers, steps=steps) for run in tqdm(runs, desc="surfaces", unit="surface")]
    return pd.concat(frames, ignore_index=True)


def summarise(trajectories: pd.DataFrame, runs: dict[str, SurfaceRun] = RUNS) -> pd.DataFrame:
    """One row per (surface, optimizer): final point, loss, distance to the nearest minimum."""
    from lab.surfaces import get_surface
    from lab.trajectory import divergence_step

    rows = []
    for (label, optimizer), group in trajectories.groupby(["surface", "optimizer"], sort=False):
        run = runs[label]
        surface = get_surface(run.surface)
        last = group.sort_values("step").iloc[-1]
        point = [last["x"]] if surface.dimension == 1 else [last["x"], last["y"]]
        finite = bool(np.all(np.isfinite(point)) and math.isfinite(last["loss"]))
        diverged_at = divergence_step(group.sort_values("step")["loss"].to_numpy(), surface.minimum_value)
        nearest = min(surface.minima, key=lambda m: float(np.linalg.norm(np.subtract(point, m)))) if finite else None
        rows.append(
            {
                "surface": label,
                "optimizer": optimizer,
                "learning_rate": run.learning_rates[optimizer],
                "steps": int(last["step"]),
                "final_x": last["x"],
                "final_y": last["y"],
                "final_loss": last["loss"],
                "nearest_minimum": "" if nearest is None else "(" + ", ".join(f"{c:g}" for c in nearest) + ")",
                "distance_to_minimum": surface.distance_to_minimum(point) if finite else math.inf,
                "diverged": diverged_at is not None,
                "diverged_at_step": diverged_at,
            }
        )
    return pd.DataFrame(rows)


def _groups(optimizers: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The figure's rows: each group of the lineup with its optimisers present, in lineup order
    (unknown labels, e.g. from an edited CSV, join the first row)."""
    rows: dict[str, list[str]] = {}
    for optimizer in optimizers:
        choice = OPTIMIZERS.get(optimizer)
        rows.setdefault(choice.group if choice else NOTEBOOKS, []).append(optimizer)
    return [(group, rows[group]) for group in (NOTEBOOKS, RECENT) if group in rows]


def plot_surface(trajectories: pd.DataFrame, label: str, path: Path, runs: dict[str, SurfaceRun] = RUNS) -> None:
    """Trajectories on the contour plot (or on the curve) and the loss gap per step, from the CSV
    rows: one row of panels per group of the lineup, Adam repeated in grey beside the recent ones."""
    from lab.surfaces import get_surface

    plt = report.pyplot()

    run = runs[label]
    surface = get_surface(run.surface)
    rows = trajectories[trajectories["surface"] == label]
    groups = _groups(list(dict.fromkeys(rows["optimizer"])))
    figure, axes = plt.subplots(len(groups), 2, figsize=(13, 5.5 * len(groups)), squeeze=False)
    for (group, optimizers), (left, right) in zip(groups, axes):
        _draw_surface(left, surface, run)
        reference = REFERENCE in set(rows["optimizer"]) and group == RECENT
        drawn = [*optimizers, REFERENCE] if reference else optimizers
        for index, optimizer in enumerate(drawn):
            grey = reference and index == len(drawn) - 1
            _draw_path(left, right, rows[rows["optimizer"] == optimizer].sort_values("step"), surface,
                       name=optimizer + (" (for reference)" if grey else ""),
                       colour="0.55" if grey else plt.get_cmap("tab10")(index % 10),
                       style=":" if grey else LINE_STYLES[index % len(LINE_STYLES)])
        start = ", ".join(f"{c:g}" for c in run.start)
        left.set_title(f"{group}: {surface.formula} from ({start})")
        left.legend(fontsize=8, loc="best")
        left.grid(True, alpha=0.3)
        right.set_xlabel("step")
        right.set_ylabel("f − f*  (log)")
        # in 1-D a run caught in a local minimum levels off at that minimum's gap instead of falling
        right.set_title(f"{group}: loss gap to the global minimum")
        right.grid(True, which="both", alpha=0.3)
    report.save_figure(figure, path, dpi=110)


def _draw_surface(axis, surface, run: SurfaceRun) -> None:
    """The contour plot (or the curve in 1-D), its minima (red stars) and the start (black)."""
    (x_low, x_high) = surface.box[0]
    if surface.dimension == 2:
        mesh_x, mesh_y, values = surface.grid(200)
        levels = np.geomspace(max(values.min(), 1e-3), values.max(), 30)
        axis.contour(mesh_x, mesh_y, values, levels=levels, cmap="viridis", alpha=0.5, linewidths=0.8)
        axis.set_ylim(*surface.box[1])
        axis.set_ylabel("y")
        for minimum in surface.minima:
            axis.plot(*minimum, "r*", markersize=15, zorder=5)
        axis.plot(*run.start, "ko", markersize=8, zorder=5)
    else:
        xs, values = surface.grid(400)
        axis.plot(xs, values, color="0.4", linewidth=2)
        axis.set_ylabel("f(x)")
        for minimum in surface.minima:
            axis.plot(minimum[0], surface.values(np.asarray(minimum))[0], "r*", markersize=15, zorder=5)
        axis.plot(run.start[0], surface.values(np.asarray(run.start))[0], "ko", markersize=8, zorder=5)
    axis.set_xlim(x_low, x_high)
    axis.set_xlabel("x")


def _draw_path(left, right, group: pd.DataFrame, surface, *, name: str, colour, style: str) -> None:
    """One optimiser's trajectory (left) and loss gap (right); a diverged run says so in its label."""
    from lab.trajectory import divergence_step

    minimum_value = surface.minimum_value
    # the losses are float32: gaps below its resolution at f* are rounding noise, drawn at the floor
    gap_floor = max(1e-16, float(np.finfo(np.float32).eps) * abs(minimum_value))
    vertical = group["y"] if surface.dimension == 2 else group["loss"]
    losses = group["loss"].to_numpy()
    if divergence_step(losses, minimum_value) is not None:
        # a run that blew up and came back ends below the divergence limit: no longer diverged
        name += " (diverged)" if divergence_step(losses[[0, -1]], minimum_value) is not None else " (blew up, recovered)"
    left.plot(group["x"], vertical, marker=".", linestyle=style, color=colour, markersize=3, linewidth=1.3,
              alpha=0.8, label=name)
    gap = np.clip(group["loss"].to_numpy() - minimum_value, gap_floor, None)
    right.semilogy(group["step"], gap, linestyle=style, color=colour, linewidth=1.5, label=name)


def _choices(text: str | None, valid: Sequence[str], what: str) -> list[str]:
    if text is None:
        return list(valid)
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in valid]
    if unknown or not chosen:
        raise cli.UsageError(f"unknown {what} {', '.join(unknown) or repr(text)}; valid: {', '.join(valid)}")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.make_parser(NAME, __doc__)
    parser.add_argument(
        "--surfaces", help=f"comma-separated runs (default: all): {', '.join(RUNS)}; --quick: {', '.join(QUICK_RUNS)}"
    )
    parser.add_argument(
        "--optimizers",
        help=f"comma-separated optimisers (default: all): {', '.join(OPTIMIZERS)}; --quick: {', '.join(QUICK_OPTIMIZERS)}",
    )
    parser.add_argument("--steps", type=cli.positive_int, help="steps for every run (default: each run's own)")
    args = parser.parse_args(argv)
    labels = _choices(args.surfaces, list(RUNS), "surface") if args.surfaces or not args.quick else list(QUICK_RUNS)
    optimizers = (
        _choices(args.optimizers, list(OPTIMIZERS), "optimizer")
        if args.optimizers or not args.quick
        else list(QUICK_OPTIMIZERS)
    )
    out = cli.prepare_output_dir(args.out or cli.default_output_dir(NAME))

    trajectories = run_all([RUNS[label] for label in labels], optimizers, steps=args.steps)
    cli.write_csv_atomic(out / "trajectories.csv", trajectories)
    summary = summarise(trajectories)
    cli.write_csv_atomic(out / "final_distances.csv", summary)
    cli.write_text_atomic(out / "final_distances.md", report.markdown_table(summary, "{:.4g}"))
    for label in labels:
        plot_surface(trajectories, label, out / f"surface_{label}.png")
    print(report.markdown_table(summary[["surface", "optimizer", "learning_rate", "nearest_minimum", "distance_to_minimum", "diverged"]], "{:.4g}"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
