"""Warm-up, a long constant phase, then a short cool-down (WSD)."""

from __future__ import annotations

import keras
from keras import ops

from lab.checks import check_choice, check_in_range, check_non_negative, check_positive_int
from lab.schedules.base import Schedule, as_float_step, check_non_negative_int, cosine_interpolation

DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


@keras.saving.register_keras_serializable(package="lab")
class WarmupStableDecay(Schedule):
    """Linear warm-up to a peak, the peak held, then a cool-down to a floor over the last steps.

    With W = ``warmup_steps``, T = ``total_steps``, the cool-down length
    D = max(1, round(``decay_fraction`` · T)) and its progress p = (t − (T − D)) / D::

        lr(t) = lr_init + (peak − lr_init) · t / W          t < W
        lr(t) = peak                                         W <= t < T − D
        lr(t) = min + (peak − min) · shape(p)                T − D <= t < T
        lr(t) = min                                          t >= T

        shape(p) = 1 − p                 "linear"
                   (1 + cos(π·p)) / 2    "cosine"
                   1 − √p                "1-sqrt"

    Unlike a cosine over the whole run, the constant phase does not depend on T: a run can be
    continued from a checkpoint taken before the cool-down and cooled down later, at any length.
    Hägele et al. find a cool-down of about 20% of the steps, and the 1 − √p shape, match or beat
    a full cosine; Wen et al. explain why the loss drops during the cool-down (the "river valley":
    the constant phase moves along the valley, the decay descends into it).

    Args:
        peak_learning_rate: float >= 0.
        total_steps: T, integer >= 1.
        warmup_steps: W, integer >= 0 (default 0), with W + D <= T.
        decay_fraction: the cool-down's share of T, in (0, 1] (default 0.2).
        decay_shape: ``"linear"`` (default), ``"cosine"`` or ``"1-sqrt"``.
        initial_learning_rate: lr_init, the value at step 0, float >= 0 (default 0).
        min_learning_rate: the floor, float >= 0 (default 0).
        name: optional name; defaults to ``"WarmupStableDecay"``.

    References:
        - Hu et al., 2024, "MiniCPM: Unveiling the Potential of Small Language Models with
          Scalable Training Strategies" (https://arxiv.org/abs/2404.06395), which named WSD.
        - Hägele et al., 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training
          Durations" (https://arxiv.org/abs/2405.18392).
        - Wen et al., 2024, "Understanding Warmup-Stable-Decay Learning Rates: A River Valley Loss
          Landscape Perspective" (https://arxiv.org/abs/2410.05192).
    """

    STEP_ARGUMENTS = ("total_steps", "warmup_steps")

    def __init__(
        self,
        peak_learning_rate: float,
        total_steps: int,
        warmup_steps: int = 0,
        decay_fraction: float = 0.2,
        decay_shape: str = "linear",
        initial_learning_rate: float = 0.0,
        min_learning_rate: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.peak_learning_rate = check_non_negative("peak_learning_rate", peak_learning_rate)
        self.total_steps = check_positive_int("total_steps", total_steps)
        self.warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
        self.decay_fraction = check_in_range("decay_fraction", decay_fraction, 0.0, 1.0, low_inclusive=False)
        self.decay_shape = check_choice("decay_shape", decay_shape, DECAY_SHAPES)
        self.initial_learning_rate = check_non_negative("initial_learning_rate", initial_learning_rate)
        self.min_learning_rate = check_non_negative("min_learning_rate", min_learning_rate)
        if self.warmup_steps + self.decay_steps > self.total_steps:
            raise ValueError(
                f"`warmup_steps` + the cool-down ({self.warmup_steps} + {self.decay_steps}) must be "
                f"<= `total_steps` = {self.total_steps}."
            )
        self.name = name or "WarmupStableDecay"

    @property
    def decay_steps(self) -> int:
        """D, the length of the cool-down."""
        return max(1, round(self.decay_fraction * self.total_steps))

    def _shape(self, progress):
        if self.decay_shape == "linear":
            return 1.0 - progress
        if self.decay_shape == "cosine":
            return cosine_interpolation(1.0, 0.0, progress)
        return 1.0 - ops.sqrt(progress)

    def __call__(self, step):
        step = as_float_step(step)
        decay_start = float(self.total_steps - self.decay_steps)
        progress = ops.clip((step - decay_start) / float(self.decay_steps), 0.0, 1.0)
        cooling = self.min_learning_rate + (self.peak_learning_rate - self.min_learning_rate) * self._shape(progress)
        if self.warmup_steps == 0:
            return cooling
        warmup = float(self.warmup_steps)
        rising = self.initial_learning_rate + (self.peak_learning_rate - self.initial_learning_rate) * step / warmup
        return ops.where(step < warmup, rising, cooling)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay_fraction": self.decay_fraction,
            "decay_shape": self.decay_shape,
            "initial_learning_rate": self.initial_learning_rate,
            "min_learning_rate": self.min_learning_rate,
            "name": self.name,
        }
