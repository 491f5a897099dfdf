"""LinearWarmup, alone and in front of lab and Keras schedules, against its closed form and
PyTorch's LinearLR / SequentialLR."""

import keras
import numpy as np
import pytest

from lab.schedules import CosineAnnealing, LinearWarmup
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches, torch_learning_rates

pytestmark = pytest.mark.backend_agnostic

STEPS = np.arange(0, 1201)


@pytest.mark.parametrize("peak, warmup_steps, initial", [(0.1, 250, 0.001), (0.3, 1000, 0.03), (0.2, 1, 0.1), (0.1, 0, 0.05)])
def test_alone_matches_reference_and_torch(evaluate, peak, warmup_steps, initial):
    values = evaluate(LinearWarmup(peak, warmup_steps, initial), STEPS)
    assert_matches(values, reference.linear_warmup(STEPS, peak, warmup_steps, initial))
    assert values[0] == pytest.approx(initial if warmup_steps else peak, rel=1e-6)
    if warmup_steps:
        torch = pytest.importorskip("torch")
        expected = torch_learning_rates(
            lambda optimizer: torch.optim.lr_scheduler.LinearLR(optimizer, initial / peak, 1.0, warmup_steps),
            peak,
            len(STEPS),
        )
        assert_matches(values, expected)


def test_in_front_of_a_schedule_matches_reference_and_torch_sequential(evaluate):
    schedule = LinearWarmup(CosineAnnealing(0.1, 900, 1e-3), 100, initial_learning_rate=0.01)
    steps = STEPS[:1000]  # PyTorch's cosine climbs back after T_max; the lab's stays at its floor
    values = evaluate(schedule, steps)
    cosine = lambda s: reference.cosine_annealing(s, 0.1, 900, 1e-3)  # noqa: E731
    assert_matches(values, reference.linear_warmup(steps, cosine, 100, 0.01))
    torch = pytest.importorskip("torch")
    scheduler = torch.optim.lr_scheduler

    def sequential(optimizer):
        warmup = scheduler.LinearLR(optimizer, 0.1, 1.0, 100)
        return scheduler.SequentialLR(optimizer, [warmup, scheduler.CosineAnnealingLR(optimizer, 900, 1e-3)], [100])

    assert_matches(values, torch_learning_rates(sequential, 0.1, len(steps)))


def test_in_front_of_a_keras_schedule(evaluate):
    decay = keras.optimizers.schedules.ExponentialDecay(0.05, 100, 0.5)
    values = evaluate(LinearWarmup(decay, 200), STEPS)
    expected = reference.linear_warmup(STEPS, lambda s: reference.exponential_decay(s, 0.05, 100, 0.5), 200)
    assert_matches(values, expected)
    assert values.max() == pytest.approx(0.05, rel=1e-6)


@pytest.mark.parametrize(
    "arguments, name",
    [({"target": -0.1}, "target"), ({"target": "fast"}, "target"), ({"warmup_steps": -1}, "warmup_steps"),
     ({"warmup_steps": 1.5}, "warmup_steps"), ({"initial_learning_rate": -1.0}, "initial_learning_rate")],
)
def test_bad_arguments_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        LinearWarmup(**{"target": 0.1, "warmup_steps": 10, **arguments})
