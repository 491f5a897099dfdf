"""Reduce the learning rate when a metric stops improving, also on top of a schedule."""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import numpy as np

from lab import internals
from lab.callbacks.learning_rate import (
    base_optimizer,
    current_learning_rate,
    learning_rate_schedule,
    model_optimizers,
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

    Keras's class, extended in two hooks: ``_is_improvement`` (``threshold_mode``) and
    ``_reduce_optimizer_lr`` (schedules, and the record of ``changes``). Same arguments, defaults,
    counting and logs (``learning_rate``, the rate at the end of the epoch before a reduction);
    with ``threshold_mode="abs"`` the rates are exactly Keras's. Every reduction is appended to
    ``changes`` as ``LearningRateChange(epoch, old, new)``.

    On purpose unlike Keras, which raises when the optimizer's ``learning_rate`` is a
    ``LearningRateSchedule``: on a schedule, this one wraps it once in ``lab.schedules.Scaled``
    (reusing a ``Scaled`` already there) and multiplies its ``scale`` by ``factor``, so the schedule
    keeps its shape; ``min_lr`` bounds the rate at the moment of a reduction (the schedule may
    decay below it later). During ``fit`` the scale is one of the optimizer's variables, so the
    compiled train step takes it as an argument on every backend: a reduction (or
    ``EarlyStopping`` restoring the optimizer state, or a checkpoint restored into the model)
    takes effect at the next epoch with nothing traced again. At the end of ``fit`` it leaves the
    optimizer's variables again, so the optimizer has exactly the variables a freshly built one
    has and ``model.save()`` / ``load_model`` round-trip; the scale is saved in the schedule's
    config. (A full-model checkpoint written *during* ``fit`` holds the scale twice, in the config
    and as one extra optimizer variable; Keras's ``load_model`` then restores the scale from the
    config and skips the optimizer's other variables, with a warning.)

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
    (``threshold_mode``); optax ``contrib.reduce_on_plateau`` (the scale in the optimizer state).
    """

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
        super().__init__(monitor=monitor, factor=factor, patience=patience, verbose=verbose,
                         mode=mode, min_delta=min_delta, cooldown=cooldown, min_lr=min_lr, **kwargs)
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, ("abs", "rel"))
        self.changes: list[LearningRateChange] = []
        self._tracked: list[tuple[keras.optimizers.Optimizer, keras.Variable]] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        wrapped = False
        for optimizer in model_optimizers(self.model):
            owner = base_optimizer(optimizer)
            schedule = learning_rate_schedule(owner)
            if schedule is None:
                continue
            if not isinstance(schedule, Scaled):
                schedule = owner.learning_rate = Scaled(schedule)
                wrapped = True
            if not any(variable is schedule.scale for variable in owner.variables):
                internals.track_variable(owner, schedule.scale)
                self._tracked.append((owner, schedule.scale))
        if wrapped:
            # A train function traced before the wrap would keep the bare schedule; one made by
            # this fit is not traced yet, so nothing is lost for a model that never trained.
            self.model.make_train_function(force=True)

    def on_train_end(self, logs: dict | None = None) -> None:
        for optimizer, variable in self._tracked:
            internals.untrack_variable(optimizer, variable)
        self._tracked = []

    def _is_improvement(self, monitor_value: Any, reference_value: Any) -> bool:
        if self.threshold_mode == "abs" or reference_value is None:
            return internals.plateau_is_improvement(super(), monitor_value, reference_value)
        delta, current, best = abs(self.min_delta), float(monitor_value), float(reference_value)
        if self.monitor_op is keras.ops.less:
            return current < best * (1.0 - delta)
        return current > best * (1.0 + delta)

    def _reduce_optimizer_lr(self, optimizer: Any, epoch: int, name: str = "") -> bool:
        old_lr = current_learning_rate(optimizer)
        schedule = learning_rate_schedule(optimizer)
        if schedule is None:
            reduced = internals.plateau_reduce_learning_rate(super(), optimizer, epoch, name)
        elif reduced := old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            scale = float(keras.ops.convert_to_numpy(schedule.scale.value))
            schedule.scale.assign(scale * new_lr / old_lr)
            if self.verbose > 0:
                label = f" {name}" if name else ""
                internals.print_message(
                    f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing{label} learning rate to "
                    f"{new_lr} (schedule scale {scale * new_lr / old_lr:.6g})."
                )
        if reduced:
            self.changes.append(LearningRateChange(epoch, old_lr, current_learning_rate(optimizer)))
        return reduced

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
