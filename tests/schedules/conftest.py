"""Evaluate a schedule over many steps, eagerly and compiled (XLA on TensorFlow, jax.jit on JAX)."""

import keras
import numpy as np
import pytest
from keras import ops


def _compiled(function):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=True)
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    return function


def evaluate_schedule(schedule, steps) -> np.ndarray:
    """Values at ``steps`` (int64 array) as float64; the eager and compiled values must agree."""
    steps = np.asarray(steps, dtype="int64")
    eager = ops.convert_to_numpy(schedule(ops.convert_to_tensor(steps))).astype("float64")
    compiled = ops.convert_to_numpy(_compiled(schedule)(ops.convert_to_tensor(steps))).astype("float64")
    assert eager.shape == steps.shape
    # XLA's float32 cos/pow differ from the eager kernels by a few ulp
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6 * np.abs(eager).max())
    return eager


def assert_matches(actual, expected, rtol=2e-5):
    """float32 schedule vs float64 reference: relative error, with an absolute floor scaled to
    the curve's peak so values near zero are compared on the curve's own scale."""
    expected = np.asarray(expected, dtype="float64")
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-6 * np.abs(expected).max())


@pytest.fixture
def evaluate():
    return evaluate_schedule


def torch_learning_rates(make_scheduler, base_learning_rate: float, steps: int) -> np.ndarray:
    """A ``torch.optim.lr_scheduler`` twin's rate after 0, 1, ..., steps − 1 ``scheduler.step()``
    calls, on a float64 parameter (``make_scheduler(optimizer)`` builds it)."""
    import torch

    parameter = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.SGD([parameter], lr=base_learning_rate)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(rates, dtype="float64")
