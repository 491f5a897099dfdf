"""Seeded model builders for the lab's problems.

Every layer gets its own initializer seeded from ``seed``, so two builds with the same seed on
the same backend have bit-identical weights whatever the global random state is. The models are
returned uncompiled: the experiment chooses the optimiser, loss and metrics.
"""

from __future__ import annotations

import keras
from keras import layers


def _seeded(seed: int, index: int, kind: str = "glorot_uniform") -> keras.initializers.Initializer:
    """Layer ``index``'s kernel initializer, seeded independently of the other layers."""
    config = {"class_name": kind, "config": {"seed": seed * 1000 + index}}
    return keras.initializers.get(config)


def mnist_mlp(seed: int = 0, hidden_units: int = 128) -> keras.Model:
    """Notebook 003's MLP: 784 -> Dense(128, relu) -> Dense(10, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(hidden_units, activation="relu", kernel_initializer=_seeded(seed, 0)),
            layers.Dense(10, activation="softmax", kernel_initializer=_seeded(seed, 1)),
        ],
        name="mnist_mlp",
    )


def mnist_cnn(seed: int = 0) -> keras.Model:
    """A small MNIST CNN: two conv(3x3) + max-pool blocks (32, 64 filters) -> Dense(10, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(32, 3, activation="relu", kernel_initializer=_seeded(seed, 0)),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, activation="relu", kernel_initializer=_seeded(seed, 1)),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(10, activation="softmax", kernel_initializer=_seeded(seed, 2)),
        ],
        name="mnist_cnn",
    )


def moons_net(seed: int = 0) -> keras.Model:
    """Notebook 004's net: 2 -> Dense(16, relu) -> Dense(8, relu) -> Dense(2, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(2,)),
            layers.Dense(16, activation="relu", kernel_initializer=_seeded(seed, 0)),
            layers.Dense(8, activation="relu", kernel_initializer=_seeded(seed, 1)),
            layers.Dense(2, activation="softmax", kernel_initializer=_seeded(seed, 2)),
        ],
        name="moons_net",
    )


def linear_regression(seed: int = 0) -> keras.Model:
    """One unit, y = w x + b: the model of the notebooks' batch/stochastic/mini-batch study."""
    return keras.Sequential(
        [
            keras.Input(shape=(1,)),
            layers.Dense(1, kernel_initializer=_seeded(seed, 0, "random_normal")),
        ],
        name="linear_regression",
    )
