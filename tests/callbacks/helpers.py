"""Small real problems and independent NumPy references for the callback tests."""

from __future__ import annotations

import keras
import numpy as np

from lab import datasets, models


def regression() -> tuple[np.ndarray, np.ndarray]:
    """Notebook 000's y = 3x + 7 + noise, 100 samples; y as a column."""
    data = datasets.regression_000()
    return data.x.astype(np.float32), data.y.reshape(-1, 1).astype(np.float32)


def linear_model(optimizer: keras.optimizers.Optimizer, seed: int = 0) -> keras.Model:
    model = models.linear_regression(seed)
    model.compile(optimizer=optimizer, loss="mse")
    return model


def mse_gradient(weight: float, bias: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d/d(w, b) of mean((w x + b - y)^2), in float64."""
    x, y = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    residual = weight * x + bias - y
    return np.array([2.0 * np.mean(residual * x), 2.0 * np.mean(residual)])


def mse(weight: float, bias: float, x: np.ndarray, y: np.ndarray) -> float:
    x, y = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    return float(np.mean((weight * x + bias - y) ** 2))


def moons(subset: int | None = None):
    split = datasets.load_moons()
    if subset is None:
        return split
    return split._replace(x_train=split.x_train[:subset], y_train=split.y_train[:subset])


def moons_model(optimizer: keras.optimizers.Optimizer, seed: int = 0) -> keras.Model:
    model = models.moons_net(seed)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def values(variables) -> list[np.ndarray]:
    return [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in variables]


class ParameterRecorder(keras.callbacks.Callback):
    """Records (w, b) of the linear model before training and after every step.

    On JAX, ``fit`` keeps the state outside the variables during an epoch; the recorder syncs it
    (Keras's ``jax_state_sync``) before reading.
    """

    def on_train_begin(self, logs=None):
        self.after_step = [self._read()]

    def on_train_batch_end(self, batch, logs=None):
        if hasattr(self.model, "jax_state_sync"):
            self.model.jax_state_sync()
        self.after_step.append(self._read())

    def _read(self) -> tuple[float, float]:
        kernel, bias = self.model.trainable_variables
        return (
            float(keras.ops.convert_to_numpy(kernel.value).ravel()[0]),
            float(keras.ops.convert_to_numpy(bias.value).ravel()[0]),
        )

    def applied_learning_rates(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The rate plain SGD applied at each full-batch step: -(w' - w) / grad(w), from w."""
        rates = []
        for (w0, b0), (w1, b1) in zip(self.after_step[:-1], self.after_step[1:]):
            gradient = mse_gradient(w0, b0, x, y)
            rates.append(-(w1 - w0) / gradient[0])
        return np.array(rates)


def reference_plateau(
    monitored,
    learning_rate: float,
    *,
    factor: float,
    patience: int,
    min_delta: float,
    threshold_mode: str = "abs",
    cooldown: int = 0,
    min_lr: float = 0.0,
    mode: str = "min",
) -> list[float]:
    """The learning rate in force during each epoch, given the monitored values.

    Keras's counting (reduce once ``wait >= patience``; ``cooldown`` epochs of rest) with
    PyTorch's threshold rule for ``threshold_mode="rel"``; written independently of both.
    """
    best = None
    bad, cooldown_left = 0, 0
    rates = []
    for value in monitored:
        rates.append(learning_rate)
        if best is None:
            better = True
        elif threshold_mode == "rel":
            if mode == "min":
                better = value < best * (1 - min_delta)
            else:
                better = value > best * (1 + min_delta)
        else:
            better = value < best - min_delta if mode == "min" else value > best + min_delta
        if cooldown_left > 0:
            cooldown_left -= 1
            bad = 0
        if better:
            best, bad = value, 0
        elif cooldown_left == 0:
            bad += 1
            if bad >= patience and learning_rate > min_lr:
                learning_rate = max(learning_rate * factor, min_lr)
                cooldown_left, bad = cooldown, 0
    return rates
