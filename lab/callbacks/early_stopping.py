"""Stop training when a metric stops improving; restore the best weights and optimizer state."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lab.callbacks.learning_rate import learning_rate_schedule, model_optimizers, retrace_train_function
from lab.schedules import Scaled


@keras.saving.register_keras_serializable(package="lab")
class EarlyStopping(keras.callbacks.EarlyStopping):
    """Stop when the monitored quantity has not improved for ``patience`` epochs.

    An epoch improves (``mode="min"``; mirrored for ``"max"``) when

        current < best - min_delta

    and training stops at the end of the epoch where ``wait >= patience`` (``wait`` counts the
    epochs since the last improvement, including this one). A drop-in for
    ``keras.callbacks.EarlyStopping``: every argument, default and meaning is Keras's, plus:

    - ``restore_best_weights=True`` restores the weights of the best epoch at the end of training
      whether training stopped early or ran to its last epoch;
    - ``restore_optimizer_state=True`` (needs ``restore_best_weights``) also restores every
      optimizer variable -- moments, iteration count, a float learning rate -- and the factor of a
      ``lab.schedules.Scaled`` learning rate (what ``ReduceLROnPlateau`` lowers on a schedule) as
      they were at the end of the best epoch, so training can resume exactly from there. The
      snapshot is held in memory (NumPy copies), nothing is written to disk;
    - ``best_epoch`` (0-based), ``best`` (the monitored value there) and ``stopped_epoch``
      (0-based, 0 when training did not stop early) are exposed after training.

    Args:
        monitor: quantity to monitor (default ``"val_loss"``).
        min_delta: float >= 0, the smallest change that counts as an improvement (default 0).
        patience: int >= 0, epochs without improvement before stopping (default 0).
        verbose: 0 quiet, 1 prints when it stops and restores.
        mode: ``"auto"``, ``"min"`` or ``"max"`` (default ``"auto"``).
        baseline: a value the quantity must beat, or ``None`` (default).
        restore_best_weights: restore the best epoch's weights at the end (default False).
        start_from_epoch: int >= 0, epochs of warm-up before monitoring starts (default 0).
        restore_optimizer_state: also restore the optimizer's variables (default False).

    Reference: Keras ``EarlyStopping``; Prechelt, "Early Stopping -- But When?" (1998).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
        restore_optimizer_state: bool = False,
    ) -> None:
        if restore_optimizer_state and not restore_best_weights:
            raise ValueError(
                "`restore_optimizer_state=True` needs `restore_best_weights=True`: the "
                "optimizer state is only meaningful with the weights it belongs to."
            )
        super().__init__(
            monitor=monitor,
            min_delta=min_delta,
            patience=patience,
            verbose=verbose,
            mode=mode,
            baseline=baseline,
            restore_best_weights=restore_best_weights,
            start_from_epoch=start_from_epoch,
        )
        self.restore_optimizer_state = bool(restore_optimizer_state)
        self.best_optimizer_state: list[list[np.ndarray]] | None = None
        self.best_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        self.best_optimizer_state = None
        self.best_scales: list[tuple[Scaled, float]] = []

    def _snapshot(self, epoch: int) -> None:
        self.best_epoch = epoch
        if self.restore_best_weights:
            self.best_weights = self.model.get_weights()
        if self.restore_optimizer_state:
            self.best_optimizer_state = [
                [np.array(keras.ops.convert_to_numpy(v.value)) for v in optimizer.variables]
                for optimizer in model_optimizers(self.model)
            ]
            self.best_scales = [
                (scaled, float(keras.ops.convert_to_numpy(scaled.scale.value))) for scaled in self._scaled_schedules()
            ]

    def _scaled_schedules(self) -> list[Scaled]:
        """The ``Scaled`` learning rates of the model's optimizers: a plateau callback's factor
        lives there, outside the optimizer's variables, and belongs to its state all the same."""
        schedules = [learning_rate_schedule(optimizer) for optimizer in model_optimizers(self.model)]
        return [schedule for schedule in schedules if isinstance(schedule, Scaled)]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # Keras's logic, with the snapshot taken in one place (weights and optimizer together).
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self._snapshot(epoch)  # before any improvement, the current state is the best
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self._snapshot(epoch)
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            keras.utils.io_utils.print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if not self.restore_best_weights or self.best_weights is None:
            return
        if self.verbose > 0:
            keras.utils.io_utils.print_msg(
                f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}."
            )
        self.model.set_weights(self.best_weights)
        if self.best_optimizer_state is not None:
            for optimizer, values in zip(model_optimizers(self.model), self.best_optimizer_state):
                for variable, value in zip(optimizer.variables, values):
                    variable.assign(value)
            changed = [(scaled, scale) for scaled, scale in self.best_scales
                       if float(keras.ops.convert_to_numpy(scaled.scale.value)) != scale]
            for scaled, scale in changed:
                scaled.scale.assign(scale)
            if changed:
                retrace_train_function(self.model)  # JAX bakes the factor into the traced step

    def get_config(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "min_delta": abs(self.min_delta),
            "patience": self.patience,
            "verbose": self.verbose,
            "mode": self.mode,
            "baseline": self.baseline,
            "restore_best_weights": self.restore_best_weights,
            "start_from_epoch": self.start_from_epoch,
            "restore_optimizer_state": self.restore_optimizer_state,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "EarlyStopping":
        return cls(**config)
