"""The one-cycle policy: up from a low rate to the maximum, then down far below the start."""

from __future__ import annotations

import keras
from keras import ops

from lab.checks import check_choice, check_in_range, check_positive, check_positive_int
from lab.schedules.base import Schedule, as_float_step, cosine_interpolation


def _linear_interpolation(start, end, fraction):
    # written so both ends are exact in float32 (start + (end - start) * 1 is not)
    return start * (1.0 - fraction) + end * fraction


@keras.saving.register_keras_serializable(package="lab")
class OneCycle(Schedule):
    """One cycle in two phases, PyTorch ``OneCycleLR`` with ``three_phase=False``.

        lr_init = max_lr / div_factor,   lr_min = lr_init / final_div_factor
        E1 = pct_start · total_steps − 1,   E2 = total_steps − 1
        lr(t) = anneal(lr_init, max_lr, t / E1)                       for t <= E1
        lr(t) = anneal(max_lr, lr_min, (t − E1) / (E2 − E1))          for t > E1

    where ``anneal(a, b, p)`` is ``b + (a − b)(1 + cos(π p)) / 2`` ("cos") or
    ``a + (b − a) p`` ("linear"). Past the last step (t > E2) the rate stays at ``lr_min``
    (PyTorch raises an error there).

    Args:
        max_learning_rate: the peak, float > 0.
        total_steps: integer >= 2, the length of the cycle.
        pct_start: fraction of the cycle spent rising, in (0, 1); ``pct_start · total_steps``
            must exceed 1 so the rising phase has at least one step.
        div_factor: lr_init = max_learning_rate / div_factor, float > 0 (default 25).
        final_div_factor: lr_min = lr_init / final_div_factor, float > 0 (default 1e4).
        anneal: "cos" or "linear" (default "cos").
        name: optional name; defaults to ``"OneCycle"``.

    Reference: Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
    Learning Rates" (2018); PyTorch ``torch.optim.lr_scheduler.OneCycleLR``; fastai's
    ``fit_one_cycle``. Momentum cycling is left to the optimizer.
    """

    STEP_ARGUMENTS = ("total_steps",)

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        anneal: str = "cos",
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.max_learning_rate = check_positive("max_learning_rate", max_learning_rate)
        self.total_steps = check_positive_int("total_steps", total_steps)
        self.pct_start = check_in_range(
            "pct_start", pct_start, 0.0, 1.0, low_inclusive=False, high_inclusive=False
        )
        if self.pct_start * self.total_steps <= 1.0:
            raise ValueError(
                "`pct_start` * `total_steps` must be > 1 so the rising phase has a step; got "
                f"pct_start={pct_start!r}, total_steps={total_steps!r}."
            )
        self.div_factor = check_positive("div_factor", div_factor)
        self.final_div_factor = check_positive("final_div_factor", final_div_factor)
        self.anneal = check_choice("anneal", anneal, ("cos", "linear"))
        self.name = name or "OneCycle"

    @property
    def initial_learning_rate(self) -> float:
        return self.max_learning_rate / self.div_factor

    @property
    def min_learning_rate(self) -> float:
        return self.initial_learning_rate / self.final_div_factor

    def __call__(self, step):
        step = as_float_step(step)
        interpolate = cosine_interpolation if self.anneal == "cos" else _linear_interpolation
        rise_end = self.pct_start * self.total_steps - 1.0
        fall_end = self.total_steps - 1.0
        rising = interpolate(
            self.initial_learning_rate, self.max_learning_rate, ops.clip(step / rise_end, 0.0, 1.0)
        )
        falling = interpolate(
            self.max_learning_rate,
            self.min_learning_rate,
            ops.clip((step - rise_end) / (fall_end - rise_end), 0.0, 1.0),
        )
        return ops.where(step <= rise_end, rising, falling)

    def get_config(self) -> dict:
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "anneal": self.anneal,
            "name": self.name,
        }
