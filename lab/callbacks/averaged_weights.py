"""Evaluate (and save) the averaged weights an optimizer keeps, train on the raw ones."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from lab import internals
from lab.callbacks.learning_rate import base_optimizer, model_optimizers


def evaluation_weights(optimizer: keras.optimizers.Optimizer, variables: list) -> list:
    """The values to evaluate ``variables`` (the model's trainable variables) with.

    An optimizer that keeps an averaged iterate says so with a method
    ``evaluation_weights(variables) -> list`` (the lab's protocol: one value per variable, in
    order); Keras's ``use_ema=True`` keeps an exponential moving average, one per variable the
    optimizer was built with.
    """
    optimizer = base_optimizer(optimizer)
    if keeps_averaged_iterate(optimizer):
        return list(optimizer.evaluation_weights(variables))
    if getattr(optimizer, "use_ema", False):
        averages = [internals.moving_average(optimizer, variable) for variable in variables]
        if all(average is not None for average in averages):
            return averages
    raise ValueError(
        "AveragedWeights needs an optimizer that keeps averaged weights: `use_ema=True` (any "
        "Keras optimizer) or an `evaluation_weights(variables)` method (schedule-free ones)."
    )


def keeps_averaged_iterate(optimizer: keras.optimizers.Optimizer) -> bool:
    """Whether ``optimizer`` is meant to be evaluated at an averaged iterate of its own (an
    ``evaluation_weights`` method: the schedule-free optimizers), not at the weights it trains."""
    return hasattr(base_optimizer(optimizer), "evaluation_weights")


@contextlib.contextmanager
def evaluated_weights_in(model: keras.Model) -> Iterator[None]:
    """Inside: the weights the model's optimizer is evaluated at: its averaged iterate where it
    keeps one (``averaged_weights_in``), else the model's own weights, untouched."""
    optimizers = model_optimizers(model)
    if len(optimizers) == 1 and keeps_averaged_iterate(optimizers[0]):
        with averaged_weights_in(model):
            yield
    else:
        yield


@contextlib.contextmanager
def averaged_weights_in(model: keras.Model) -> Iterator[None]:
    """Inside: the model's trainable variables hold its optimizer's ``evaluation_weights``; after:
    the raw values again, copied before the swap (so training never sees the averages)."""
    variables = model.trainable_variables
    (optimizer,) = model_optimizers(model)
    averages = evaluation_weights(optimizer, variables)
    raw = [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in variables]
    for variable, value in zip(variables, averages):
        variable.assign(keras.ops.convert_to_numpy(value))
    try:
        yield
    finally:
        for variable, value in zip(variables, raw):
            variable.assign(value)


@keras.saving.register_keras_serializable(package="lab")
class AveragedWeights(keras.callbacks.Callback):
    """Evaluate, predict and save with the optimizer's averaged weights; train with the raw ones.

        evaluation:  w <- w_avg  before every evaluate / predict (validation inside fit too),
                     w <- w_raw  after it

    where w_avg is Keras's exponential moving average (``use_ema=True``: a_t = m a_{t-1} +
    (1 - m) w_t, ``ema_momentum`` m) or the averaged iterate of an optimizer with an
    ``evaluation_weights(variables)`` method (schedule-free optimizers: the x sequence at which
    the gradient is not taken). Training never sees the averages: the raw weights are copied
    before the swap (in memory) and put back after it. This is Keras's ``SwapEMAWeights``
    generalised to any averaged iterate; unlike it, nothing is written into the optimizer's
    average, so it also works for optimizers whose average is not a plain copy.

    With ``filepath`` the averaged weights are also saved at the end of every epoch:
    ``model.save_weights`` for a name ending in ``.weights.h5``, ``model.save`` otherwise; the
    name may hold ``{epoch}`` (1-based), as in Keras's ``ModelCheckpoint``.

    Args:
        filepath: where to save the averaged weights each epoch, or ``None`` (default).

    Reference: Polyak & Juditsky, "Acceleration of stochastic approximation by averaging"
    (1992); Izmailov et al., "Averaging Weights Leads to Wider Optima" (SWA, 2018); Defazio et
    al., "The Road Less Scheduled" (2024); Keras ``SwapEMAWeights``.
    """

    def __init__(self, filepath: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.filepath = None if filepath is None else os.fspath(filepath)
        self._swapped: contextlib.ExitStack | None = None

    def _swap_in(self) -> None:
        if self._swapped is not None:
            return
        self._swapped = contextlib.ExitStack()
        self._swapped.enter_context(averaged_weights_in(self.model))

    def _swap_out(self) -> None:
        if self._swapped is None:
            return
        swapped, self._swapped = self._swapped, None
        swapped.close()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._swap_in()

    def on_test_end(self, logs: dict | None = None) -> None:
        self._swap_out()

    on_predict_begin, on_predict_end = on_test_begin, on_test_end

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.filepath is None:
            return
        path = self.filepath.format(epoch=epoch + 1)
        self._swap_in()
        try:
            if path.endswith(".weights.h5"):
                self.model.save_weights(path, overwrite=True)
            else:
                self.model.save(path, overwrite=True)
        finally:
            self._swap_out()

    def get_config(self) -> dict[str, Any]:
        return {"filepath": self.filepath}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "AveragedWeights":
        return cls(**config)
