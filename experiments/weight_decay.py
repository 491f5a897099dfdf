"""Weight decay on make_moons: coupled L2 (Adam + an L2 term) next to decoupled (AdamW).

Notebook 004 trains its 2-16-8-2 moons net with PyTorch ``Adam(lr=0.01, weight_decay=wd)`` for
wd in 0, 0.001, 0.01, full batch, 200 epochs, and compares train and test loss. PyTorch's Adam
*couples* the decay: it adds ``wd * w`` to the gradient before the moment estimates, so the
decay is rescaled by Adam's ``1 / (sqrt(v_hat) + eps)`` like any other gradient. AdamW (Loshchilov
& Hutter, 2019) *decouples* it: ``w <- w - lr * wd * w`` beside the Adam step, untouched by v_hat.

Coupled, exactly as PyTorch's Adam: every trainable variable -- kernels *and* biases, as PyTorch
decays all parameters -- gets ``keras.regularizers.L2(wd / 2)``. Keras adds
``(wd / 2) * sum(w ** 2)`` to the loss, whose gradient is ``wd * w``: the gradient Adam sees is
``grad(cross-entropy) + wd * w``, PyTorch's ``grad = grad.add(param, alpha=weight_decay)``.
(``L2(wd)`` would double the decay.) The optimiser is ``lab.optimizers.Adam``.

Decoupled: ``lab.optimizers.AdamW(weight_decay=wd)`` on the plain model.

The losses reported are the cross-entropy alone (a ``cross_entropy`` metric), so the two methods
are compared on the same quantity as the notebook's ``criterion``; Keras's ``loss`` of the coupled
runs also holds the penalty and is kept as ``objective``. Writes ``results.csv`` (one row per
method, weight decay and epoch), ``summary.csv`` (final train/test loss and accuracy, final
weight norm), ``weight_decay.png`` and TensorBoard logs.

    python -m experiments.weight_decay            # 004's settings: 200 full-batch epochs
    python -m experiments.weight_decay --quick
"""

from __future__ import annotations

from collections.abc import Sequence
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
)

NAME = "weight_decay"
METHODS = ("coupled_l2", "decoupled")
WEIGHT_DECAYS = (0.0, 0.001, 0.01)  # notebook 004
LEARNING_RATE = 0.01  # notebook 004
EPOCHS = 200  # notebook 004


@dataclass(frozen=True)
class Run:
    """One training run: how the decay is applied and how strong it is."""

    method: str  # "coupled_l2" or "decoupled"
    weight_decay: float
    learning_rate: float = LEARNING_RATE
    seed: int = 0

    @property
    def label(self) -> str:
        return f"{self.method} wd={self.weight_decay:g}"

    @property
    def folder(self) -> str:
        """The run's folder under tensorboard/ and checkpoints/."""
        return f"{self.method}_wd{self.weight_decay:g}"


def declare_runs(weight_decays: Sequence[float], learning_rate: float, seed: int) -> list[Run]:
    return [Run(method, float(wd), learning_rate, seed) for method in METHODS for wd in weight_decays]


def with_coupled_l2(model, weight_decay: float):
    """A copy of ``model`` (same weights) whose every trainable variable carries ``L2(wd / 2)``.

    The penalty ``(wd / 2) * sum(w ** 2)`` over kernels and biases adds ``wd * w`` to each
    gradient: PyTorch ``Adam(weight_decay=wd)``'s coupled decay. ``weight_decay == 0`` returns a
    copy without regularisers.
    """
    import keras

    regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay > 0 else None

    def clone_layer(layer):
        config = layer.get_config()
        for key in ("kernel_regularizer", "bias_regularizer"):
            if key in config:
                config[key] = regularizer
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    regularised = [v.path for v in clone.trainable_variables if v.regularizer is not None]
    if weight_decay > 0 and len(regularised) != len(clone.trainable_variables):
        raise ValueError(f"only {regularised} of the model's variables carry the L2 penalty")
    return clone


def weight_norm(model) -> float:
    """The global L2 norm of all trainable variables (kernels and biases)."""
    from keras import ops

    return float(
        np.sqrt(sum(float(np.sum(np.square(ops.convert_to_numpy(v)))) for v in model.trainable_variables))
    )


def build_run(run: Run):
    """The model and optimiser of ``run``: (Adam, model + L2 / 2) or (AdamW, plain model).

    Both use PyTorch's Adam numerics (epsilon 1e-8 inside the paper's placement), as notebook 004.
    """
    from lab import models
    from lab.optimizers import Adam, AdamW

    model = models.moons_net(run.seed)
    adam_numerics = {"epsilon": 1e-8, "epsilon_placement": "paper"}
    if run.method == "coupled_l2":
        return with_coupled_l2(model, run.weight_decay), Adam(run.learning_rate, **adam_numerics)
    if run.method == "decoupled":
        return model, AdamW(run.learning_rate, weight_decay=run.weight_decay, **adam_numerics)
    raise UsageError(f"unknown method {run.method!r}; valid: {', '.join(METHODS)}")


def run_all(
    runs: Sequence[Run], output: Path, *, epochs: int, jit_compile: bool | str = "auto", tensorboard: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every run full batch; per-epoch rows and the final weight norm of each run."""
    import keras
    from tqdm.auto import tqdm

    from experiments.training import train_run
    from lab.datasets import load_moons

    data = load_moons()
    frames, norms = [], []
    progress = tqdm(runs, desc="weight decay", unit="run")
    for run in progress:
        progress.set_postfix_str(run.label)
        model, optimizer = build_run(run)
        initial_norm = weight_norm(model)
        rows = train_run(
            model,
            optimizer,
            data,
            epochs=epochs,
            batch_size=len(data.x_train),  # full batch, as notebook 004
            seed=run.seed,
            metrics=("accuracy", keras.metrics.SparseCategoricalCrossentropy(name="cross_entropy")),
            tensorboard_dir=output / "tensorboard" / run.folder if tensorboard else None,
            checkpoint_dir=checkpoint_dir(output, run.folder),
            jit_compile=jit_compile,
        )
        rows = rows.rename(columns={"loss": "objective", "val_loss": "val_objective"})
        rows = rows.rename(columns={"cross_entropy": "loss", "val_cross_entropy": "val_loss"})
        rows.insert(0, "method", run.method)
        rows.insert(1, "weight_decay", run.weight_decay)
        rows.insert(2, "learning_rate_base", run.learning_rate)
        rows.insert(3, "seed", run.seed)
        frames.append(rows)
        norms.append(
            {
                "method": run.method,
                "weight_decay": run.weight_decay,
                "initial_weight_norm": initial_norm,
                "final_weight_norm": weight_norm(model),
            }
        )
    return pd.concat(frames, ignore_index=True), pd.DataFrame(norms)


def summarise(results: pd.DataFrame, norms: pd.DataFrame) -> pd.DataFrame:
    """Final train/test cross-entropy and accuracy, best test loss, final weight norm per run."""
    keys = ["method", "weight_decay"]
    final = results.groupby(keys, sort=False).tail(1).set_index(keys)
    summary = final[["epoch", "loss", "val_loss", "accuracy", "val_accuracy", "status"]].rename(
        columns={
            "epoch": "epochs",
            "loss": "final_train_loss",
            "val_loss": "final_test_loss",
            "accuracy": "final_train_accuracy",
            "val_accuracy": "final_test_accuracy",
        }
    )
    summary["best_test_loss"] = results.groupby(keys, sort=False)["val_loss"].min()
    summary = summary.join(norms.set_index(keys))
    summary["generalisation_gap"] = summary["final_test_loss"] - summary["final_train_loss"]
    return summary.reset_index()


def plot(results: pd.DataFrame, summary: pd.DataFrame, path: Path) -> None:
    """Train and test loss per epoch for each method (rows), and final weight norm vs decay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    methods = [m for m in METHODS if m in set(results["method"])]
    titles = {"coupled_l2": "coupled (Adam + L2)", "decoupled": "decoupled (AdamW)"}
    figure, axes = plt.subplots(len(methods), 3, figsize=(15, 3.8 * len(methods)), squeeze=False)
    for row, method in zip(axes, methods):
        subset = results[results["method"] == method]
        for weight_decay, group in subset.groupby("weight_decay"):
            row[0].plot(group["epoch"], group["loss"], linewidth=1.8, label=f"wd={weight_decay:g}")
            row[1].plot(group["epoch"], group["val_loss"], linewidth=1.8, label=f"wd={weight_decay:g}")
        row[0].set_title(f"{titles[method]}: train loss")
        row[1].set_title(f"{titles[method]}: test loss")
        for axis in row[:2]:
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.set_ylabel("cross-entropy")
            axis.set_yscale("log")
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize=8)
        norms = summary[summary["method"] == method].sort_values("weight_decay")
        positions = np.arange(len(norms))
        bars = row[2].bar(positions, norms["final_weight_norm"], color="tab:gray")
        row[2].bar_label(bars, fmt="%.3f", fontsize=8)
        row[2].set_xticks(positions, [f"{wd:g}" for wd in norms["weight_decay"]])
        row[2].set_xlabel("weight decay")
        row[2].set_ylabel("‖w‖₂ after training")
        row[2].set_title(f"{titles[method]}: final weight norm")
        row[2].grid(True, axis="y", alpha=0.3)
    figure.suptitle("Weight decay on make_moons: Adam lr 0.01, full batch (notebook 004)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def build_parser():
    parser = make_parser(NAME, __doc__.split("\n\n")[0])
    parser.add_argument(
        "--weight-decays",
        nargs="+",
        type=float,
        default=list(WEIGHT_DECAYS),
        help="decay strengths, each >= 0, used by both methods (default: 0 0.001 0.01, notebook 004)",
    )
    parser.add_argument("--learning-rate", type=positive_float, default=LEARNING_RATE, help="Adam's rate (default 0.01)")
    parser.add_argument("--epochs", type=positive_int, default=None, help=f"full-batch epochs (default {EPOCHS}; --quick 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    add_resume_argument(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(build_parser(), argv, NAME)
    bad = [wd for wd in args.weight_decays if not (np.isfinite(wd) and wd >= 0)]
    if bad:
        raise UsageError(f"--weight-decays must be finite numbers >= 0, got {bad}")
    weight_decays = sorted(set(args.weight_decays))
    epochs = args.epochs or (10 if args.quick else EPOCHS)
    output = open_output(args, NAME)

    runs = declare_runs(weight_decays, args.learning_rate, args.seed)
    results, norms = run_all(
        runs, output, epochs=epochs, jit_compile=False if args.quick else "auto", tensorboard=not args.no_tensorboard
    )
    summary = summarise(results, norms)
    write_csv_atomic(output / "results.csv", results)
    write_csv_atomic(output / "summary.csv", summary)
    plot(results, summary, output / "weight_decay.png")
    remove_checkpoints(output)
    with pd.option_context("display.width", 180, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"results, plot and TensorBoard logs in {output}")
    return 0


if __name__ == "__main__":
    run_main(main)
