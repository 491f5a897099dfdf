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


def digits_mlp(seed: int = 0, hidden_units: int = 64) -> keras.Model:
    """scikit-learn's 8x8 digits: 64 -> Dense(64, relu) -> Dense(10, softmax)."""
    return keras.Sequential(
        [
            keras.Input(shape=(64,)),
            layers.Dense(hidden_units, activation="relu", kernel_initializer=_seeded(seed, 0)),
            layers.Dense(10, activation="softmax", kernel_initializer=_seeded(seed, 1)),
        ],
        name="digits_mlp",
    )


def mnist_autoencoder(seed: int = 0, code_units: int = 32) -> keras.Model:
    """A dense MNIST autoencoder: 784 -> 128 -> 32 -> 128 -> 784 (sigmoid), for mean squared error."""
    return keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(128, activation="relu", kernel_initializer=_seeded(seed, 0)),
            layers.Dense(code_units, activation="relu", kernel_initializer=_seeded(seed, 1)),
            layers.Dense(128, activation="relu", kernel_initializer=_seeded(seed, 2)),
            layers.Dense(784, activation="sigmoid", kernel_initializer=_seeded(seed, 3)),
        ],
        name="mnist_autoencoder",
    )


@keras.saving.register_keras_serializable(package="lab")
class QuadraticResidual(layers.Layer):
    """R (θ − x) for a fixed matrix R and trainable θ (initialised to ones): the residual of the
    noisy quadratic ½ (θ − x)ᵀ RᵀR (θ − x) (``lab.datasets.noisy_quadratic``)."""

    def __init__(self, hessian_sqrt, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hessian_sqrt = keras.ops.convert_to_numpy(hessian_sqrt).astype("float32")

    def build(self, input_shape) -> None:
        self.theta = self.add_weight(shape=(self.hessian_sqrt.shape[0],), initializer="ones", name="theta")

    def call(self, x):
        return keras.ops.matmul(self.theta - x, keras.ops.transpose(self.hessian_sqrt))

    def get_config(self) -> dict:
        return {**super().get_config(), "hessian_sqrt": self.hessian_sqrt.tolist()}


def noisy_quadratic(seed: int = 0, dimension: int = 100) -> keras.Model:
    """The noisy quadratic's model: one trainable vector θ, output R (θ − x). ``seed`` is unused:
    θ starts at ones whatever the seed (DeepOBS's start is fixed too); the noise comes from the
    data order."""
    from lab.datasets import quadratic_hessian_sqrt

    return keras.Sequential(
        [keras.Input(shape=(dimension,)), QuadraticResidual(quadratic_hessian_sqrt(dimension), name="quadratic")],
        name="noisy_quadratic",
    )
