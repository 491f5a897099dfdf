"""Stop training when a metric stops improving; restore the best weights and optimizer state."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lab.callbacks.learning_rate import model_optimizers


@keras.saving.register_keras_serializable(package="lab")
class EarlyStopping(keras.callbacks.EarlyStopping):
    """Stop when the monitored quantity has not improved for ``patience`` epochs.

    An epoch improves (``mode="min"``; mirrored for ``"max"``) when

        current < best - min_delta

    and training stops at the end of the epoch where ``wait >= patience`` (``wait`` counts the
    epochs since the last improvement, including this one). Keras's class: every argument,
    default, decision and message is Keras's; Keras (3.15) also restores the best weights when
    training runs to its last epoch, and exposes ``best_epoch``, ``best`` and ``stopped_epoch``
    (0-based; 0 when training did not stop early). Added:

    - ``restore_optimizer_state=True`` (needs ``restore_best_weights``) also restores every
      optimizer variable as it was at the end of the best epoch: moments, iteration count, a float
      learning rate, and the scale ``ReduceLROnPlateau`` lowers on a schedule (one of the
      optimizer's variables during ``fit``), so training can resume exactly from there. The
      snapshot is taken whenever Keras snapshots the best weights (NumPy copies in memory).

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
        self.restore_optimizer_state = bool(restore_optimizer_state)
        self.best_optimizer_state: list[tuple[keras.Variable, np.ndarray]] | None = None
        super().__init__(monitor=monitor, min_delta=min_delta, patience=patience, verbose=verbose,
                         mode=mode, baseline=baseline, restore_best_weights=restore_best_weights,
                         start_from_epoch=start_from_epoch)

    @property
    def best_weights(self) -> list | None:
        return self._best_weights

    @best_weights.setter
    def best_weights(self, weights: list | None) -> None:
        """Keras sets this at every snapshot; the optimizer's state is copied at the same moment."""
        self._best_weights = weights
        self.best_optimizer_state = None
        if weights is not None and self.restore_optimizer_state:
            self.best_optimizer_state = [
                (variable, np.array(keras.ops.convert_to_numpy(variable.value), copy=True))
                for optimizer in model_optimizers(self.model) for variable in optimizer.variables
            ]

    def on_train_end(self, logs: dict | None = None) -> None:
        super().on_train_end(logs)
        if self.restore_best_weights and self.best_weights is not None:
            for variable, value in self.best_optimizer_state or ():
                variable.assign(value)

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
