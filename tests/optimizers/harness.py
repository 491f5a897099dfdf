"""Shared drivers for the optimiser tests: step-by-step runs against a NumPy reference,
short ``model.fit`` runs against the Keras built-in twin.

Step-by-step runs use float64 variables where the backend has them (TensorFlow) and float32 on
JAX (which truncates float64 unless x64 is enabled), with the tolerance stated per dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

STEPS = 25
# Tolerance of a trajectory against its reference, relative to the largest parameter magnitude
# of the trajectory (elementwise relative error is meaningless where a coordinate crosses zero).
# float64 variables (TensorFlow) see only the float32 rounding of the learning rate (the
# optimiser holds it, and a schedule computes it, in float32), so 1e-6 holds; float32 variables
# (JAX without x64) accumulate float32 rounding over the steps, so 1e-5 there.
RTOL = {"float64": 1e-6, "float32": 1e-5}


def variable_dtype() -> str:
    return "float64" if keras.backend.backend() == "tensorflow" else "float32"


THETA_0 = np.array([[1.5, -2.0, 0.3], [0.7, -0.05, 2.5]])
CURVATURE = np.array([[1.0, 4.0, 0.5], [2.0, 8.0, 0.25]])


def gradient(theta: np.ndarray, step: int) -> np.ndarray:
    """A changing, state-dependent gradient: a quadratic bowl plus a rotating drift term
    (of either sign, so momentum and adaptive denominators are exercised in both directions)."""
    drift = np.sin(0.7 * step + np.arange(theta.size).reshape(theta.shape))
    return CURVATURE * theta + 0.5 * drift


def float32_rounded(value: float) -> float:
    """The learning rate as the optimiser holds it (a float32 variable)."""
    return float(np.float32(value))


def constant_learning_rates(value: float, steps: int = STEPS) -> list[float]:
    return [float32_rounded(value)] * steps


def exponential_decay_rates(initial: float, decay_steps: int, rate: float, steps: int = STEPS) -> list[float]:
    """``initial·rate^(step/decay_steps)`` at steps 0, 1, ... -- ExponentialDecay, from its formula."""
    return [float32_rounded(initial * rate ** (step / decay_steps)) for step in range(steps)]


def run_optimizer(optimizer: keras.optimizers.Optimizer, steps: int = STEPS) -> np.ndarray:
    """Apply ``steps`` updates to a fresh variable; return the trajectory (steps + 1, ...)."""
    variable = keras.Variable(THETA_0, dtype=variable_dtype())
    trajectory = [np.array(variable.numpy(), dtype=np.float64)]
    for step in range(steps):
        g = gradient(trajectory[-1], step)
        optimizer.apply([keras.ops.convert_to_tensor(g, dtype=variable_dtype())], [variable])
        trajectory.append(np.array(variable.numpy(), dtype=np.float64))
    return np.stack(trajectory)


def run_reference(reference: Any, learning_rates: list[float]) -> np.ndarray:
    theta = THETA_0.astype(np.float64)
    trajectory = [theta]
    for step, lr in enumerate(learning_rates):
        theta = reference.step(theta, gradient(theta, step), lr)
        trajectory.append(theta)
    return np.stack(trajectory)


def assert_matches_reference(optimizer: keras.optimizers.Optimizer, reference: Any, learning_rates: list[float]) -> None:
    dtype = variable_dtype()
    actual = run_optimizer(optimizer, len(learning_rates))
    expected = run_reference(reference, learning_rates)
    assert np.abs(expected[-1] - THETA_0).max() > 0.1, "the run must move the parameters"
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=RTOL[dtype] * scale)


def schedule(initial: float = 0.1, decay_steps: int = 5, rate: float = 0.5) -> keras.optimizers.schedules.ExponentialDecay:
    return keras.optimizers.schedules.ExponentialDecay(initial, decay_steps, rate)


def learning_rate_cases(constant: float, initial: float) -> list[tuple[Any, list[float]]]:
    """(argument, per-step rates) for a constant rate and for ExponentialDecay(initial, 5, 0.5).

    Both are checked within one test: each test pays a Keras session reset (~0.5 s on TensorFlow).
    """
    return [
        (constant, constant_learning_rates(constant)),
        (schedule(initial, 5, 0.5), exponential_decay_rates(initial, 5, 0.5)),
    ]


# --- model.fit against the built-in twin -------------------------------------------------------


def tiny_data(seed: int = 0, samples: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, 6)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] > 0).astype("int32")
    return x, y


def tiny_model(seed: int = 0, names: tuple[str | None, str | None] = (None, None)) -> keras.Model:
    """6-8-2, tanh then softmax; ``names`` of the two layers (Keras numbers them when None)."""
    return keras.Sequential(
        [
            keras.Input(shape=(6,)),
            keras.layers.Dense(8, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed), name=names[0]),
            keras.layers.Dense(
                2, activation="softmax", kernel_initializer=keras.initializers.GlorotUniform(seed + 1), name=names[1]
            ),
        ]
    )


def fit_weights(
    optimizer: keras.optimizers.Optimizer,
    epochs: int = 3,
    batch_size: int = 16,
    jit_compile: Any = "auto",
    model_builder: Callable[[int], keras.Model] = tiny_model,
    run_eagerly: bool = False,
) -> list[np.ndarray]:
    """Train the tiny model (no shuffling, so runs are comparable) and return its weights."""
    x, y = tiny_data()
    model = model_builder(0)
    model.compile(
        optimizer=optimizer, loss="sparse_categorical_crossentropy", jit_compile=jit_compile, run_eagerly=run_eagerly
    )
    model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0)
    return [np.array(w, dtype=np.float64) for w in model.get_weights()]


def assert_same_weights(actual: list[np.ndarray], expected: list[np.ndarray], rtol: float = 1e-5, atol: float = 1e-6) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)
