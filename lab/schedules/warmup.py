"""A linear warm-up, alone or in front of any schedule."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule, deserialize, serialize

from lab.checks import check_non_negative
from lab.schedules.base import Schedule, as_float_step, check_non_negative_int, describe


@keras.saving.register_keras_serializable(package="lab")
class LinearWarmup(Schedule):
    """Rise linearly from ``initial_learning_rate`` to a target over W steps, then follow it.

        peak = target                      (a number; the rate stays there)
        peak = target(0)                   (a schedule; it runs after the warm-up)
        lr(t) = lr_init + (peak − lr_init) · t / W        for t < W
        lr(t) = target(t − W)                              for t >= W

    A schedule given as the target starts from its own step 0 when the warm-up ends, so
    ``LinearWarmup(CosineAnnealing(0.1, 900), 100)`` warms up over 100 steps and then anneals
    over 900 (as PyTorch's ``SequentialLR([LinearLR, ...], milestones=[W])``). ``W = 0`` is the
    target itself.

    Args:
        target: a float >= 0 or a ``LearningRateSchedule`` (lab or Keras).
        warmup_steps: W, integer >= 0.
        initial_learning_rate: lr_init, the value at step 0, float >= 0 (default 0).
        name: optional name; defaults to ``"LinearWarmup"``.

    Reference: Goyal et al., 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour"
    (https://arxiv.org/abs/1706.02677); PyTorch ``LinearLR(start_factor=lr_init/peak,
    end_factor=1, total_iters=W)``.
    """

    STEP_ARGUMENTS = ("warmup_steps",)

    def __init__(
        self,
        target: float | LearningRateSchedule,
        warmup_steps: int,
        initial_learning_rate: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(target, dict):
            target = deserialize(target)
        if not isinstance(target, LearningRateSchedule):
            target = check_non_negative("target", target)
        self.target = target
        self.warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
        self.initial_learning_rate = check_non_negative("initial_learning_rate", initial_learning_rate)
        self.name = name or "LinearWarmup"

    def _target(self, step: Any) -> Any:
        if isinstance(self.target, LearningRateSchedule):
            return ops.cast(self.target(step), "float32")
        return ops.zeros_like(step) + self.target

    def __call__(self, step):
        step = as_float_step(step)
        warmup = float(self.warmup_steps)
        after = self._target(ops.maximum(step - warmup, 0.0))
        if self.warmup_steps == 0:
            return after
        peak = self._target(ops.zeros_like(step))
        rising = self.initial_learning_rate + (peak - self.initial_learning_rate) * step / warmup
        return ops.where(step < warmup, rising, after)

    def get_config(self) -> dict:
        target = serialize(self.target) if isinstance(self.target, LearningRateSchedule) else self.target
        return {
            "target": target,
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
            "name": self.name,
        }

    def __repr__(self) -> str:
        target = describe(self.target) if isinstance(self.target, LearningRateSchedule) else repr(self.target)
        return (
            f"LinearWarmup(target={target}, warmup_steps={self.warmup_steps}, "
            f"initial_learning_rate={self.initial_learning_rate!r})"
        )
