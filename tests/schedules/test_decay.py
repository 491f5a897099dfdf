"""StepDecay, ExponentialDecay and InverseTimeDecay against their closed forms and Keras's twins."""

import keras
import numpy as np
import pytest

from lab.schedules import ExponentialDecay, InverseTimeDecay, StepDecay
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches

STEPS = np.arange(0, 1501)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "initial_learning_rate, decay_rate, decay_steps",
    [(0.1, 0.5, 100), (0.01, 0.9, 7), (1.0, 0.1, 1000), (0.05, 1.5, 300)],
)
def test_step_decay_matches_reference(evaluate, initial_learning_rate, decay_rate, decay_steps):
    values = evaluate(StepDecay(initial_learning_rate, decay_rate, decay_steps), STEPS)
    assert_matches(values, reference.step_decay(STEPS, initial_learning_rate, decay_rate, decay_steps))
    # the drop happens exactly at the boundary, not one step before or after
    assert values[decay_steps - 1] == pytest.approx(initial_learning_rate, rel=1e-6)
    assert values[decay_steps] == pytest.approx(initial_learning_rate * decay_rate, rel=1e-6)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize("decay_steps, decay_rate", [(100, 0.96), (37, 0.5), (1, 0.997)])
def test_exponential_decay_matches_reference_and_keras(evaluate, staircase, decay_steps, decay_rate):
    ours = ExponentialDecay(0.1, decay_steps=decay_steps, decay_rate=decay_rate, staircase=staircase)
    keras_twin = keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=decay_steps, decay_rate=decay_rate, staircase=staircase
    )
    values = evaluate(ours, STEPS)
    assert_matches(values, reference.exponential_decay(STEPS, 0.1, decay_steps, decay_rate, staircase))
    np.testing.assert_allclose(values, evaluate(keras_twin, STEPS), rtol=1e-6)


@pytest.mark.backend_agnostic
def test_exponential_decay_has_keras_signature():
    ours = ExponentialDecay(0.1, 100, 0.5)
    twin = keras.optimizers.schedules.ExponentialDecay(0.1, 100, 0.5)
    assert ours.get_config() == twin.get_config()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "arguments, name",
    [
        ({"initial_learning_rate": -0.1}, "initial_learning_rate"),
        ({"decay_rate": 0.0}, "decay_rate"),
        ({"decay_rate": -0.5}, "decay_rate"),
        ({"decay_steps": 0}, "decay_steps"),
        ({"decay_steps": -3}, "decay_steps"),
        ({"decay_steps": 2.5}, "decay_steps"),
    ],
)
def test_bad_arguments_name_the_argument(arguments, name):
    full = {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 10, **arguments}
    with pytest.raises(ValueError, match=f"`{name}`"):
        StepDecay(**full)
    with pytest.raises(ValueError, match=f"`{name}`"):
        ExponentialDecay(**full)


def test_exponential_decay_rejects_non_bool_staircase():
    with pytest.raises(ValueError, match="`staircase`"):
        ExponentialDecay(0.1, 10, 0.5, staircase="yes")


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize("decay_steps, decay_rate", [(100, 0.5), (7, 2.0), (1, 0.01), (300, 0.0)])
def test_inverse_time_decay_matches_reference_and_keras(evaluate, staircase, decay_steps, decay_rate):
    ours = InverseTimeDecay(0.1, decay_steps, decay_rate, staircase)
    twin = keras.optimizers.schedules.InverseTimeDecay(0.1, decay_steps, decay_rate, staircase)
    values = evaluate(ours, STEPS)
    assert_matches(values, reference.inverse_time_decay(STEPS, 0.1, decay_steps, decay_rate, staircase))
    np.testing.assert_allclose(values, evaluate(twin, STEPS), rtol=1e-6)
    assert ours.get_config() == twin.get_config()


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "arguments, name",
    [({"initial_learning_rate": -0.1}, "initial_learning_rate"), ({"decay_steps": 0}, "decay_steps"),
     ({"decay_rate": -0.5}, "decay_rate"), ({"staircase": 1}, "staircase")],
)
def test_inverse_time_decay_bad_arguments_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        InverseTimeDecay(**{"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5, **arguments})
