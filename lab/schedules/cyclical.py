"""Cyclical learning rates: a triangle wave between a base and a maximum rate."""

from __future__ import annotations

import keras
from keras import ops

from lab.checks import check_choice, check_in_range, check_non_negative, check_positive_int
from lab.schedules.base import Schedule, as_float_step


@keras.saving.register_keras_serializable(package="lab")
class CyclicalLR(Schedule):
    """A triangle wave of period ``2 · step_size`` between ``base`` and ``max``.

        cycle(t) = ⌊1 + t / (2 S)⌋,   x(t) = |t / S − 2 cycle(t) + 1|
        lr(t) = base + (max − base) · max(0, 1 − x(t)) · f(t)

    with S = ``step_size`` and the amplitude factor f:
    "triangular" f = 1; "triangular2" f = 1 / 2^(cycle − 1) (the amplitude halves each cycle);
    "exp_range" f = gamma^t.

    Args:
        base_learning_rate: float >= 0, the value at the start of every cycle.
        max_learning_rate: float >= 0, reached at the middle of the first cycle.
        step_size: S, integer >= 1, steps of each half cycle (up and down are equal).
        mode: "triangular", "triangular2" or "exp_range" (default "triangular").
        gamma: float in (0, 1], the per-step factor of "exp_range" (default 1).
        name: optional name; defaults to ``"CyclicalLR"``.

    Reference: Smith, "Cyclical Learning Rates for Training Neural Networks" (WACV 2017);
    PyTorch ``torch.optim.lr_scheduler.CyclicLR`` with ``step_size_up = step_size_down``.
    """

    STEP_ARGUMENTS = ("step_size",)

    def __init__(
        self,
        base_learning_rate: float,
        max_learning_rate: float,
        step_size: int,
        mode: str = "triangular",
        gamma: float = 1.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.base_learning_rate = check_non_negative("base_learning_rate", base_learning_rate)
        self.max_learning_rate = check_non_negative("max_learning_rate", max_learning_rate)
        self.step_size = check_positive_int("step_size", step_size)
        self.mode = check_choice("mode", mode, ("triangular", "triangular2", "exp_range"))
        self.gamma = check_in_range("gamma", gamma, 0.0, 1.0, low_inclusive=False)
        self.name = name or "CyclicalLR"

    def __call__(self, step):
        step = as_float_step(step)
        half = float(self.step_size)
        cycle = ops.floor(1.0 + step / (2.0 * half))
        # position inside the cycle, exact in float32 for integer steps: 0 .. 2S - 1
        position = step - 2.0 * half * (cycle - 1.0)
        distance = ops.abs(position / half - 1.0)
        amplitude = self.max_learning_rate - self.base_learning_rate
        height = amplitude * ops.maximum(0.0, 1.0 - distance)
        if self.mode == "triangular2":
            height = height / ops.power(2.0, cycle - 1.0)
        elif self.mode == "exp_range":
            height = height * ops.power(ops.cast(self.gamma, "float32"), step)
        return self.base_learning_rate + height

    def get_config(self) -> dict:
        return {
            "base_learning_rate": self.base_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
            "name": self.name,
        }
