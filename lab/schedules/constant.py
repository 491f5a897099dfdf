"""A constant learning rate as a schedule."""

from __future__ import annotations

import keras
from keras import ops

from lab.checks import check_non_negative
from lab.schedules.base import Schedule, as_float_step


@keras.saving.register_keras_serializable(package="lab")
class Constant(Schedule):
    """The same learning rate at every step.

        lr(t) = learning_rate

    Useful as a piece of a :class:`Sequential` schedule, under :class:`Scaled`, and as the
    baseline curve of a schedule comparison.

    Args:
        learning_rate: float >= 0.
        name: optional name; defaults to ``"Constant"``.

    Reference: PyTorch ``torch.optim.lr_scheduler.ConstantLR`` with ``factor=1``.
    """

    def __init__(self, learning_rate: float, name: str | None = None) -> None:
        super().__init__()
        self.learning_rate = check_non_negative("learning_rate", learning_rate)
        self.name = name or "Constant"

    def __call__(self, step):
        step = as_float_step(step)
        return ops.zeros_like(step) + self.learning_rate

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "name": self.name}
