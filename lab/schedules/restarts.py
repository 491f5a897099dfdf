"""SGDR: cosine annealing with warm restarts, periods growing by ``t_mul``."""

from __future__ import annotations

import math

import keras
from keras import ops

from lab.checks import check_in_range, check_non_negative, check_positive, check_positive_int
from lab.schedules.base import Schedule, as_float_step, cosine_interpolation


@keras.saving.register_keras_serializable(package="lab")
class CosineWarmRestarts(Schedule):
    """Cosine annealing that restarts from the top, each period ``t_mul`` times longer.

        T_i = T_0 · t_mul^i,   start_i = T_0 + T_0 t_mul + … + T_0 t_mul^(i−1)
        i(t) = the period with start_i <= t < start_i + T_i
        lr(t) = min + m_mul^i (lr0 − min) · ½ (1 + cos(π (t − start_i) / T_i))

    The first period lasts ``first_decay_steps`` = T_0; at every restart the period is multiplied
    by ``t_mul`` and the height above the floor by ``m_mul``. With ``m_mul = 1`` and an integer
    ``t_mul`` this equals PyTorch ``CosineAnnealingWarmRestarts(T_0, T_mult=t_mul, eta_min=min)``;
    it is also Keras's ``CosineDecayRestarts`` with ``alpha = min / lr0``.

    Args:
        initial_learning_rate: lr0, the value at step 0 and at the first restart's peak, float >= 0.
        first_decay_steps: T_0, integer >= 1.
        t_mul: period growth factor, float >= 1 (default 2).
        m_mul: height factor per restart, float > 0 (default 1).
        min_learning_rate: the floor, float >= 0 (default 0).
        name: optional name; defaults to ``"CosineWarmRestarts"``.

    Reference: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts"
    (ICLR 2017); PyTorch ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``.
    """

    STEP_ARGUMENTS = ("first_decay_steps",)

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        min_learning_rate: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.initial_learning_rate = check_non_negative(
            "initial_learning_rate", initial_learning_rate
        )
        self.first_decay_steps = check_positive_int("first_decay_steps", first_decay_steps)
        self.t_mul = check_in_range("t_mul", t_mul, 1.0, None)
        self.m_mul = check_positive("m_mul", m_mul)
        self.min_learning_rate = check_non_negative("min_learning_rate", min_learning_rate)
        self.name = name or "CosineWarmRestarts"

    def _period_start(self, index):
        """Step at which period ``index`` (a float tensor of integers) begins."""
        first = float(self.first_decay_steps)
        if self.t_mul == 1.0:
            return first * index
        start = first * (ops.power(self.t_mul, index) - 1.0) / (self.t_mul - 1.0)
        # float32 powers are not exact (1.5^4 may come out as 5.0624995): snap a start that is a
        # whole step up to rounding error onto that step, so a restart is never one step late
        nearest = ops.round(start)
        return ops.where(ops.abs(start - nearest) <= 1e-5 * (1.0 + start), nearest, start)

    def __call__(self, step):
        step = as_float_step(step)
        first = float(self.first_decay_steps)
        if self.t_mul == 1.0:
            index = ops.floor(step / first)
        else:
            # closed-form estimate, then one correction either way against float32 rounding of
            # the logarithm at exact restart steps
            index = ops.floor(
                ops.log(1.0 + step * (self.t_mul - 1.0) / first) / math.log(self.t_mul)
            )
            index = ops.where(step < self._period_start(index), index - 1.0, index)
            index = ops.where(step >= self._period_start(index + 1.0), index + 1.0, index)
        start = self._period_start(index)
        length = first * ops.power(self.t_mul, index)
        fraction = ops.clip((step - start) / length, 0.0, 1.0)
        peak = self.min_learning_rate + ops.power(self.m_mul, index) * (
            self.initial_learning_rate - self.min_learning_rate
        )
        return cosine_interpolation(peak, self.min_learning_rate, fraction)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "min_learning_rate": self.min_learning_rate,
            "name": self.name,
        }
