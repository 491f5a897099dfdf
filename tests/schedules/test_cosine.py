"""CosineAnnealing and WarmupCosine against their closed forms."""

import keras
import numpy as np
import pytest

from lab.schedules import CosineAnnealing, WarmupCosine
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches

STEPS = np.arange(0, 1301)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "initial_learning_rate, decay_steps, min_learning_rate",
    [(0.1, 1000, 0.0), (0.1, 1000, 1e-3), (0.5, 333, 0.05), (0.01, 1, 0.0)],
)
def test_cosine_annealing_matches_reference(evaluate, initial_learning_rate, decay_steps, min_learning_rate):
    schedule = CosineAnnealing(initial_learning_rate, decay_steps, min_learning_rate)
    values = evaluate(schedule, STEPS)
    assert_matches(
        values, reference.cosine_annealing(STEPS, initial_learning_rate, decay_steps, min_learning_rate)
    )
    assert values[0] == pytest.approx(initial_learning_rate, rel=1e-6)
    # the floor is reached at decay_steps and kept
    np.testing.assert_allclose(values[decay_steps:], min_learning_rate, atol=1e-7)


@pytest.mark.backend_agnostic
def test_cosine_annealing_equals_keras_cosine_decay(evaluate):
    ours = CosineAnnealing(0.1, 1000, min_learning_rate=0.002)
    twin = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=1000, alpha=0.02)
    np.testing.assert_allclose(evaluate(ours, STEPS), evaluate(twin, STEPS), rtol=1e-5, atol=1e-8)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "peak, warmup_steps, decay_steps, initial, minimum",
    [(0.1, 100, 900, 0.0, 0.0), (0.1, 250, 1000, 0.01, 1e-3), (0.3, 1, 1200, 0.0, 0.0), (0.2, 0, 1000, 0.0, 0.01)],
)
def test_warmup_cosine_matches_reference(evaluate, peak, warmup_steps, decay_steps, initial, minimum):
    schedule = WarmupCosine(peak, warmup_steps, decay_steps, initial_learning_rate=initial, min_learning_rate=minimum)
    values = evaluate(schedule, STEPS)
    assert_matches(values, reference.warmup_cosine(STEPS, peak, warmup_steps, decay_steps, initial, minimum))
    assert values[0] == pytest.approx(initial if warmup_steps else peak, abs=1e-8)
    assert values[warmup_steps] == pytest.approx(peak, rel=1e-6)
    assert values.max() == pytest.approx(peak, rel=1e-6)


@pytest.mark.backend_agnostic
def test_warmup_cosine_is_the_notebook_schedule(evaluate):
    """Notebook 000: warmup_cosine(0.1, epoch, 100, warmup_epochs=10) per epoch."""
    epochs = np.arange(100)
    notebook = np.array(
        [0.1 * e / 10 if e < 10 else 0.1 * 0.5 * (1 + np.cos(np.pi * (e - 10) / 90)) for e in epochs]
    )
    assert_matches(evaluate(WarmupCosine(0.1, 10, 90), epochs), notebook)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "cls, arguments, name",
    [
        (CosineAnnealing, {"initial_learning_rate": -1.0, "decay_steps": 10}, "initial_learning_rate"),
        (CosineAnnealing, {"initial_learning_rate": 0.1, "decay_steps": 0}, "decay_steps"),
        (CosineAnnealing, {"initial_learning_rate": 0.1, "decay_steps": 10, "min_learning_rate": -0.1}, "min_learning_rate"),
        (WarmupCosine, {"peak_learning_rate": -0.1, "warmup_steps": 1, "decay_steps": 10}, "peak_learning_rate"),
        (WarmupCosine, {"peak_learning_rate": 0.1, "warmup_steps": -1, "decay_steps": 10}, "warmup_steps"),
        (WarmupCosine, {"peak_learning_rate": 0.1, "warmup_steps": 1.5, "decay_steps": 10}, "warmup_steps"),
        (WarmupCosine, {"peak_learning_rate": 0.1, "warmup_steps": 1, "decay_steps": 0}, "decay_steps"),
        (WarmupCosine, {"peak_learning_rate": 0.1, "warmup_steps": 1, "decay_steps": 5, "initial_learning_rate": -1}, "initial_learning_rate"),
        (WarmupCosine, {"peak_learning_rate": 0.1, "warmup_steps": 1, "decay_steps": 5, "min_learning_rate": -1}, "min_learning_rate"),
    ],
)
def test_bad_arguments_name_the_argument(cls, arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        cls(**arguments)
