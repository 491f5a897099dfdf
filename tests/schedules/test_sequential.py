"""Sequential: each schedule in turn, restarted at its boundary."""

import functools

import keras
import numpy as np
import pytest

from lab.schedules import Constant, CosineAnnealing, CyclicalLR, Sequential, StepDecay, WarmupCosine
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches

STEPS = np.arange(0, 1301)


@pytest.mark.backend_agnostic
def test_sequential_matches_reference(evaluate):
    schedule = Sequential(
        [Constant(0.01), StepDecay(0.1, 0.5, 100), CosineAnnealing(0.05, 400, 1e-3), CyclicalLR(1e-3, 0.02, 50)],
        boundaries=[100, 500, 900],
    )
    pieces = [
        functools.partial(reference.constant, learning_rate=0.01),
        functools.partial(reference.step_decay, initial_learning_rate=0.1, decay_rate=0.5, decay_steps=100),
        functools.partial(reference.cosine_annealing, initial_learning_rate=0.05, decay_steps=400, min_learning_rate=1e-3),
        functools.partial(reference.cyclic_lr, base_learning_rate=1e-3, max_learning_rate=0.02, step_size=50),
    ]
    values = evaluate(schedule, STEPS)
    assert_matches(values, reference.sequential(STEPS, pieces, [100, 500, 900]))
    # each piece starts at its boundary, from its own step 0
    np.testing.assert_allclose(values[[99, 100, 499, 500, 900]], [0.01, 0.1, 0.1 * 0.5**3, 0.05, 1e-3], rtol=1e-5)
    assert 1e-3 < values[899] < 1.001e-3


@pytest.mark.backend_agnostic
def test_warmup_then_cosine_equals_warmup_cosine(evaluate):
    """Sequential([warm-up, cosine], [W]) is WarmupCosine: a cross-check of both."""
    warmup = keras.optimizers.schedules.PolynomialDecay(0.0, decay_steps=200, end_learning_rate=0.1, power=1.0)
    composed = Sequential([warmup, CosineAnnealing(0.1, 800, 1e-3)], [200])
    direct = WarmupCosine(0.1, 200, 800, min_learning_rate=1e-3)
    np.testing.assert_allclose(evaluate(composed, STEPS), evaluate(direct, STEPS), rtol=1e-5, atol=1e-8)


@pytest.mark.backend_agnostic
def test_single_schedule_needs_no_boundaries(evaluate):
    values = evaluate(Sequential([StepDecay(0.1, 0.5, 10)], []), STEPS)
    assert_matches(values, reference.step_decay(STEPS, 0.1, 0.5, 10))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "schedules, boundaries, name",
    [
        ([], [], "schedules"),
        ([Constant(0.1), 0.5], [10], "schedules"),
        ([Constant(0.1), Constant(0.2)], [], "boundaries"),
        ([Constant(0.1), Constant(0.2)], [10, 20], "boundaries"),
        ([Constant(0.1), Constant(0.2), Constant(0.3)], [20, 20], "boundaries"),
        ([Constant(0.1), Constant(0.2), Constant(0.3)], [30, 20], "boundaries"),
        ([Constant(0.1), Constant(0.2)], [0], "boundaries"),
        ([Constant(0.1), Constant(0.2)], 10, "boundaries"),
    ],
)
def test_bad_arguments_name_the_argument(schedules, boundaries, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        Sequential(schedules, boundaries)
