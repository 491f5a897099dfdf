"""Reduce the learning rate when a metric stops improving, also on top of a schedule."""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import numpy as np

from lab.callbacks.conflicts import warn_on_conflicts
from lab.callbacks.learning_rate import (
    base_optimizer,
    current_learning_rate,
    learning_rate_schedule,
    model_optimizers,
    retrace_train_function,
)
from lab.checks import check_choice, check_non_negative
from lab.schedules import Scaled


class LearningRateChange(NamedTuple):
    """One reduction: the epoch (0-based) at whose end it happened, the rate before and after."""

    epoch: int
    old: float
    new: float


@keras.saving.register_keras_serializable(package="lab")
class ReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    With ``best`` the best monitored value so far and ``current`` this epoch's, an epoch improves
    (``mode="min"``; mirrored for ``"max"``) when

        threshold_mode="abs":  current < best - min_delta          (Keras; the default)
        threshold_mode="rel":  current < best * (1 - min_delta)    (PyTorch's default)

    After ``patience`` epochs without improvement (and outside ``cooldown``):

        lr <- max(lr * factor, min_lr)        if lr > min_lr

    A drop-in for ``keras.callbacks.ReduceLROnPlateau``: same arguments, defaults and meaning;
    with ``threshold_mode="abs"`` (the default, because Keras's ``min_delta`` is absolute) the
    sequence of learning rates is exactly Keras's. ``learning_rate`` is written into the epoch
    logs (as Keras does: the optimizer's rate at the end of the epoch, before a reduction), and
    every reduction is recorded in ``changes`` (also ``history``) as
    ``LearningRateChange(epoch, old, new)``.

    On top of a schedule: Keras's callback fails when the optimizer's ``learning_rate`` is a
    ``LearningRateSchedule``. This one wraps the schedule once, at the start of training, in
    ``lab.schedules.Scaled`` (reusing a ``Scaled`` that is already there) and lowers its ``scale``,
    so the schedule keeps its shape and is multiplied by ``factor`` at every reduction; the
    factor is part of the optimizer's config, so it is saved with the model. ``min_lr`` then
    bounds the rate at the moment of the reduction (the schedule may decay below it later). On
    JAX the train function is traced again after each change of ``scale`` so it takes effect.

    Args:
        monitor: quantity to monitor (default ``"val_loss"``).
        factor: float in [0, 1), the multiplier of a reduction (default 0.1).
        patience: int >= 0, epochs without improvement before a reduction (default 10).
        verbose: 0 quiet, 1 prints a message at each reduction (Keras's behaviour).
        mode: ``"auto"``, ``"min"`` or ``"max"`` (default ``"auto"``).
        min_delta: float >= 0, the improvement threshold (default 1e-4), read as set by
            ``threshold_mode``.
        cooldown: int >= 0, epochs to wait after a reduction before counting again (default 0).
        min_lr: float >= 0, lower bound on the learning rate (default 0).
        threshold_mode: ``"abs"`` (default, Keras) or ``"rel"`` (PyTorch's relative threshold).

    Reference: Keras ``ReduceLROnPlateau``; PyTorch ``torch.optim.lr_scheduler.ReduceLROnPlateau``
    (``threshold_mode``).
    """

    sets_learning_rate = True
    checks_learning_rate_conflicts = True

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        threshold_mode: str = "abs",
        **kwargs: Any,
    ) -> None:
        check_non_negative("factor", factor)
        check_non_negative("min_lr", min_lr)
        super().__init__(
            monitor=monitor,
            factor=factor,
            patience=patience,
            verbose=verbose,
            mode=mode,
            min_delta=min_delta,
            cooldown=cooldown,
            min_lr=min_lr,
            **kwargs,
        )
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, ("abs", "rel"))
        self.changes: list[LearningRateChange] = []
        self._needs_retrace = False

    @property
    def history(self) -> list[LearningRateChange]:
        """Every reduction so far (the same list as ``changes``)."""
        return self.changes

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        warn_on_conflicts(self)
        wrapped = False
        for optimizer in model_optimizers(self.model):
            wrapped |= _wrap_schedule(optimizer)
        if wrapped:
            # A train function traced before the wrap would keep the bare schedule.
            retrace_train_function(self.model)

    def _is_improvement(self, monitor_value: Any, reference_value: Any) -> bool:
        if self.threshold_mode == "abs" or reference_value is None:
            return super()._is_improvement(monitor_value, reference_value)
        delta = abs(self.min_delta)
        current = float(monitor_value)
        best = float(reference_value)
        if self.monitor_op is keras.ops.less:
            return current < best * (1.0 - delta)
        return current > best * (1.0 + delta)

    def _reduce_optimizer_lr(self, optimizer: Any, epoch: int, name: str = "") -> bool:
        old_lr = current_learning_rate(optimizer)
        schedule = learning_rate_schedule(optimizer)
        if schedule is not None and not isinstance(schedule, Scaled):
            _wrap_schedule(optimizer)  # an optimizer swapped in after the start of training
            schedule = learning_rate_schedule(optimizer)
            self._needs_retrace = True
        if schedule is None:
            reduced = super()._reduce_optimizer_lr(optimizer, epoch, name)
            if reduced:
                self.changes.append(
                    LearningRateChange(epoch, old_lr, current_learning_rate(optimizer))
                )
            return reduced
        if not old_lr > np.float32(self.min_lr):
            return False
        scale = float(keras.ops.convert_to_numpy(schedule.scale.value))
        new_lr = old_lr * self.factor
        new_scale = scale * self.factor
        if new_lr < self.min_lr:
            new_scale = scale * self.min_lr / old_lr
            new_lr = self.min_lr
        schedule.scale.assign(new_scale)
        self._needs_retrace = True
        self.changes.append(LearningRateChange(epoch, old_lr, new_lr))
        if self.verbose > 0:
            label = f" {name}" if name else ""
            keras.utils.io_utils.print_msg(
                f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing{label} learning rate to "
                f"{new_lr} (schedule scale {new_scale:.6g})."
            )
        return True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        if self._needs_retrace:
            self._needs_retrace = False
            if keras.backend.backend() == "jax":
                retrace_train_function(self.model)

    def get_config(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "factor": self.factor,
            "patience": self.patience,
            "verbose": self.verbose,
            "mode": self.mode,
            "min_delta": abs(self.min_delta),
            "cooldown": self.cooldown,
            "min_lr": self.min_lr,
            "threshold_mode": self.threshold_mode,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ReduceLROnPlateau":
        return cls(**config)


def _wrap_schedule(optimizer: keras.optimizers.Optimizer) -> bool:
    """Put the optimizer's schedule inside ``Scaled`` unless it is one; True if it wrapped."""
    schedule = learning_rate_schedule(optimizer)
    if schedule is None or isinstance(schedule, Scaled):
        return False
    base_optimizer(optimizer).learning_rate = Scaled(schedule)
    return True
