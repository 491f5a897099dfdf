"""CosineWarmRestarts against PyTorch's stepped CosineAnnealingWarmRestarts and an SGDR loop."""

import keras
import numpy as np
import pytest

from lab.schedules import CosineWarmRestarts
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches

STEPS = np.arange(0, 1601)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "first_decay_steps, t_mul, min_learning_rate",
    [(100, 2, 0.0), (150, 1, 0.001), (50, 3, 0.0), (1, 2, 0.0)],
)
def test_matches_pytorch_warm_restarts(evaluate, first_decay_steps, t_mul, min_learning_rate):
    schedule = CosineWarmRestarts(
        0.1, first_decay_steps, t_mul=t_mul, min_learning_rate=min_learning_rate
    )
    values = evaluate(schedule, STEPS)
    expected = reference.cosine_warm_restarts_pytorch(STEPS, 0.1, first_decay_steps, t_mul, min_learning_rate)
    assert_matches(values, expected)


@pytest.mark.backend_agnostic
def test_restart_steps_are_exact(evaluate):
    """With T_0 = 100, t_mul = 2 the restarts are at 100, 300, 700 and 1500: the peak there and the
    bottom of the cosine one step before (float32 logarithms must not shift a restart)."""
    schedule = CosineWarmRestarts(0.1, 100, t_mul=2.0)
    restarts = np.array([0, 100, 300, 700, 1500])
    np.testing.assert_allclose(evaluate(schedule, restarts), 0.1, rtol=1e-6)
    last = evaluate(schedule, restarts[1:] - 1)
    assert np.all(last < 0.1 * 1e-3)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "first_decay_steps, t_mul, m_mul, min_learning_rate",
    [(100, 2.0, 0.5, 0.001), (64, 1.5, 0.8, 0.0), (200, 1.0, 0.7, 0.01), (10, 1.25, 1.0, 0.0)],
)
def test_matches_sgdr_loop(evaluate, first_decay_steps, t_mul, m_mul, min_learning_rate):
    schedule = CosineWarmRestarts(0.1, first_decay_steps, t_mul, m_mul, min_learning_rate)
    values = evaluate(schedule, STEPS)
    assert_matches(values, reference.sgdr(STEPS, 0.1, first_decay_steps, t_mul, m_mul, min_learning_rate))


@pytest.mark.backend_agnostic
def test_equals_keras_cosine_decay_restarts(evaluate):
    ours = CosineWarmRestarts(0.1, 100, t_mul=2.0, m_mul=0.9, min_learning_rate=0.005)
    twin = keras.optimizers.schedules.CosineDecayRestarts(0.1, 100, t_mul=2.0, m_mul=0.9, alpha=0.05)
    # away from the restart steps, where Keras's float32 logarithm may land in the previous period
    steps = np.setdiff1d(STEPS, [99, 100, 299, 300, 699, 700, 1499, 1500])
    np.testing.assert_allclose(evaluate(ours, steps), evaluate(twin, steps), rtol=1e-4, atol=1e-7)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "arguments, name",
    [
        ({"initial_learning_rate": -0.1}, "initial_learning_rate"),
        ({"first_decay_steps": 0}, "first_decay_steps"),
        ({"t_mul": 0.5}, "t_mul"),
        ({"m_mul": 0.0}, "m_mul"),
        ({"min_learning_rate": -1e-3}, "min_learning_rate"),
    ],
)
def test_bad_arguments_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        CosineWarmRestarts(**{"initial_learning_rate": 0.1, "first_decay_steps": 10, **arguments})
