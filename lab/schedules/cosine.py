"""Cosine annealing to a floor, and linear warm-up followed by it."""

from __future__ import annotations

import keras
from keras import ops

from lab.checks import check_non_negative, check_positive_int
from lab.schedules.base import Schedule, as_float_step, check_non_negative_int, cosine_interpolation


@keras.saving.register_keras_serializable(package="lab")
class CosineAnnealing(Schedule):
    """Half a cosine from ``initial_learning_rate`` down to a floor, then flat.

        lr(t) = min + ½ (lr0 − min) (1 + cos(π · min(t, T) / T)),   T = decay_steps

    Args:
        initial_learning_rate: lr0, float >= 0.
        decay_steps: T, integer >= 1; the floor is reached at step T and kept after.
        min_learning_rate: the floor (PyTorch's ``eta_min``), float >= 0 (default 0).
        name: optional name; defaults to ``"CosineAnnealing"``.

    Reference: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts"
    (ICLR 2017); PyTorch ``CosineAnnealingLR`` for t <= T (PyTorch climbs back up after T, this
    schedule stays at the floor); the notebooks' cosine with a floor alpha_min.
    """

    STEP_ARGUMENTS = ("decay_steps",)

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        min_learning_rate: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.initial_learning_rate = check_non_negative(
            "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = check_positive_int("decay_steps", decay_steps)
        self.min_learning_rate = check_non_negative("min_learning_rate", min_learning_rate)
        self.name = name or "CosineAnnealing"

    def __call__(self, step):
        steps = float(self.decay_steps)
        fraction = ops.minimum(as_float_step(step), steps) / steps
        return cosine_interpolation(self.initial_learning_rate, self.min_learning_rate, fraction)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "min_learning_rate": self.min_learning_rate,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="lab")
class WarmupCosine(Schedule):
    """Linear warm-up to a peak, then cosine annealing to a floor.

        lr(t) = lr_init + (peak − lr_init) · t / W                          for t < W
        lr(t) = CosineAnnealing(peak, decay_steps, min)(t − W)              for t >= W

    with W = ``warmup_steps``; the value at step W is the peak and the floor is reached at step
    W + ``decay_steps``. ``warmup_steps=0`` is plain cosine annealing.

    Args:
        peak_learning_rate: float >= 0, reached at the end of the warm-up.
        warmup_steps: W, integer >= 0.
        decay_steps: length of the cosine phase, integer >= 1.
        initial_learning_rate: lr_init, value at step 0, float >= 0 (default 0).
        min_learning_rate: the floor, float >= 0 (default 0).
        name: optional name; defaults to ``"WarmupCosine"``.

    Reference: Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (2017)
    for the linear warm-up; the notebooks' warmup + cosine (with a floor in notebook 002).
    """

    STEP_ARGUMENTS = ("warmup_steps", "decay_steps")

    def __init__(
        self,
        peak_learning_rate: float,
        warmup_steps: int,
        decay_steps: int,
        initial_learning_rate: float = 0.0,
        min_learning_rate: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.peak_learning_rate = check_non_negative("peak_learning_rate", peak_learning_rate)
        self.warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
        self.decay_steps = check_positive_int("decay_steps", decay_steps)
        self.initial_learning_rate = check_non_negative(
            "initial_learning_rate", initial_learning_rate
        )
        self.min_learning_rate = check_non_negative("min_learning_rate", min_learning_rate)
        self.name = name or "WarmupCosine"
        self._cosine = CosineAnnealing(
            self.peak_learning_rate, self.decay_steps, self.min_learning_rate
        )

    def __call__(self, step):
        step = as_float_step(step)
        warmup = float(self.warmup_steps)
        rising = self.initial_learning_rate + (
            self.peak_learning_rate - self.initial_learning_rate
        ) * step / max(warmup, 1.0)
        falling = self._cosine(ops.maximum(step - warmup, 0.0))
        return ops.where(step < warmup, rising, falling)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "initial_learning_rate": self.initial_learning_rate,
            "min_learning_rate": self.min_learning_rate,
            "name": self.name,
        }
