"""Callbacks fighting over the learning rate are reported where the callback list is known."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from callbacks import (
    EarlyStopping,
    LearningRateConflictWarning,
    LRFinder,
    ReduceLROnPlateau,
    check_callbacks,
    find_lr,
    learning_rate_conflicts,
)
from tests.callbacks.helpers import moons, moons_model

pytestmark = pytest.mark.backend_agnostic


def test_scheduler_and_plateau_warn_naming_both():
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate * 0.9)
    plateau = ReduceLROnPlateau(monitor="loss")
    with pytest.warns(LearningRateConflictWarning) as record:
        culprits = check_callbacks([scheduler, plateau, EarlyStopping(monitor="loss")])
    assert culprits == [scheduler, plateau]
    assert len(record) == 1  # one conflict, one warning
    message = str(record[0].message)
    assert "LearningRateScheduler" in message and "callbacks.plateau.ReduceLROnPlateau" in message


def test_two_reducers_warn():
    with pytest.warns(LearningRateConflictWarning, match="keras.*ReduceLROnPlateau"):
        check_callbacks([ReduceLROnPlateau(monitor="loss"), keras.callbacks.ReduceLROnPlateau()])


def test_no_warning_without_a_conflict():
    with warnings.catch_warnings():
        warnings.simplefilter("error", LearningRateConflictWarning)
        assert check_callbacks([ReduceLROnPlateau(monitor="loss"), EarlyStopping(monitor="loss")]) == []


def test_detection_is_a_plain_function():
    plateau, finder = ReduceLROnPlateau(), LRFinder()
    assert learning_rate_conflicts([plateau, EarlyStopping()]) == []
    assert learning_rate_conflicts([plateau, EarlyStopping(), finder]) == [plateau, finder]


def test_the_entry_points_check():
    """find_lr adds its own LRFinder; train_run checks the callbacks it is given."""
    from experiments.training import train_run
    from lab import models
    from lab.optimizers import SGD

    data = moons(64)
    model = moons_model(SGD(learning_rate=0.1))
    with pytest.warns(LearningRateConflictWarning, match="LRFinder"):
        find_lr(model, data.x_train, data.y_train, num_steps=4, verify_steps=0,
                callbacks=[ReduceLROnPlateau(monitor="loss")])
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, rate: rate)
    with pytest.warns(LearningRateConflictWarning):
        train_run(models.moons_net(0), SGD(learning_rate=0.1), data, epochs=1, batch_size=64, seed=0,
                  validate=False, callbacks=[scheduler, ReduceLROnPlateau(monitor="loss")],
                  steps_per_execution=1)  # what Keras allows on every backend, PyTorch included
    assert np.isfinite(model.get_weights()[0]).all()
