"""Callbacks fighting over the learning rate are reported at the start of training."""

from __future__ import annotations

import warnings

import keras
import pytest

from callbacks import (
    EarlyStopping,
    LearningRateConflictWarning,
    LRFinder,
    ReduceLROnPlateau,
    learning_rate_conflicts,
)
from tests.callbacks.helpers import linear_model, regression

pytestmark = pytest.mark.backend_agnostic


def _fit(callbacks):
    x, y = regression()
    model = linear_model(keras.optimizers.SGD(learning_rate=1e-3))
    model.fit(x, y, batch_size=len(x), epochs=2, verbose=0, callbacks=callbacks)


def test_scheduler_and_plateau_warn_naming_both():
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.9)
    plateau = ReduceLROnPlateau(monitor="loss")
    with pytest.warns(LearningRateConflictWarning) as record:
        _fit([scheduler, plateau, EarlyStopping(monitor="loss")])
    conflicts = [w for w in record if issubclass(w.category, LearningRateConflictWarning)]
    assert len(conflicts) == 1  # one conflict, one warning
    message = str(conflicts[0].message)
    assert "LearningRateScheduler" in message and "callbacks.plateau.ReduceLROnPlateau" in message


def test_two_reducers_warn():
    with pytest.warns(LearningRateConflictWarning, match="keras.*ReduceLROnPlateau"):
        _fit([ReduceLROnPlateau(monitor="loss"), keras.callbacks.ReduceLROnPlateau(monitor="loss")])


def test_no_warning_without_a_conflict():
    with warnings.catch_warnings():
        warnings.simplefilter("error", LearningRateConflictWarning)
        _fit([ReduceLROnPlateau(monitor="loss"), EarlyStopping(monitor="loss")])


def test_detection_is_a_plain_function():
    plateau, finder = ReduceLROnPlateau(), LRFinder()
    assert learning_rate_conflicts([plateau, EarlyStopping()]) == []
    assert learning_rate_conflicts([plateau, EarlyStopping(), finder]) == [plateau, finder]
