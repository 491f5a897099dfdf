"""Callbacks that would fight over the learning rate, checked where the callback list is known.

Two callbacks that both set the learning rate of the same optimizer undo each other: a
``LearningRateScheduler`` sets it again at every epoch start, so a plateau reducer's cut lasts one
epoch at most; two reducers cut twice for one plateau. Keras gives a callback no view of its
siblings, so the check runs where the list is at hand: :func:`check_callbacks`, which a user calls
before ``fit`` and the lab's own entry points call (``find_lr``, ``experiments.training.train_run``,
and through it the grid runner). It warns (``LearningRateConflictWarning``), naming all of them.

A callback sets the learning rate if it is a Keras ``LearningRateScheduler`` or
``ReduceLROnPlateau`` (the lab's subclasses included), or if it has a true class attribute
``sets_learning_rate`` (the lab's ``LRFinder`` does; third-party callbacks can opt in).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import keras

_KERAS_SETTERS = (keras.callbacks.LearningRateScheduler, keras.callbacks.ReduceLROnPlateau)


class LearningRateConflictWarning(UserWarning):
    """Two or more callbacks of one ``fit`` set the same optimizer's learning rate."""


def sets_learning_rate(callback: keras.callbacks.Callback) -> bool:
    """Whether ``callback`` changes the optimizer's learning rate during training."""
    return isinstance(callback, _KERAS_SETTERS) or bool(getattr(callback, "sets_learning_rate", False))


def learning_rate_conflicts(
    callbacks: Iterable[keras.callbacks.Callback],
) -> list[keras.callbacks.Callback]:
    """The callbacks that set the learning rate, when there are two or more; else ``[]``.

    All callbacks of one ``fit`` act on the same model, hence on the same optimizer.
    """
    setters = [callback for callback in callbacks if sets_learning_rate(callback)]
    return setters if len(setters) > 1 else []


def check_callbacks(
    callbacks: Iterable[keras.callbacks.Callback],
) -> list[keras.callbacks.Callback]:
    """Warn if the callbacks of one ``fit`` fight over the learning rate; return the culprits."""
    setters = learning_rate_conflicts(callbacks)
    if setters:
        names = ", ".join(f"{type(c).__module__}.{type(c).__qualname__}" for c in setters)
        warnings.warn(
            f"{len(setters)} callbacks set the learning rate of the same optimizer: {names}. "
            "They will override each other (a LearningRateScheduler resets the rate at every "
            "epoch, undoing a plateau reduction). Keep one, or put the schedule in the optimizer "
            "(learning_rate=<a LearningRateSchedule>) and let the plateau callback scale it.",
            LearningRateConflictWarning,
            stacklevel=2,
        )
    return setters
