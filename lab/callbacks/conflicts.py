"""Detection of callbacks that would fight over the learning rate.

Two callbacks that both set the learning rate of the same optimizer undo each other: a
``LearningRateScheduler`` sets it again at every epoch start, so a plateau reducer's cut lasts one
epoch at most; two reducers cut twice for one plateau. Every lab callback that sets the learning
rate (and ``TrainingDiagnostics``) checks its sibling callbacks at the start of training and
warns (``warnings.warn``, ``LearningRateConflictWarning``), naming all of them.

A callback sets the learning rate if it is a Keras ``LearningRateScheduler`` or
``ReduceLROnPlateau`` (the lab's subclasses included), or if it has a true class attribute
``sets_learning_rate`` (the lab's ``LRFinder`` does; third-party callbacks can opt in).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable

import keras

_KERAS_SETTERS = (keras.callbacks.LearningRateScheduler, keras.callbacks.ReduceLROnPlateau)


class LearningRateConflictWarning(UserWarning):
    """Two or more callbacks of one ``fit`` set the same optimizer's learning rate."""


def sets_learning_rate(callback: keras.callbacks.Callback) -> bool:
    """Whether ``callback`` changes the optimizer's learning rate during training."""
    return isinstance(callback, _KERAS_SETTERS) or bool(
        getattr(callback, "sets_learning_rate", False)
    )


def _describe(callback: keras.callbacks.Callback) -> str:
    cls = type(callback)
    return f"{cls.__module__}.{cls.__qualname__}"


def learning_rate_conflicts(
    callbacks: Iterable[keras.callbacks.Callback],
) -> list[keras.callbacks.Callback]:
    """The callbacks that set the learning rate, when there are two or more; else ``[]``.

    All callbacks of one ``fit`` act on the same model, hence on the same optimizer.
    """
    setters = [callback for callback in callbacks if sets_learning_rate(callback)]
    return setters if len(setters) > 1 else []


def conflict_message(setters: list[keras.callbacks.Callback]) -> str:
    names = ", ".join(_describe(callback) for callback in setters)
    return (
        f"{len(setters)} callbacks set the learning rate of the same optimizer: {names}. "
        "They will override each other (a LearningRateScheduler resets the rate at every epoch, "
        "undoing a plateau reduction). Keep one, or put the schedule in the optimizer "
        "(learning_rate=<a LearningRateSchedule>) and let the plateau callback scale it."
    )


def _sibling_callbacks(callback: keras.callbacks.Callback) -> list | None:
    """The callbacks of the ``CallbackList`` that is calling ``callback`` right now, if any.

    Keras gives a callback no reference to its siblings; the ``CallbackList`` that dispatches
    ``on_train_begin`` is the caller a few frames up the stack.
    """
    frame = sys._getframe(1)
    for _ in range(8):
        if frame is None:
            break
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList) and any(
            item is callback for item in owner.callbacks
        ):
            return list(owner.callbacks)
        frame = frame.f_back
    return None


def warn_on_conflicts(callback: keras.callbacks.Callback) -> list[keras.callbacks.Callback]:
    """Called from ``on_train_begin``: warn if ``callback``'s siblings fight over the rate.

    Several lab callbacks run this check (those with a true ``checks_learning_rate_conflicts``);
    only the first of them in the list warns, so one conflict gives one warning. Returns the
    conflicting callbacks (``[]`` when there is no conflict).
    """
    siblings = _sibling_callbacks(callback)
    if siblings is None:
        return []
    setters = learning_rate_conflicts(siblings)
    checkers = [item for item in siblings if getattr(item, "checks_learning_rate_conflicts", False)]
    if setters and checkers and checkers[0] is callback:
        warnings.warn(conflict_message(setters), LearningRateConflictWarning, stacklevel=3)
    return setters
