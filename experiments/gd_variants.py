"""Batch, stochastic and mini-batch gradient descent on the notebooks' linear regressions.

One unit y = w·x + b (``lab.models.linear_regression``) is fitted with the lab's SGD through
``model.fit`` and the mean squared error, three ways: batch GD (every example in each step),
stochastic GD (one example per step) and mini-batch GD (16 per step), on the data of notebook 000
(y = 3x + 7 + noise, x ~ 2·N(0, 1); problem ``regression_000``) and of notebook 001 (y = 2x + 3 +
noise; ``regression_001``). Learning rates and epochs are the notebooks'. The trials (problem x
variant x optimizer x seed) run on ``experiments.grid``; a callback writes w and b into every
epoch's row. Protocol: the notebooks' -- these data have no test set, every sample trains and
``val_loss`` is the mean squared error on the whole data set at the end of the epoch, as the
notebooks record it; nothing is selected. The learned parameters are shown next to the true ones
and next to the least-squares solution, the best any variant can do on these 100 noisy samples.

Writes ``results.csv`` (problem, variant, optimizer, seed, then train_run's epoch rows with w and
b), ``parameters.csv`` / ``.md`` (learned vs true vs least-squares), ``loss_curves.png`` (loss per
epoch, log axis), ``parameters.png``, and TensorBoard logs under ``tensorboard/``.

    python -m experiments.gd_variants --out runs/gd
    python -m experiments.gd_variants --quick          # at most 30 epochs a run
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from experiments import cli, report
from experiments.grid import Trial, run_grid

NAME = "gd_variants"
PROTOCOL = "notebook"
QUICK_EPOCHS = 30  # --quick caps every run at this many epochs


@dataclass(frozen=True)
class Variant:
    """One way of batching: examples per step (None: all), learning rate and epochs."""

    name: str
    batch_size: int | None
    learning_rate: float
    epochs: int


VARIANTS: dict[str, tuple[Variant, ...]] = {
    # notebook 000: batch 0.1 x 100, stochastic 0.01 x 100 epochs, mini-batch (16) 0.1 x 100
    "regression_000": (Variant("batch", None, 0.1, 100), Variant("stochastic", 1, 0.01, 100),
                       Variant("mini-batch", 16, 0.1, 100)),
    # notebook 001: batch 0.1 x 100, stochastic 0.01 x 10 epochs, mini-batch 0.05 x 10 epochs
    "regression_001": (Variant("batch", None, 0.1, 100), Variant("stochastic", 1, 0.01, 10),
                       Variant("mini-batch", 16, 0.05, 10)),
}


class LinearParameters(keras.callbacks.Callback):
    """Writes the unit's w and b into every epoch's logs: they become columns of its row."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        kernel, bias = self.model.layers[-1].get_weights()
        logs["w"], logs["b"] = float(kernel[0, 0]), float(bias[0])


def parameter_columns() -> list[keras.callbacks.Callback]:
    return [LinearParameters()]


def declare_trials(problems, optimizers: Sequence[str], seeds: int, *, epochs: int | None = None,
                   cap: int | None = None, jit_compile: bool | str = "auto") -> list[Trial]:
    """Every problem x variant x optimizer x seed; ``epochs`` replaces each variant's own, ``cap``
    bounds them. A spec that sets its learning rate keeps it; otherwise the variant's applies."""
    from lab.registry import parse_spec

    trials = []
    for problem in problems:
        if problem.name not in VARIANTS:
            raise cli.UsageError(f"--problems {problem.name}: gd_variants has the notebooks' variants of "
                                 f"{', '.join(VARIANTS)} only")
        for variant in VARIANTS[problem.name]:
            run_epochs = min(epochs or variant.epochs, cap or variant.epochs)
            for optimizer in optimizers:
                rate = {} if "learning_rate" in parse_spec(optimizer).overrides else {"learning_rate": variant.learning_rate}
                trials += [
                    Trial(problem=problem, optimizer=optimizer, seed=seed, epochs=run_epochs,
                          batch_size=variant.batch_size, protocol=PROTOCOL, optimizer_arguments=rate,
                          callbacks=parameter_columns, jit_compile=jit_compile,
                          labels=(("problem", problem.name), ("variant", variant.name), ("optimizer", optimizer),
                                  ("seed", seed)))
                    for seed in range(seeds)
                ]
    return trials


def parameters(results: pd.DataFrame, problems) -> pd.DataFrame:
    """Learned w and b of each run next to the true and the least-squares values."""
    from lab import datasets
    from lab.problems import protocol_view

    truths = {"regression_000": datasets.regression_000(), "regression_001": datasets.regression_001()}
    by_name = {problem.name: problem for problem in problems}
    rows = []
    for (name, variant, optimizer, seed), group in results.groupby(["problem", "variant", "optimizer", "seed"], sort=False):
        data = protocol_view(by_name[name].split(), PROTOCOL)
        x, y = data.x_train[:, 0].astype(np.float64), data.y_train.astype(np.float64)
        least_squares_w, least_squares_b = np.polyfit(x, y, 1)
        last = group.sort_values("epoch").iloc[-1]
        settings = next(v for v in VARIANTS[name] if v.name == variant)
        rows.append(
            {
                "problem": name,
                "variant": variant,
                "optimizer": optimizer,
                "seed": seed,
                "batch_size": settings.batch_size or len(x),
                "learning_rate": float(last["learning_rate"]),
                "epochs": int(last["epoch"]),
                "w": last["w"],
                "b": last["b"],
                "true_w": truths[name].weight,
                "true_b": truths[name].bias,
                "least_squares_w": least_squares_w,
                "least_squares_b": least_squares_b,
                "final_loss": last["val_loss"],
            }
        )
    return pd.DataFrame(rows)


def plot(results: pd.DataFrame, table: pd.DataFrame, out: Path) -> None:
    """``loss_curves.png`` (log axis, one panel per problem) and ``parameters.png`` (first seed)."""
    plt = report.pyplot()
    names = list(dict.fromkeys(results["problem"]))
    figure, axes = plt.subplots(1, len(names), figsize=(7 * len(names), 5), squeeze=False)
    for axis, name in zip(axes[0], names):
        for (variant, optimizer), group in results[results["problem"] == name].groupby(["variant", "optimizer"], sort=False):
            curve = group.groupby("epoch")["val_loss"].mean()
            label = variant if results["optimizer"].nunique() == 1 else f"{variant} {optimizer}"
            axis.semilogy(curve.index, curve.to_numpy(), "o-", markersize=2, linewidth=1.5, label=label)
        truth = table[table["problem"] == name].iloc[0]
        axis.set_title(f"{name}: y = {truth['true_w']:g}x + {truth['true_b']:g} + noise")
        axis.set_xlabel("epoch")
        axis.set_ylabel("MSE on all data at the end of the epoch (log)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    report.save_figure(figure, out / "loss_curves.png", dpi=110)

    first = table[table["seed"] == table["seed"].min()]
    figure, axes = plt.subplots(1, 2 * len(names), figsize=(4.5 * 2 * len(names), 4.5), squeeze=False)
    panels = iter(axes[0])
    for name in names:
        rows = first[first["problem"] == name]
        labels = rows["variant"] if rows["optimizer"].nunique() == 1 else rows["variant"] + " " + rows["optimizer"]
        for parameter in ("w", "b"):
            axis = next(panels)
            positions = np.arange(len(rows))
            axis.bar(positions, rows[parameter], color="tab:blue", alpha=0.8, label="learned")
            axis.axhline(rows[f"true_{parameter}"].iloc[0], color="r", linestyle="--", label="true")
            axis.plot(positions, rows[f"least_squares_{parameter}"], "k_", markersize=30, markeredgewidth=2, label="least squares")
            axis.set_xticks(positions, labels)
            spread = max(0.5, float(np.ptp(rows[parameter])) * 3)
            centre = rows[f"true_{parameter}"].iloc[0]
            axis.set_ylim(centre - spread, centre + spread)
            axis.set_title(f"{name}: {parameter}")
            axis.grid(True, axis="y", alpha=0.3)
            axis.legend(fontsize=8)
    report.save_figure(figure, out / "parameters.png", dpi=110)


def build_parser():
    parser = cli.make_parser(NAME, __doc__.split("\n\n")[0] + "\n\nDefaults: regression_000 and "
                             "regression_001, each with\nthe notebook's three variants, plain SGD, 1 seed.")
    cli.add_training_arguments(parser, problems=tuple(VARIANTS), optimizers=("sgd",), seeds=1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse_arguments(build_parser(), argv, NAME)
    if args.batch_size is not None:
        raise cli.UsageError("--batch-size: the variants are the batch sizes gd_variants compares (all, 1 and 16)")
    problems = cli.resolve_problems(args)
    optimizers = cli.check_optimizers(args.optimizers)
    # --quick: at most 30 epochs, and no XLA, whose compiling costs more than such small runs take
    trials = declare_trials(problems, optimizers, args.seeds, epochs=args.epochs,
                            cap=QUICK_EPOCHS if args.quick else None, jit_compile=False if args.quick else "auto")
    options = cli.grid_options(args)
    chief = options["distributed"].is_chief
    out = cli.open_output(args, NAME) if chief else Path(".")
    grid = run_grid(trials, out, **options)
    if not chief:
        return 0
    table = parameters(grid.results, problems)
    cli.write_csv_atomic(out / "parameters.csv", table)
    cli.write_text_atomic(out / "parameters.md", report.markdown_table(table, "{:.4g}"))
    plot(grid.results, table, out)
    shown = ["problem", "variant", "optimizer", "w", "b", "true_w", "true_b", "least_squares_w", "least_squares_b"]
    print(report.markdown_table(table[shown], "{:.4g}"))
    print("protocol: the notebooks' -- every sample trains; val_loss is the mean squared error on all of them")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
