"""Decay by a constant factor, in drops (StepDecay) or continuously (ExponentialDecay), and as
1/t (InverseTimeDecay)."""

from __future__ import annotations

import keras
from keras import ops

from lab.checks import check_non_negative, check_positive, check_positive_int
from lab.schedules.base import Schedule, as_float_step


@keras.saving.register_keras_serializable(package="lab")
class StepDecay(Schedule):
    """Multiply the learning rate by ``decay_rate`` every ``decay_steps`` steps.

        lr(t) = lr0 · decay_rate^⌊t / decay_steps⌋

    Args:
        initial_learning_rate: lr0, float >= 0.
        decay_rate: the factor per drop, float > 0 (0.5 halves the rate; PyTorch's ``gamma``).
        decay_steps: steps between drops, integer >= 1 (PyTorch's ``step_size``).
        name: optional name; defaults to ``"StepDecay"``.

    Reference: PyTorch ``torch.optim.lr_scheduler.StepLR``; the step decay of the notebooks
    (``initial_lr * drop ** (epoch // epochs_drop)``).
    """

    STEP_ARGUMENTS = ("decay_steps",)

    def __init__(
        self,
        initial_learning_rate: float,
        decay_rate: float,
        decay_steps: int,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.initial_learning_rate = check_non_negative(
            "initial_learning_rate", initial_learning_rate
        )
        self.decay_rate = check_positive("decay_rate", decay_rate)
        self.decay_steps = check_positive_int("decay_steps", decay_steps)
        self.name = name or "StepDecay"

    def __call__(self, step):
        drops = ops.floor(as_float_step(step) / float(self.decay_steps))
        return self.initial_learning_rate * ops.power(ops.cast(self.decay_rate, "float32"), drops)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_rate": self.decay_rate,
            "decay_steps": self.decay_steps,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="lab")
class ExponentialDecay(Schedule):
    """Exponential decay; a drop-in for ``keras.optimizers.schedules.ExponentialDecay``.

        lr(t) = lr0 · decay_rate^(t / decay_steps)        (staircase=False)
        lr(t) = lr0 · decay_rate^⌊t / decay_steps⌋        (staircase=True, = StepDecay)

    Same arguments, defaults and meaning as Keras's class, plus the lab's argument checks.

    Args:
        initial_learning_rate: lr0, float >= 0.
        decay_steps: integer >= 1; the rate is multiplied by ``decay_rate`` every ``decay_steps``.
        decay_rate: float > 0.
        staircase: if True, decay in discrete drops.
        name: optional name; defaults to ``"ExponentialDecay"``.

    Reference: ``keras.optimizers.schedules.ExponentialDecay``; PyTorch ``ExponentialLR`` is the
    case ``decay_steps=1``; the notebooks' ``initial_lr * decay_rate ** epoch``.
    """

    STEP_ARGUMENTS = ("decay_steps",)

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "ExponentialDecay",
    ) -> None:
        super().__init__()
        self.initial_learning_rate = check_non_negative(
            "initial_learning_rate", initial_learning_rate
        )
        self.decay_steps = check_positive_int("decay_steps", decay_steps)
        self.decay_rate = check_positive("decay_rate", decay_rate)
        if not isinstance(staircase, bool):
            raise ValueError(f"`staircase` must be True or False, got {staircase!r}.")
        self.staircase = staircase
        self.name = name or "ExponentialDecay"

    def __call__(self, step):
        exponent = as_float_step(step) / float(self.decay_steps)
        if self.staircase:
            exponent = ops.floor(exponent)
        decay_rate = ops.cast(self.decay_rate, "float32")
        return self.initial_learning_rate * ops.power(decay_rate, exponent)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="lab")
class InverseTimeDecay(Schedule):
    """Inverse-time decay; a drop-in for ``keras.optimizers.schedules.InverseTimeDecay``.

        lr(t) = lr0 / (1 + decay_rate · t / decay_steps)          (staircase=False)
        lr(t) = lr0 / (1 + decay_rate · ⌊t / decay_steps⌋)        (staircase=True)

    The 1/t decay of stochastic approximation (Robbins and Monro): the rate halves once
    ``decay_rate · t / decay_steps`` reaches 1 and then falls ever more slowly. Same arguments,
    defaults and meaning as Keras's class, plus the lab's checks.

    Args:
        initial_learning_rate: lr0, float >= 0.
        decay_steps: integer >= 1.
        decay_rate: float >= 0 (0 is a constant rate).
        staircase: if True, decay in discrete drops.
        name: optional name; defaults to ``"InverseTimeDecay"``.

    Reference: ``keras.optimizers.schedules.InverseTimeDecay``.
    """

    STEP_ARGUMENTS = ("decay_steps",)

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "InverseTimeDecay",
    ) -> None:
        super().__init__()
        self.initial_learning_rate = check_non_negative("initial_learning_rate", initial_learning_rate)
        self.decay_steps = check_positive_int("decay_steps", decay_steps)
        self.decay_rate = check_non_negative("decay_rate", decay_rate)
        if not isinstance(staircase, bool):
            raise ValueError(f"`staircase` must be True or False, got {staircase!r}.")
        self.staircase = staircase
        self.name = name or "InverseTimeDecay"

    def __call__(self, step):
        progress = as_float_step(step) / float(self.decay_steps)
        if self.staircase:
            progress = ops.floor(progress)
        return self.initial_learning_rate / (1.0 + self.decay_rate * progress)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }
