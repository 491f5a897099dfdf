"""Xavier (Glorot) vs He initialisation: activation statistics layer by layer (notebook 002).

A deep stack of Dense layers (default 10 layers of 256 units, zero biases) with ReLU or tanh is
initialised with Keras's initialisers -- ``glorot_uniform``, ``glorot_normal``, ``he_normal``,
``he_uniform`` and a naive ``RandomNormal(stddev=0.01)`` -- and a batch of standard-normal inputs is
passed forward. For every layer the mean and standard deviation of the activations are recorded,
with the fraction of exact zeros (dead ReLU units) and of saturated tanh units (|a| > 0.99).

What to expect: a weight variance of 2/fan_in (He) keeps the second moment of ReLU activations
constant from layer to layer, since ReLU zeroes half of a symmetric input; Glorot's
2/(fan_in + fan_out) = 1/fan_in (square layers) halves it at every ReLU layer, so the spread decays
as 2^(-l/2); the small normal shrinks it by about 0.01·√(fan_in/2) per layer and the signal
vanishes. Under tanh, Glorot keeps a healthy spread while He pushes units towards saturation.

Writes ``activations.csv`` (activation, initializer, layer, mean, std, fraction_zero,
fraction_saturated; layer 0 is the input) and ``activations.png``.

    python -m experiments.initialization --out runs/init
    python -m experiments.initialization --depth 20 --width 512
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from experiments import cli, report

NAME = "initialization"

#: The initialisers compared, by the name shown in the CSV and on the plot.
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "small_normal")
ACTIVATIONS = ("relu", "tanh")


def initializer(name: str, seed: int) -> keras.initializers.Initializer:
    """Keras's initialiser ``name`` (``small_normal`` is ``RandomNormal(stddev=0.01)``), seeded."""
    if name == "small_normal":
        return keras.initializers.RandomNormal(mean=0.0, stddev=0.01, seed=seed)
    return keras.initializers.get({"class_name": name, "config": {"seed": seed}})


def build_stack(activation: str, initializer_name: str, *, depth: int, width: int, seed: int = 0) -> keras.Sequential:
    """``depth`` Dense layers of ``width`` units with ``activation``, each seeded independently."""
    return keras.Sequential(
        [keras.Input(shape=(width,))]
        + [
            keras.layers.Dense(width, activation=activation, kernel_initializer=initializer(initializer_name, seed * 1000 + i))
            for i in range(depth)
        ],
        name=f"{activation}_{initializer_name}",
    )


def statistics(activations: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation, fraction of zeros and of |a| > 0.99 over a batch of activations."""
    values = np.asarray(activations, dtype=np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "fraction_zero": float(np.mean(values == 0.0)),
        "fraction_saturated": float(np.mean(np.abs(values) > 0.99)),
    }


def run(
    activations: Sequence[str] = ACTIVATIONS,
    initializers: Sequence[str] = INITIALIZERS,
    *,
    depth: int = 10,
    width: int = 256,
    batch: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Forward one standard-normal batch through every (activation, initializer) stack."""
    inputs = np.random.default_rng(seed).standard_normal((batch, width)).astype(np.float32)
    rows = []
    pairs = [(a, i) for a in activations for i in initializers]
    for activation, name in tqdm(pairs, desc="stacks", unit="stack"):
        model = build_stack(activation, name, depth=depth, width=width, seed=seed)
        values = keras.ops.convert_to_tensor(inputs)
        rows.append({"activation": activation, "initializer": name, "layer": 0, **statistics(inputs)})
        for index, layer in enumerate(model.layers, start=1):
            values = layer(values)
            rows.append(
                {
                    "activation": activation,
                    "initializer": name,
                    "layer": index,
                    **statistics(keras.ops.convert_to_numpy(values)),
                }
            )
    return pd.DataFrame(rows)


def plot(rows: pd.DataFrame, path: Path) -> None:
    """Mean and spread of the activations per layer: one row of panels per activation."""
    plt = report.pyplot()
    activations = list(dict.fromkeys(rows["activation"]))
    figure, axes = plt.subplots(len(activations), 3, figsize=(17, 4.6 * len(activations)), squeeze=False)
    for row_axes, activation in zip(axes, activations):
        subset = rows[rows["activation"] == activation]
        for name, group in subset.groupby("initializer", sort=False):
            group = group.sort_values("layer")
            row_axes[0].plot(group["layer"], group["mean"], "o-", markersize=3, label=name)
            row_axes[1].semilogy(group["layer"], group["std"].clip(lower=1e-30), "o-", markersize=3, label=name)
            share = group["fraction_zero"] if activation == "relu" else group["fraction_saturated"]
            row_axes[2].plot(group["layer"], share, "o-", markersize=3, label=name)
        row_axes[0].set_title(f"{activation}: activation mean")
        row_axes[1].set_title(f"{activation}: activation std (log)")
        row_axes[2].set_title(f"{activation}: " + ("fraction of zero outputs" if activation == "relu" else "fraction with |a| > 0.99"))
        for axis in row_axes:
            axis.set_xlabel("layer (0 = input)")
            axis.grid(True, which="both", alpha=0.3)
        row_axes[1].legend(fontsize=8)
    report.save_figure(figure, path, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.make_parser(NAME, __doc__)
    parser.add_argument("--depth", type=cli.positive_int, help="layers per stack (default: 10; --quick: 6)")
    parser.add_argument("--width", type=cli.positive_int, help="units per layer and input size (default: 256; --quick: 64)")
    parser.add_argument("--batch", type=cli.positive_int, help="inputs in the batch (default: 1000; --quick: 256)")
    parser.add_argument("--seed", type=int, default=0, help="weights and inputs (default: 0)")
    args = parser.parse_args(argv)
    depth = args.depth or (6 if args.quick else 10)
    width = args.width or (64 if args.quick else 256)
    batch = args.batch or (256 if args.quick else 1000)
    out = cli.prepare_output_dir(args.out or cli.default_output_dir(NAME))
    rows = run(depth=depth, width=width, batch=batch, seed=args.seed)
    cli.write_csv_atomic(out / "activations.csv", rows)
    plot(rows, out / "activations.png")
    last = rows[rows["layer"] == depth][["activation", "initializer", "mean", "std", "fraction_zero", "fraction_saturated"]]
    print(f"activation statistics at layer {depth} of {depth} ({width} units):")
    print(last.to_string(index=False))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
