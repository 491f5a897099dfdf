"""Summaries, plots and the report of an optimiser comparison, made from its saved CSV files only.

Every function here takes DataFrames read from ``results.csv`` (tidy: one row per problem,
optimizer, seed and epoch, with ``val_accuracy``, ``loss``, ``seconds`` and ``status``) and,
for the moons decision boundaries, ``boundaries.csv`` (probability of class 1 on a grid). Nothing
trains: a finished comparison is re-summarised and re-plotted from its folder
(``python -m experiments.compare_optimizers --replot DIR``).

Per run (problem, optimizer, seed), scored by the problem's ``Target`` (``val_<monitor>``: the
validation accuracy, or the validation loss of a problem without metrics):
    the final validation score and training loss (the last row), the first epoch whose score
    reaches the target and the cumulative seconds at that epoch, the wall time (seconds of the
    last row), and whether it diverged (status of the last row) and at which epoch. No best
    epoch is picked: under the notebooks' protocol the validation data are the test set, and
    nothing that selects may read it.
Per problem x optimizer: the mean and the sample standard deviation (ddof=1) of those over the
seeds (undefined, "n/a", when a seed's value is NaN, as a diverged run's loss is); epochs and
seconds to the target are averaged over the seeds that reached it, and ``reached`` counts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

KEYS = ["problem", "optimizer"]
RUN_KEYS = ["problem", "optimizer", "seed"]
NOT_REACHED = "not reached"


@dataclass(frozen=True)
class Target:
    """What a problem's runs are scored by: ``val_<monitor>`` and the value to reach."""

    monitor: str
    value: float | None
    higher_is_better: bool = True

    @classmethod
    def of(cls, problem, value: float | None = None) -> "Target":
        """A ``lab.problems.Problem``'s target (``value`` replaces the problem's own)."""
        return cls(problem.monitor, problem.target if value is None else value, problem.higher_is_better)

    def reached(self, values: pd.Series) -> pd.Series:
        if self.value is None:
            return pd.Series(False, index=values.index)
        return values >= self.value if self.higher_is_better else values <= self.value

    def describe(self) -> str:
        if self.value is None:
            return "none"
        if self.monitor == "accuracy":
            return f"{self.value * 100:g}% val accuracy"
        return f"val {self.monitor} {'>=' if self.higher_is_better else '<='} {self.value:g}"


def per_run(results: pd.DataFrame, targets: Mapping[str, Target]) -> pd.DataFrame:
    """One row per run: final validation score and loss, epochs/seconds to target, divergence."""
    rows = []
    for (problem, optimizer, seed), run in results.groupby(RUN_KEYS, sort=False):
        run = run.sort_values("epoch", kind="stable")
        target = targets[problem]
        last = run.iloc[-1]
        monitored = run[f"val_{target.monitor}"]
        reached = run[target.reached(monitored)]
        diverged = last["status"] == "diverged"
        rows.append(
            {
                "problem": problem,
                "optimizer": optimizer,
                "seed": seed,
                "epochs": int(last["epoch"]),
                "monitor": target.monitor,
                "final_val": float(monitored.iloc[-1]),
                "final_loss": float(last["loss"]),
                "target": target.value,
                "epochs_to_target": float(reached["epoch"].iloc[0]) if len(reached) else np.nan,
                "seconds_to_target": float(reached["seconds"].iloc[0]) if len(reached) else np.nan,
                "wall_seconds": float(last["seconds"]),
                "diverged": bool(diverged),
                "diverged_epoch": int(last["epoch"]) if diverged else np.nan,
            }
        )
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame, targets: Mapping[str, Target]) -> pd.DataFrame:
    """Per problem x optimizer, in the order of first appearance in ``results``."""
    runs = per_run(results, targets)
    out = []
    for (problem, optimizer), group in runs.groupby(KEYS, sort=False):
        row = {"problem": problem, "optimizer": optimizer, "seeds": len(group), "monitor": group["monitor"].iloc[0],
               "target": group["target"].iloc[0]}
        for column in ["final_val", "final_loss", "wall_seconds"]:
            # a diverged seed's NaN loss makes the mean undefined ("n/a"), not the mean of the rest
            row[f"{column}_mean"] = group[column].mean(skipna=False)
            row[f"{column}_std"] = group[column].std(ddof=1) if len(group) > 1 else np.nan
        reached = group["epochs_to_target"].notna()
        row["reached"] = int(reached.sum())
        row["epochs_to_target_mean"] = group.loc[reached, "epochs_to_target"].mean() if reached.any() else np.nan
        row["seconds_to_target_mean"] = group.loc[reached, "seconds_to_target"].mean() if reached.any() else np.nan
        row["diverged"] = int(group["diverged"].sum())
        epochs = group.loc[group["diverged"], "diverged_epoch"]
        row["diverged_epochs"] = " ".join(str(int(e)) for e in epochs)
        out.append(row)
    return pd.DataFrame(out)


def mean_std(mean: float, std: float, scale: float = 1.0, digits: int = 2) -> str:
    if np.isnan(mean):
        return "n/a"
    if np.isnan(std):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as display strings (accuracies in %): the table of ``summary.md``."""
    rows = []
    for _, s in summary.iterrows():
        if s["reached"] == 0:
            epochs = seconds = NOT_REACHED
        else:
            suffix = "" if s["reached"] == s["seeds"] else f" ({s['reached']}/{s['seeds']} seeds)"
            epochs = f"{s['epochs_to_target_mean']:.1f}{suffix}"
            seconds = f"{s['seconds_to_target_mean']:.1f}{suffix}"
        status = "ok"
        if s["diverged"]:
            status = f"diverged {s['diverged']}/{s['seeds']} (epoch {s['diverged_epochs']})"
        percent = s["monitor"] == "accuracy"
        final = mean_std(s["final_val_mean"], s["final_val_std"], 100 if percent else 1, 2 if percent else 4)
        target = "none" if pd.isna(s["target"]) else (f"{s['target'] * 100:g}%" if percent else f"{s['target']:g}")
        rows.append(
            {
                "problem": s["problem"],
                "optimizer": s["optimizer"],
                "seeds": s["seeds"],
                "final val": f"{s['monitor']} {final}{' %' if percent else ''}",
                "final loss": mean_std(s["final_loss_mean"], s["final_loss_std"], 1, 4),
                "epochs to target": epochs,
                "seconds to target": seconds,
                "target": target,
                "wall s": mean_std(s["wall_seconds_mean"], s["wall_seconds_std"], 1, 1),
                "status": status,
            }
        )
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame, float_format: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency); with ``float_format`` (e.g.
    ``"{:.4g}"``) float cells are formatted with it and NaN cells left empty."""

    def cell(value) -> str:
        if float_format is not None and isinstance(value, float | np.floating):
            return "" if np.isnan(value) else float_format.format(value)
        return str(value)

    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


# --- plots -------------------------------------------------------------------------------------


def pyplot():
    """matplotlib's pyplot on the Agg canvas (files only, no display): every plot of the lab."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path, dpi: int = 100) -> Path:
    """Lay ``figure`` out, write it to ``path`` and close it."""
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    pyplot().close(figure)
    return path


FEW_POINTS = 20  # a curve with at most this many epochs is drawn with markers and error bars


def plot_curves(results: pd.DataFrame, problem: str, path: Path, monitor: str = "accuracy") -> Path:
    """Training loss and the validation ``monitor`` per epoch: the mean over seeds, a min-max band.

    A curve of few epochs is drawn with a marker at each and the min-max as error bars, so that
    even a one-epoch run shows its points.
    """
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    data = results[results["problem"] == problem]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for optimizer, group in data.groupby("optimizer", sort=False):
        by_epoch = group.groupby("epoch")
        for axis, column in ((loss_axis, "loss"), (accuracy_axis, f"val_{monitor}")):
            stats = by_epoch[column].agg(["mean", "min", "max"])
            if len(stats) <= FEW_POINTS:
                spread = [stats["mean"] - stats["min"], stats["max"] - stats["mean"]]
                axis.errorbar(stats.index, stats["mean"], yerr=spread, fmt="-o", markersize=5, capsize=3, label=optimizer)
            else:
                (line,) = axis.plot(stats.index, stats["mean"], label=optimizer)
                axis.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2)
    epochs = data["epoch"]
    for axis in (loss_axis, accuracy_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs.nunique() <= FEW_POINTS:
            axis.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
    loss_axis.set(title=f"{problem}: training loss", xlabel="epoch", ylabel="loss", yscale="log")
    accuracy_axis.set(title=f"{problem}: validation {monitor}", xlabel="epoch", ylabel=monitor)
    accuracy_axis.legend(title="mean; band or bars: min-max over seeds", fontsize="small")
    return save_figure(figure, path, dpi=100)


def plot_time_to_target(summary: pd.DataFrame, path: Path) -> Path:
    """Seconds to the target accuracy per problem and optimizer; runs that missed it are labelled.

    The axis starts at zero; an optimiser none of whose seeds reached the target has no bar, only
    the label "not reached".
    """
    plt = pyplot()
    problems = list(dict.fromkeys(summary["problem"]))
    figure, axes = plt.subplots(1, len(problems), figsize=(5.5 * len(problems), 3.8), squeeze=False)
    for axis, problem in zip(axes[0], problems):
        rows = summary[summary["problem"] == problem]
        reached = rows["reached"] > 0
        heights = rows["seconds_to_target_mean"].where(reached, 0.0)
        bars = axis.bar(rows["optimizer"], heights)
        top = float(heights.max()) * 1.15 if reached.any() else 1.0
        axis.set_ylim(0.0, top)
        for bar, (_, row) in zip(bars, rows.iterrows()):
            centre = bar.get_x() + bar.get_width() / 2
            if row["reached"] == 0:
                axis.annotate(NOT_REACHED, (centre, 0.02 * top), ha="center", va="bottom", color="dimgray")
            else:
                axis.annotate(f"{row['seconds_to_target_mean']:.1f}s", (centre, bar.get_height()), ha="center", va="bottom")
        target = Target(rows["monitor"].iloc[0], rows["target"].iloc[0])
        axis.set(title=f"{problem}: seconds to {target.describe()}", ylabel="seconds")
        axis.tick_params(axis="x", labelrotation=20)
    return save_figure(figure, path, dpi=100)


def plot_boundaries(boundaries: pd.DataFrame, points, path: Path, results: pd.DataFrame | None = None) -> Path:
    """The moons decision boundary of each optimizer (first seed) over the test points.

    The colour is the predicted probability of class 1 (the colour bar), the black line the 0.5
    boundary; with ``results`` each title gives that run's final test (validation) accuracy.
    """
    plt = pyplot()
    optimizers = list(dict.fromkeys(boundaries["optimizer"]))
    figure, axes = plt.subplots(
        1, len(optimizers), figsize=(4 * len(optimizers) + 1, 3.8), squeeze=False, layout="constrained"
    )
    filled = None
    for axis, optimizer in zip(axes[0], optimizers):
        grid = boundaries[boundaries["optimizer"] == optimizer]
        seed = int(grid["seed"].iloc[0])
        xs, ys = np.unique(grid["x"]), np.unique(grid["y"])
        probability = grid.pivot(index="y", columns="x", values="probability").loc[ys, xs].to_numpy()
        filled = axis.contourf(xs, ys, probability, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.6)
        axis.contour(xs, ys, probability, levels=[0.5], colors="black", linewidths=1)
        if points is not None:
            x, y = points
            axis.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu", edgecolors="black", s=12, linewidths=0.4)
        title = f"{optimizer} (seed {seed})"
        if results is not None:
            run = results[(results["problem"] == "moons") & (results["optimizer"] == optimizer) & (results["seed"] == seed)]
            if len(run):
                accuracy = float(run.sort_values("epoch")["val_accuracy"].iloc[-1])
                title += f": test accuracy {accuracy * 100:.1f}%"
        axis.set(title=title, xlabel="$x_1$", ylabel="$x_2$")
    if filled is not None:
        figure.colorbar(filled, ax=list(axes[0]), label="P(class 1)", ticks=np.linspace(0, 1, 6))
    figure.suptitle("moons: predicted P(class 1), boundary at 0.5 (black), test points coloured by their class")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def report_markdown(
    summary_md: str, plots: Sequence[Path], settings: Mapping[str, object], notes: Sequence[str] = ()
) -> str:
    """``report.md``: the settings, the summary table and every plot (paths relative to it)."""
    lines = ["# Optimizer comparison", "", "## Settings", ""]
    lines += [f"- **{key}**: {value}" for key, value in settings.items()]
    lines += ["", "## Summary", "", summary_md]
    if notes:
        lines += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    lines += ["## Plots", ""]
    for plot in plots:
        lines += [f"![{plot.stem}]({plot.as_posix()})", ""]
    return "\n".join(lines)
