"""ReduceLROnPlateau: Keras's sequence by default, PyTorch's relative threshold, schedules."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

import lab.schedules as schedules
from callbacks import LearningRateChange, ReduceLROnPlateau
from lab.optimizers import SGD, Adam
from tests.callbacks.helpers import (
    ParameterRecorder,
    linear_model,
    moons,
    moons_model,
    reference_plateau,
    regression,
    values,
)

pytestmark = pytest.mark.backend_agnostic


def _fit_linear(callback, epochs, learning_rate=1e-3, optimizer_class=keras.optimizers.SGD):
    x, y = regression()
    model = linear_model(optimizer_class(learning_rate=learning_rate))
    validation = (x[:50], y[:50]) if callback.monitor.startswith("val_") else None
    history = model.fit(
        x, y, batch_size=len(x), epochs=epochs, validation_data=validation,
        callbacks=[callback], verbose=0, shuffle=False,
    )
    return model, history.history


@pytest.mark.parametrize(
    "arguments, epochs",
    [
        # every default: monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4
        ({}, 22),
        ({"monitor": "loss", "factor": 0.5, "patience": 2, "cooldown": 1, "min_lr": 1e-9}, 12),
    ],
    ids=["defaults", "patience2-cooldown1-min_lr"],
)
@pytest.mark.slow
def test_same_learning_rates_as_keras(arguments, epochs):
    # A tiny rate makes the loss crawl, so it plateaus (improvements < min_delta) repeatedly.
    keras.utils.set_random_seed(1)
    _, expected = _fit_linear(keras.callbacks.ReduceLROnPlateau(**arguments), epochs, 1e-8)
    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    ours = ReduceLROnPlateau(**arguments)
    _, got = _fit_linear(ours, epochs, 1e-8)
    assert got["learning_rate"] == expected["learning_rate"]
    assert got["loss"] == expected["loss"]
    reductions = np.flatnonzero(np.diff(got["learning_rate"]))
    assert len(reductions) >= 2  # the comparison saw reductions, not a constant rate
    assert [change.epoch for change in ours.changes] == list(reductions)
    for change in ours.changes:
        assert change.old == pytest.approx(got["learning_rate"][change.epoch])
        assert change.new == pytest.approx(got["learning_rate"][change.epoch + 1])


@pytest.mark.parametrize("threshold_mode, min_delta", [("abs", 1.8), ("rel", 0.03)])
def test_epoch_by_epoch_against_reference(threshold_mode, min_delta):
    # lr 0.005 lowers val_loss (~74) by ~2 (2.6%) an epoch and by half that after a halving, so
    # both thresholds see improvements and plateaus in turn.
    arguments = dict(factor=0.5, patience=1, min_delta=min_delta, cooldown=1)
    callback = ReduceLROnPlateau(monitor="val_loss", threshold_mode=threshold_mode, **arguments)
    _, history = _fit_linear(callback, 12, 0.005)
    expected = reference_plateau(
        history["val_loss"], 0.005, threshold_mode=threshold_mode, **arguments
    )
    np.testing.assert_allclose(history["learning_rate"], expected, rtol=1e-6)
    assert len(callback.changes) >= 2
    assert all(isinstance(change, LearningRateChange) for change in callback.changes)
    if threshold_mode == "rel":
        # Read as absolute, the same threshold gives another sequence: the modes really differ.
        absolute = reference_plateau(history["val_loss"], 0.005, threshold_mode="abs", **arguments)
        assert absolute != expected


# -- on top of a schedule -------------------------------------------------------------------

SCHEDULE_FACTORIES = {
    "Constant": lambda: schedules.Constant(0.02),
    "StepDecay": lambda: schedules.StepDecay(0.02, 0.5, 2),
    "ExponentialDecay": lambda: schedules.ExponentialDecay(0.02, 3, 0.7),
    "CosineAnnealing": lambda: schedules.CosineAnnealing(0.02, 8, 0.002),
    "WarmupCosine": lambda: schedules.WarmupCosine(0.02, 2, 6, 0.005, 0.001),
    "OneCycle": lambda: schedules.OneCycle(0.02, 8),
    "CyclicalLR": lambda: schedules.CyclicalLR(0.005, 0.02, 2),
    "CosineWarmRestarts": lambda: schedules.CosineWarmRestarts(0.02, 3),
    "Sequential": lambda: schedules.Sequential(
        [schedules.Constant(0.02), schedules.ExponentialDecay(0.02, 2, 0.5)], [3]
    ),
    "Scaled": lambda: schedules.Scaled(schedules.Constant(0.04), 0.5),
    "keras.ExponentialDecay": lambda: keras.optimizers.schedules.ExponentialDecay(0.02, 3, 0.7),
    "PolynomialDecay": lambda: schedules.PolynomialDecay(0.02, 8, 0.002, power=2.0),
    "LinearDecay": lambda: schedules.LinearDecay(0.02, 8, 0.002),
    "PiecewiseConstant": lambda: schedules.PiecewiseConstant([1, 3], [0.02, 0.015, 0.01]),
    "InverseTimeDecay": lambda: schedules.InverseTimeDecay(0.02, 2, 0.5),
    "LinearWarmup": lambda: schedules.LinearWarmup(schedules.CosineAnnealing(0.02, 8, 0.002), 2, 0.005),
    "WarmupStableDecay": lambda: schedules.WarmupStableDecay(0.02, 8, 2, 0.5, "cosine", 0.005, 0.001),
}
_NOT_SCHEDULES = {"Schedule", "per_epoch", "step_arguments"}


def test_every_lab_schedule_is_covered():
    exported = {
        name for name in schedules.__all__
        if name not in _NOT_SCHEDULES and inspect.isclass(getattr(schedules, name))
    }
    assert exported <= set(SCHEDULE_FACTORIES), exported - set(SCHEDULE_FACTORIES)


@pytest.mark.parametrize("name", sorted(SCHEDULE_FACTORIES))
def test_on_top_of_schedule_the_applied_rate_drops(name):
    """Full-batch plain SGD on y = 3x + 7: the rate applied at step t is -(w' - w) / dL/dw."""
    schedule = SCHEDULE_FACTORIES[name]()
    reference = SCHEDULE_FACTORIES[name]()  # an untouched twin to evaluate schedule(t)
    base_scale = 1.0
    if isinstance(reference, schedules.Scaled):
        base_scale = float(reference.scale.numpy())
        reference = reference.schedule
    # min_delta so large that only the first epoch counts as an improvement: with patience 1
    # every later epoch ends with a reduction by 0.5.
    plateau = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e6)
    recorder = ParameterRecorder()
    x, y = regression()
    model = linear_model(SGD(learning_rate=schedule))
    epochs = 4
    history = model.fit(
        x, y, batch_size=len(x), epochs=epochs, callbacks=[plateau, recorder], verbose=0,
        shuffle=False,
    )
    wrapped = model.optimizer._learning_rate
    assert isinstance(wrapped, schedules.Scaled)
    if name == "Scaled":
        assert wrapped is schedule  # reused, not wrapped twice
    else:
        assert wrapped.schedule is schedule
    steps = np.arange(epochs)
    curve = np.array([float(keras.ops.convert_to_numpy(reference(int(t)))) for t in steps])
    multiplier = base_scale * 0.5 ** np.maximum(steps - 1, 0)  # reductions after epochs 1, 2, ...
    applied = recorder.applied_learning_rates(x, y)
    np.testing.assert_allclose(applied, multiplier * curve, rtol=2e-4)
    assert [change.epoch for change in plateau.changes] == list(range(1, epochs))
    # As in Keras, the logs hold the optimizer's rate at the epoch's end (step t + 1), before
    # that epoch's reduction.
    next_curve = np.array([float(keras.ops.convert_to_numpy(reference(int(t) + 1))) for t in steps])
    np.testing.assert_allclose(history.history["learning_rate"], multiplier * next_curve, rtol=1e-5)
    assert float(wrapped.scale.numpy()) == pytest.approx(base_scale * 0.5 ** (epochs - 1))


def test_scale_is_saved_with_the_optimizer():
    model = moons_model(Adam(learning_rate=schedules.CosineAnnealing(0.01, 100)))
    data = moons(64)
    plateau = ReduceLROnPlateau(monitor="loss", factor=0.25, patience=1, min_delta=1e6)
    model.fit(data.x_train, data.y_train, epochs=3, batch_size=32, callbacks=[plateau], verbose=0)
    config = keras.optimizers.serialize(model.optimizer)
    restored = keras.optimizers.deserialize(config)
    assert isinstance(restored._learning_rate, schedules.Scaled)
    assert float(restored._learning_rate.scale.numpy()) == pytest.approx(0.25**2)
    step = 7
    assert float(restored._learning_rate(step)) == pytest.approx(
        float(model.optimizer._learning_rate(step))
    )


def test_min_lr_bounds_a_scaled_schedule():
    plateau = ReduceLROnPlateau(monitor="loss", factor=0.1, patience=1, min_delta=1e6, min_lr=4e-3)
    _, history = _fit_linear(
        plateau, 4, schedules.Constant(0.02), optimizer_class=keras.optimizers.SGD
    )
    np.testing.assert_allclose(history["learning_rate"], [0.02, 0.02, 4e-3, 4e-3], rtol=1e-6)
    assert len(plateau.changes) == 1


def test_keras_optimizers_with_float_rates_work_unchanged():
    data = moons(128)
    model = moons_model(keras.optimizers.RMSprop(learning_rate=0.01))
    plateau = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e6)
    history = model.fit(data.x_train, data.y_train, epochs=3, batch_size=64, callbacks=[plateau],
                        verbose=0)
    np.testing.assert_allclose(history.history["learning_rate"], [0.01, 0.01, 0.005], rtol=1e-6)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.0025)


def test_arguments_and_config():
    callback = ReduceLROnPlateau(monitor="loss", factor=0.2, patience=3, threshold_mode="rel")
    clone = ReduceLROnPlateau.from_config(callback.get_config())
    assert clone.get_config() == callback.get_config()
    keras_defaults = inspect.signature(keras.callbacks.ReduceLROnPlateau).parameters
    ours = inspect.signature(ReduceLROnPlateau).parameters
    for name, parameter in keras_defaults.items():
        assert ours[name].default == parameter.default, name
    with pytest.raises(ValueError, match="threshold_mode"):
        ReduceLROnPlateau(threshold_mode="relative")
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.5)


def test_model_save_carries_the_scale_and_the_optimizer_state(tmp_path):
    """During fit the scale is an optimizer variable; after it, the optimizer has exactly a fresh
    one's variables, so load_model restores all of them and the scale comes from the config."""
    import warnings

    data = moons(64)
    model = moons_model(Adam(learning_rate=schedules.CosineAnnealing(0.01, 100)))
    plateau = ReduceLROnPlateau(monitor="loss", factor=0.25, patience=1, min_delta=1e6)
    model.fit(data.x_train, data.y_train, epochs=3, batch_size=32, callbacks=[plateau], verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns when it skips the optimizer's variables
        loaded = keras.models.load_model(path)
    assert float(loaded.optimizer._learning_rate.scale.numpy()) == pytest.approx(0.25**2)
    assert int(loaded.optimizer.iterations.numpy()) == 6
    for got, want in zip(values(loaded.optimizer.variables), values(model.optimizer.variables)):
        np.testing.assert_array_equal(got, want)
