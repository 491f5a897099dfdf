"""Scaled: scale · schedule(t), the scale a variable that is changed in training and saved."""

import keras
import numpy as np
import pytest
from keras import ops

from lab.schedules import Constant, Scaled, StepDecay
from tests.reference import schedules as reference

STEPS = np.arange(1200, dtype="int64")


def values(schedule, steps=STEPS):
    return ops.convert_to_numpy(schedule(steps)).astype("float64")


@pytest.mark.backend_agnostic
def test_scaled_multiplies_the_schedule_at_every_step():
    schedule = Scaled(StepDecay(0.1, decay_rate=0.5, decay_steps=300), scale=0.3)
    expected = 0.3 * reference.step_decay(STEPS, 0.1, 0.5, 300)
    np.testing.assert_allclose(values(schedule), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.backend_agnostic
def test_scaled_float_schedule_is_a_constant():
    np.testing.assert_allclose(values(Scaled(0.02, scale=0.5)), 0.01, rtol=1e-6)


@pytest.mark.backend_agnostic
def test_assign_changes_the_value_and_config_keeps_the_current_scale():
    schedule = Scaled(Constant(0.1))
    assert float(schedule(7)) == pytest.approx(0.1, rel=1e-6)
    schedule.scale.assign(0.25)
    assert float(schedule(7)) == pytest.approx(0.025, rel=1e-6)
    config = schedule.get_config()
    assert config["scale"] == pytest.approx(0.25)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, Scaled) and isinstance(restored.schedule, Constant)
    assert float(restored.scale.numpy()) == pytest.approx(0.25)
    assert float(restored(7)) == pytest.approx(0.025, rel=1e-6)
    # the restored variable is independent of the original
    schedule.scale.assign(1.0)
    assert float(restored(7)) == pytest.approx(0.025, rel=1e-6)


@pytest.mark.backend_agnostic
def test_scale_variable_is_float32_and_not_trainable():
    schedule = Scaled(Constant(0.1), scale=2)
    assert isinstance(schedule.scale, keras.Variable)
    assert schedule.scale.dtype == "float32" and not schedule.scale.trainable


@pytest.mark.backend_agnostic
def test_nested_keras_schedule_round_trips():
    inner = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)
    schedule = Scaled(inner, scale=0.5)
    restored = Scaled.from_config(schedule.get_config())
    assert isinstance(restored.schedule, keras.optimizers.schedules.ExponentialDecay)
    np.testing.assert_allclose(values(restored), values(schedule), rtol=1e-7)
    np.testing.assert_allclose(values(schedule)[[0, 100, 1000]], [0.05, 0.025, 0.05 * 0.5**10], rtol=1e-5)


def test_tf_function_sees_assign_without_retracing():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function capture is TensorFlow-specific")
    schedule = Scaled(Constant(0.1))
    compiled = tf.function(lambda step: schedule(step), jit_compile=True)
    assert float(compiled(tf.constant(3, tf.int64))) == pytest.approx(0.1, rel=1e-6)
    schedule.scale.assign(0.5)
    assert float(compiled(tf.constant(3, tf.int64))) == pytest.approx(0.05, rel=1e-6)
    assert compiled.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("scale", [-0.1, float("nan"), "big"])
@pytest.mark.backend_agnostic
def test_bad_scale_is_rejected(scale):
    with pytest.raises(ValueError, match="`scale`"):
        Scaled(Constant(0.1), scale=scale)


@pytest.mark.backend_agnostic
def test_bad_schedule_is_rejected():
    with pytest.raises(ValueError, match="`schedule`"):
        Scaled(-1.0)
    with pytest.raises(ValueError, match="`schedule`"):
        Scaled("cosine")
