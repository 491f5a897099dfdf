"""EarlyStopping: Keras's decisions, restoring at the last epoch, restoring the optimizer."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest

from callbacks import EarlyStopping
from lab.optimizers import Adam
from tests.callbacks.helpers import moons, moons_model, values

pytestmark = pytest.mark.backend_agnostic


class Snapshots(keras.callbacks.Callback):
    """Copies of the weights and the optimizer variables at the end of every epoch."""

    def on_train_begin(self, logs=None):
        self.weights, self.optimizer = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(values(self.model.weights))
        self.optimizer.append(values(self.model.optimizer.variables))


def _fit(callback, epochs, optimizer=None, seed=0):
    keras.utils.set_random_seed(seed)
    data = moons(256)
    model = moons_model(optimizer or Adam(learning_rate=0.02))
    snapshots = Snapshots()
    # Snapshots runs first, so it sees each epoch before EarlyStopping restores anything.
    history = model.fit(
        data.x_train, data.y_train, validation_data=(data.x_test, data.y_test), epochs=epochs,
        batch_size=64, callbacks=[snapshots, callback], verbose=0,
    )
    return model, history.history, snapshots


def test_restores_best_weights_and_optimizer_at_the_last_epoch():
    # Monitoring the loss in "max" mode makes epoch 0 the best (the loss falls every epoch); with
    # patience 10 training runs to its last epoch and must still restore epoch 0.
    callback = EarlyStopping(monitor="loss", mode="max", patience=10, restore_best_weights=True,
                             restore_optimizer_state=True)
    model, history, snapshots = _fit(callback, 4)
    assert len(history["loss"]) == 4 and callback.stopped_epoch == 0
    assert callback.best_epoch == 0
    assert callback.best == pytest.approx(history["loss"][0])
    for got, want in zip(values(model.weights), snapshots.weights[0]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(values(model.optimizer.variables), snapshots.optimizer[0]):
        np.testing.assert_array_equal(got, want)
    assert int(model.optimizer.iterations.numpy()) == 4  # one epoch of 4 batches


def test_weights_only_leaves_the_optimizer_at_the_end():
    callback = EarlyStopping(monitor="loss", mode="max", patience=10, restore_best_weights=True)
    model, _, snapshots = _fit(callback, 3)
    for got, want in zip(values(model.weights), snapshots.weights[0]):
        np.testing.assert_array_equal(got, want)
    assert int(model.optimizer.iterations.numpy()) == 12


def test_same_decisions_as_keras():
    restore = True
    # A high rate makes val_loss wander, so training stops early at some epoch.
    arguments = dict(monitor="val_loss", patience=2, min_delta=1e-3, restore_best_weights=restore)
    keras_model, keras_history, _ = _fit(
        keras.callbacks.EarlyStopping(**arguments), 15, keras.optimizers.SGD(learning_rate=1.5)
    )
    keras.backend.clear_session()
    callback = EarlyStopping(**arguments)
    model, history, snapshots = _fit(callback, 15, keras.optimizers.SGD(learning_rate=1.5))
    assert history == keras_history
    assert len(history["loss"]) < 15  # it did stop early
    assert callback.stopped_epoch == len(history["loss"]) - 1
    best = int(np.argmin(history["val_loss"]))
    assert callback.best_epoch == best
    assert callback.best == pytest.approx(history["val_loss"][best])
    expected = snapshots.weights[best] if restore else snapshots.weights[-1]
    keras_weights = values(keras_model.weights)
    for got, want, keras_weight in zip(values(model.weights), expected, keras_weights):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, keras_weight)


def test_arguments_and_config():
    keras_defaults = inspect.signature(keras.callbacks.EarlyStopping).parameters
    ours = inspect.signature(EarlyStopping).parameters
    for name, parameter in keras_defaults.items():
        assert ours[name].default == parameter.default, name
    callback = EarlyStopping(monitor="loss", patience=3, restore_best_weights=True,
                             restore_optimizer_state=True)
    assert EarlyStopping.from_config(callback.get_config()).get_config() == callback.get_config()
    with pytest.raises(ValueError, match="restore_best_weights"):
        EarlyStopping(restore_optimizer_state=True)


def test_restoring_the_optimizer_also_restores_a_plateau_factor():
    """The plateau callback's factor on a schedule (Scaled.scale) is part of the optimizer's state."""
    from callbacks import ReduceLROnPlateau
    from lab.schedules import ExponentialDecay, Scaled

    # "max" on a falling loss: epoch 0 is the best for both callbacks; the plateau halves the
    # factor at every later epoch, and early stopping must put it back to epoch 0's 1.0
    plateau = ReduceLROnPlateau(monitor="loss", mode="max", patience=0, factor=0.5)
    callback = EarlyStopping(monitor="loss", mode="max", patience=10, restore_best_weights=True,
                             restore_optimizer_state=True)
    keras.utils.set_random_seed(0)
    data = moons(256)
    model = moons_model(Adam(learning_rate=ExponentialDecay(0.02, decay_steps=8, decay_rate=0.9)))
    model.fit(data.x_train, data.y_train, epochs=4, batch_size=64, callbacks=[plateau, callback], verbose=0)
    scaled = model.optimizer._learning_rate
    assert isinstance(scaled, Scaled)
    assert [change.new / change.old for change in plateau.changes] == pytest.approx([0.5] * 3)
    assert float(keras.ops.convert_to_numpy(scaled.scale.value)) == 1.0
    assert int(model.optimizer.iterations.numpy()) == 4
