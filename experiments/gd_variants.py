"""Batch, stochastic and mini-batch gradient descent on the notebooks' linear regressions.

One unit y = w·x + b (``lab.models.linear_regression``) is fitted with the lab's SGD through
``model.fit`` and the mean squared error, three ways: batch GD (every example in each step),
stochastic GD (one example per step) and mini-batch GD (16 per step), on the data of notebook 000
(y = 3x + 7 + noise, x ~ 2·N(0, 1)) and of notebook 001 (y = 2x + 3 + noise). Learning rates and
epochs are the notebooks'. After every epoch the loss on the whole data set is recorded (as the
notebooks do) together with w and b; the learned parameters are shown next to the true ones and
next to the least-squares solution, the best any variant can do on these 100 noisy samples.

Writes ``history.csv`` (dataset, variant, epoch, loss, w, b), ``parameters.csv`` / ``.md`` (learned
vs true vs least-squares), ``loss_curves.png`` (loss per epoch, log axis), ``parameters.png``, and
TensorBoard logs under ``tensorboard/<dataset>/<variant>``.

    python -m experiments.gd_variants --out runs/gd
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from experiments import cli
from lab.tensorboard_logs import tensorboard_callback

NAME = "gd_variants"


@dataclass(frozen=True)
class Variant:
    """One way of batching: examples per step (None: all), learning rate and epochs."""

    dataset: str
    name: str
    batch_size: int | None
    learning_rate: float
    epochs: int


VARIANTS: tuple[Variant, ...] = (
    # notebook 000: batch 0.1 x 100, stochastic 0.01 x 100 epochs, mini-batch (16) 0.1 x 100
    Variant("regression_000", "batch", None, 0.1, 100),
    Variant("regression_000", "stochastic", 1, 0.01, 100),
    Variant("regression_000", "mini-batch", 16, 0.1, 100),
    # notebook 001: batch 0.1 x 100, stochastic 0.01 x 10 epochs, mini-batch 0.05 x 10 epochs
    Variant("regression_001", "batch", None, 0.1, 100),
    Variant("regression_001", "stochastic", 1, 0.01, 10),
    Variant("regression_001", "mini-batch", 16, 0.05, 10),
)


def load(dataset: str):
    """The named regression data set of ``lab.datasets``."""
    from lab import datasets

    return {"regression_000": datasets.regression_000, "regression_001": datasets.regression_001}[dataset]()


class _ParameterHistory(keras.callbacks.Callback):
    """After every epoch: w, b and the mean squared error over the whole data set."""

    def __init__(self, x: np.ndarray, y: np.ndarray, rows: list[dict]) -> None:
        super().__init__()
        self.x = x.astype(np.float64)[:, 0]
        self.y = y.astype(np.float64)
        self.rows = rows

    def record(self, epoch: int) -> None:
        kernel, bias = self.model.layers[-1].get_weights()
        w, b = float(kernel[0, 0]), float(bias[0])
        loss = float(np.mean((w * self.x + b - self.y) ** 2))
        self.rows.append({"epoch": epoch, "loss": loss, "w": w, "b": b})

    def on_train_begin(self, logs=None) -> None:
        self.record(0)

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.record(epoch + 1)


def run_variant(
    variant: Variant, *, seed: int = 0, epochs: int | None = None, tensorboard_dir: Path | None = None
) -> pd.DataFrame:
    """Fit the linear model one way; rows of dataset, variant, epoch, loss, w, b (epoch 0 = start).

    ``epochs`` caps the variant's own number of epochs (for quick runs).
    """
    from lab import models
    from lab.optimizers import SGD

    data = load(variant.dataset)
    keras.utils.set_random_seed(seed)
    model = models.linear_regression(seed)
    batch_size = variant.batch_size or len(data.x)
    steps_per_epoch = -(-len(data.x) // batch_size)
    model.compile(
        optimizer=SGD(learning_rate=variant.learning_rate), loss="mean_squared_error", steps_per_execution=steps_per_epoch
    )
    rows: list[dict] = []
    callbacks: list[keras.callbacks.Callback] = [_ParameterHistory(data.x, data.y, rows)]
    if tensorboard_dir is not None:
        callbacks.append(tensorboard_callback(tensorboard_dir, write_graph=False, profile_batch=0))
    model.fit(
        data.x,
        data.y.reshape(-1, 1),
        batch_size=batch_size,
        epochs=min(variant.epochs, epochs or variant.epochs),
        shuffle=True,
        callbacks=callbacks,
        verbose=0,
    )
    frame = pd.DataFrame(rows)
    frame.insert(0, "variant", variant.name)
    frame.insert(0, "dataset", variant.dataset)
    return frame


def run_all(
    variants: Sequence[Variant],
    *,
    seed: int = 0,
    epochs: int | None = None,
    tensorboard_root: Path | None = None,
    checkpoint_root: Path | None = None,
) -> pd.DataFrame:
    """Every variant's rows. With ``checkpoint_root`` a finished run's rows are kept there, and a
    run whose rows are already there is not trained again (each run takes seconds, so an
    interrupted one starts over rather than resuming mid-run)."""
    frames = []
    for variant in tqdm(variants, desc="gd variants", unit="run"):
        folder = None if tensorboard_root is None else tensorboard_root / variant.dataset / variant.name
        stored = None if checkpoint_root is None else checkpoint_root / variant.dataset / f"{variant.name}.csv"
        if stored is not None and stored.is_file():
            frames.append(pd.read_csv(stored))
            continue
        rows = run_variant(variant, seed=seed, epochs=epochs, tensorboard_dir=folder)
        if stored is not None:
            stored.parent.mkdir(parents=True, exist_ok=True)
            cli.write_csv_atomic(stored, rows)
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def parameters(history: pd.DataFrame, variants: Sequence[Variant] = VARIANTS) -> pd.DataFrame:
    """Learned w and b of each run next to the true and the least-squares values."""
    settings = {(v.dataset, v.name): v for v in variants}
    rows = []
    for (dataset, name), group in history.groupby(["dataset", "variant"], sort=False):
        data = load(dataset)
        ols_w, ols_b = np.polyfit(data.x[:, 0].astype(np.float64), data.y.astype(np.float64), 1)
        last = group.sort_values("epoch").iloc[-1]
        variant = settings[(dataset, name)]
        rows.append(
            {
                "dataset": dataset,
                "variant": name,
                "batch_size": variant.batch_size or len(data.x),
                "learning_rate": variant.learning_rate,
                "epochs": int(last["epoch"]),
                "w": last["w"],
                "b": last["b"],
                "true_w": data.weight,
                "true_b": data.bias,
                "least_squares_w": ols_w,
                "least_squares_b": ols_b,
                "final_loss": last["loss"],
            }
        )
    return pd.DataFrame(rows)


def plot(history: pd.DataFrame, table: pd.DataFrame, out: Path) -> None:
    """``loss_curves.png`` (log axis, one panel per data set) and ``parameters.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(history["dataset"]))
    figure, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 5), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        for name, group in history[history["dataset"] == dataset].groupby("variant", sort=False):
            axis.semilogy(group["epoch"], group["loss"], "o-", markersize=2, linewidth=1.5, label=name)
        truth = table[table["dataset"] == dataset].iloc[0]
        axis.set_title(f"{dataset}: y = {truth['true_w']:g}x + {truth['true_b']:g} + noise")
        axis.set_xlabel("epoch")
        axis.set_ylabel("MSE on all data (log)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(out / "loss_curves.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(1, 2 * len(datasets), figsize=(4.5 * 2 * len(datasets), 4.5), squeeze=False)
    panels = iter(axes[0])
    for dataset in datasets:
        rows = table[table["dataset"] == dataset]
        for parameter in ("w", "b"):
            axis = next(panels)
            positions = np.arange(len(rows))
            axis.bar(positions, rows[parameter], color="tab:blue", alpha=0.8, label="learned")
            axis.axhline(rows[f"true_{parameter}"].iloc[0], color="r", linestyle="--", label="true")
            axis.plot(positions, rows[f"least_squares_{parameter}"], "k_", markersize=30, markeredgewidth=2, label="least squares")
            axis.set_xticks(positions, rows["variant"])
            spread = max(0.5, float(np.ptp(rows[parameter])) * 3)
            centre = rows[f"true_{parameter}"].iloc[0]
            axis.set_ylim(centre - spread, centre + spread)
            axis.set_title(f"{dataset}: {parameter}")
            axis.grid(True, axis="y", alpha=0.3)
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out / "parameters.png", dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.make_parser(NAME, __doc__)
    parser.add_argument(
        "--epochs", type=cli.positive_int, help="at most this many epochs per run (default: the notebooks'; --quick: 30)"
    )
    parser.add_argument("--seed", type=int, default=0, help="initial weights and shuffling (default: 0)")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    cli.add_resume_argument(parser)
    args = cli.parse_arguments(parser, argv, NAME)
    epochs = args.epochs or (30 if args.quick else None)
    out = cli.open_output(args, NAME)
    tensorboard = None if args.no_tensorboard else out / "tensorboard"
    history = run_all(
        VARIANTS, seed=args.seed, epochs=epochs, tensorboard_root=tensorboard, checkpoint_root=cli.checkpoint_dir(out)
    )
    cli.write_csv_atomic(out / "history.csv", history)
    table = parameters(history)
    cli.write_csv_atomic(out / "parameters.csv", table)
    from experiments.toy_surfaces import markdown_table

    cli.write_text_atomic(out / "parameters.md", markdown_table(table))
    plot(history, table, out)
    cli.remove_checkpoints(out)
    print(markdown_table(table[["dataset", "variant", "w", "b", "true_w", "true_b", "least_squares_w", "least_squares_b"]]))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
