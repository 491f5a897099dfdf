"""NumPy references of the learning-rate schedules, in float64.

Each function takes an array of 0-based steps and returns the learning rate at each, written from
the closed-form formulas of the notebooks, the papers and PyTorch's documented
``torch.optim.lr_scheduler`` behaviour (the value at step i is PyTorch's learning rate after i
``scheduler.step()`` calls). Where PyTorch's documentation gives the rule as a loop over phases or
cycles, the reference follows that loop step by step instead of a vectorised closed form, so it
shares no arithmetic shortcut with the code under test.
"""

from __future__ import annotations

import math

import numpy as np


def _steps(steps) -> np.ndarray:
    return np.asarray(steps, dtype=np.float64)


def constant(steps, learning_rate: float) -> np.ndarray:
    return np.full(_steps(steps).shape, float(learning_rate))


def step_decay(steps, initial_learning_rate: float, decay_rate: float, decay_steps: int) -> np.ndarray:
    """StepLR: lr0 * gamma ** (t // step_size)."""
    t = np.asarray(steps, dtype=np.int64)
    return initial_learning_rate * decay_rate ** (t // decay_steps).astype(np.float64)


def exponential_decay(
    steps, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> np.ndarray:
    """lr0 * rate ** (t / decay_steps), integer division when staircase."""
    t = np.asarray(steps, dtype=np.int64)
    exponent = (t // decay_steps).astype(np.float64) if staircase else t / decay_steps
    return initial_learning_rate * decay_rate**exponent
