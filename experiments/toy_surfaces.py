"""Optimiser trajectories on the notebooks' test surfaces.

Every optimiser of the lab -- SGD, momentum in each style (keras, heavy-ball, EMA), Nesterov,
AdaGrad, RMSprop, Adam and AdamW -- starts from the same point on the bowl x² + y², the ravine
x² + 10y² (notebook 000), Rosenbrock (a = 1, b = 100; notebook 002), Beale, and the 1-D non-convex
x⁴ − 5x³ + 4x² + 3x from −1, 0, 2 and 4 (notebook 001), and takes a fixed number of steps. Each
point is a ``keras.Variable``; the gradient comes from autodiff; the step is ``optimizer.apply``.

The ravine run uses notebook 000's settings: from (8, 3), 50 steps of vanilla GD at 0.05,
heavy-ball momentum at 0.05 with β = 0.9, RMSprop at 0.5 with ρ = 0.9 and Adam at 0.5 with ε = 1e-8
placed as in the paper -- the lab's classes end where the notebook's NumPy code ends.

Learning rates: the three momentum styles share one step size: the EMA form runs at
``lr / (1 − β)``, at which it coincides with heavy-ball (and Keras's form always does under a
constant learning rate), so the three curves lie on top of each other -- that is the point.

Writes ``trajectories.csv`` (surface, optimizer, step, x, y, loss; y empty in 1-D),
``final_distances.csv`` / ``.md`` (distance from the last point to the nearest minimum),
and one figure per surface, ``surface_<name>.png``: the trajectories on the contour plot (or on
the curve in 1-D) next to the loss gap f − f* per step on a log axis.

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


@dataclass(frozen=True)
class OptimizerChoice:
    """A named optimiser of the lineup: a registry spec (learning rate set per surface)."""

    label: str
    spec: str


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
    ]
}


LINE_STYLES = ("-", "--", "-.", ":")


def _rates(gd: float, momentum: float, adagrad: float, rmsprop: float, adam: float) -> dict[str, float]:
    """Per-optimiser learning rates; the three momentum styles take one common step size."""
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
QUICK_OPTIMIZERS = ("sgd", "heavy_ball", "nesterov", "rmsprop", "adam")


def build(label: str, learning_rate: float):
    """A fresh lab optimiser for the lineup entry ``label`` at ``learning_rate``."""
    from lab import registry

    return registry.parse_spec(OPTIMIZERS[label].spec).build(learning_rate=learning_rate)


def run_surface(run: SurfaceRun, optimizers: Sequence[str], *, steps: int | None = None) -> pd.DataFrame:
    """Trajectories of ``optimizers`` on ``run``: rows of surface, optimizer, step, x, y, loss."""
    from lab.surfaces import get_surface
    from lab.trajectory import descend

    surface = get_surface(run.surface)
    steps = run.steps if steps is None else steps
    frames = []
    for label in optimizers:
        trajectory = descend(surface, build(label, run.learning_rates[label]), run.start, steps)
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


def plot_surface(trajectories: pd.DataFrame, label: str, path: Path, runs: dict[str, SurfaceRun] = RUNS) -> None:
    """Trajectories on the contour plot (or on the curve) and the loss gap per step, from the CSV rows."""
    from lab.surfaces import get_surface
    from lab.trajectory import divergence_step

    plt = report.pyplot()

    run = runs[label]
    surface = get_surface(run.surface)
    rows = trajectories[trajectories["surface"] == label]
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    colours = plt.get_cmap("tab10")
    (x_low, x_high) = surface.box[0]
    if surface.dimension == 2:
        mesh_x, mesh_y, values = surface.grid(200)
        levels = np.geomspace(max(values.min(), 1e-3), values.max(), 30)
        left.contour(mesh_x, mesh_y, values, levels=levels, cmap="viridis", alpha=0.5, linewidths=0.8)
        left.set_ylim(*surface.box[1])
        left.set_ylabel("y")
        for minimum in surface.minima:
            left.plot(*minimum, "r*", markersize=15, zorder=5)
        left.plot(*run.start, "ko", markersize=8, zorder=5)
    else:
        xs, values = surface.grid(400)
        left.plot(xs, values, color="0.4", linewidth=2)
        left.set_ylabel("f(x)")
        for minimum in surface.minima:
            left.plot(minimum[0], surface.values(np.asarray(minimum))[0], "r*", markersize=15, zorder=5)
        left.plot(run.start[0], surface.values(np.asarray(run.start))[0], "ko", markersize=8, zorder=5)
    left.set_xlim(x_low, x_high)
    left.set_xlabel("x")
    minimum_value = surface.minimum_value
    # the losses are float32: gaps below its resolution at f* are rounding noise, drawn at the floor
    gap_floor = max(1e-16, float(np.finfo(np.float32).eps) * abs(minimum_value))
    for index, (optimizer, group) in enumerate(rows.groupby("optimizer", sort=False)):
        group = group.sort_values("step")
        colour = colours(index % 10)
        vertical = group["y"] if surface.dimension == 2 else group["loss"]
        diverged = divergence_step(group["loss"].to_numpy(), minimum_value) is not None
        name = optimizer + (" (diverged)" if diverged else "")
        style = LINE_STYLES[index % len(LINE_STYLES)]
        left.plot(group["x"], vertical, marker=".", linestyle=style, color=colour, markersize=3, linewidth=1.3,
                  alpha=0.8, label=name)
        gap = np.clip(group["loss"].to_numpy() - minimum_value, gap_floor, None)
        right.semilogy(group["step"], gap, linestyle=style, color=colour, linewidth=1.5, label=name)
    start = ", ".join(f"{c:g}" for c in run.start)
    left.set_title(f"{surface.formula} from ({start})")
    left.legend(fontsize=8, loc="best")
    left.grid(True, alpha=0.3)
    right.set_xlabel("step")
    right.set_ylabel("f − f*  (log)")
    # in 1-D a run caught in a local minimum levels off at that minimum's gap instead of falling
    right.set_title("loss gap to the global minimum")
    right.grid(True, which="both", alpha=0.3)
    report.save_figure(figure, path, dpi=110)


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
