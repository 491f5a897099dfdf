"""PyTorch's optimisers as references: the harness's trajectory (same start, same state-dependent
gradients) run by a ``torch.optim`` optimiser in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tests.optimizers import harness


def trajectory(make_optimizer: Callable[[list], Any], learning_rates: list[float] | None = None) -> np.ndarray:
    """``steps + 1`` parameter values; ``learning_rates`` (one per step) overrides the rate."""
    import torch

    steps = harness.STEPS if learning_rates is None else len(learning_rates)
    parameter = torch.nn.Parameter(torch.tensor(harness.THETA_0, dtype=torch.float64))
    optimizer = make_optimizer([parameter])
    values = [parameter.detach().numpy().copy()]
    for step in range(steps):
        if learning_rates is not None:
            for group in optimizer.param_groups:
                group["lr"] = learning_rates[step]
        parameter.grad = torch.tensor(harness.gradient(values[-1], step), dtype=torch.float64)
        optimizer.step()
        values.append(parameter.detach().numpy().copy())
    return np.stack(values)


def assert_matches(actual: np.ndarray, expected: np.ndarray) -> None:
    """The harness's tolerance, relative to the largest parameter magnitude."""
    assert np.abs(expected[-1] - harness.THETA_0).max() > 0.1, "the run must move the parameters"
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=harness.RTOL[harness.variable_dtype()] * scale)
