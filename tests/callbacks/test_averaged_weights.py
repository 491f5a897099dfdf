"""AveragedWeights: evaluation at Keras's EMA and at a protocol optimizer's average, vs NumPy."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from callbacks import AveragedWeights
from tests.callbacks.helpers import ParameterRecorder, linear_model, mse, regression

pytestmark = pytest.mark.backend_agnostic


class PolyakSGD(keras.optimizers.SGD):
    """Plain SGD that keeps the running mean of its iterates, w_avg = mean(w_1, ..., w_t), and
    offers it through the averaged-iterate protocol: ``evaluation_weights(variables)``."""

    def build(self, variables):
        super().build(variables)
        self._averages = [self.add_variable_from_reference(v, "average") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        super().update_step(gradient, variable, learning_rate)
        average = self._averages[self._get_variable_index(variable)]
        count = keras.ops.cast(self.iterations + 1, variable.dtype)
        self.assign_add(average, (variable - average) / count)

    def evaluation_weights(self, variables):
        return [self._averages[self._get_variable_index(v)] for v in variables]


def _fit(optimizer, callbacks, epochs=4):
    x, y = regression()
    model = linear_model(optimizer)
    recorder = ParameterRecorder()
    history = model.fit(x, y, batch_size=len(x), epochs=epochs, shuffle=False, verbose=0,
                        validation_data=(x, y), callbacks=[recorder, *callbacks])
    return model, recorder.after_step, history.history["val_loss"]


def test_keras_ema_is_evaluated_and_training_never_sees_it():
    m = 0.5
    _, raw, val_loss = _fit(keras.optimizers.SGD(0.01, use_ema=True, ema_momentum=m), [AveragedWeights()])
    _, plain, _ = _fit(keras.optimizers.SGD(0.01), [])
    np.testing.assert_allclose(raw, plain, rtol=1e-6)  # the raw trajectory is plain SGD's
    x, y = regression()
    average = np.array(raw[1])  # Keras: a_1 = w_1, then a_t = m a_{t-1} + (1 - m) w_t
    expected = [mse(*average, x, y)]
    for weights in raw[2:]:
        average = m * average + (1 - m) * np.array(weights)
        expected.append(mse(*average, x, y))
    np.testing.assert_allclose(val_loss, expected, rtol=1e-5)
    assert not np.allclose(val_loss, [mse(*w, x, y) for w in raw[1:]], rtol=1e-3)  # not the raw loss


@pytest.mark.filterwarnings("ignore:Skipping variable loading")  # weights only, into a plain SGD
def test_the_averaged_iterate_protocol_and_saving(tmp_path):
    path = str(tmp_path / "averaged_{epoch}.weights.h5")
    model, raw, val_loss = _fit(PolyakSGD(0.01), [AveragedWeights(path)])
    x, y = regression()
    means = [np.mean(raw[1:t + 1], axis=0) for t in range(1, 5)]
    np.testing.assert_allclose(val_loss, [mse(*mean, x, y) for mean in means], rtol=1e-5)
    np.testing.assert_allclose([v.numpy().ravel()[0] for v in model.trainable_variables], raw[-1], rtol=1e-6)
    saved = linear_model(keras.optimizers.SGD(0.01))
    saved.load_weights(path.format(epoch=4), skip_mismatch=True)
    np.testing.assert_allclose([v.numpy().ravel()[0] for v in saved.trainable_variables], means[-1], rtol=1e-6)
    with pytest.raises(ValueError, match="use_ema"):
        _fit(keras.optimizers.SGD(0.01), [AveragedWeights()], epochs=1)
    assert AveragedWeights.from_config(AveragedWeights(path).get_config()).filepath == path


@pytest.mark.parametrize("name", ["ScheduleFreeAdamW", "ScheduleFreeSGD"])
def test_a_schedule_free_optimizer_is_evaluated_at_its_averaged_iterate(name):
    """Validation inside fit sees x, the schedule-free average; training goes on from y."""
    from lab import optimizers

    optimizer = getattr(optimizers, name)(0.05)
    model, raw, val_loss = _fit(optimizer, [AveragedWeights()])
    x, y = regression()
    training_weights = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    for variable, value in zip(model.trainable_variables, optimizer.evaluation_weights(model.trainable_variables)):
        variable.assign(value)
    at_average = float(model.evaluate(x, y, verbose=0))
    for variable, value in zip(model.trainable_variables, training_weights):
        variable.assign(value)
    assert val_loss[-1] == pytest.approx(at_average, rel=1e-5)
    assert at_average != pytest.approx(float(model.evaluate(x, y, verbose=0)), rel=1e-3)  # y is not x
    np.testing.assert_allclose([v.numpy().ravel()[0] for v in model.trainable_variables], raw[-1], rtol=1e-6)
