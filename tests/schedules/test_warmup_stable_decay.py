"""WarmupStableDecay against its closed form (no Keras or PyTorch twin), every cool-down shape."""

import numpy as np
import pytest

from lab.schedules import WarmupStableDecay
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches

pytestmark = pytest.mark.backend_agnostic

STEPS = np.arange(0, 1201)


@pytest.mark.parametrize("shape", ["linear", "cosine", "1-sqrt"])
@pytest.mark.parametrize("warmup_steps, fraction, initial, minimum", [(100, 0.2, 0.0, 0.0), (0, 0.1, 0.0, 1e-3), (50, 0.95, 0.01, 1e-4), (1, 0.0005, 0.0, 0.0)])
def test_matches_reference(evaluate, shape, warmup_steps, fraction, initial, minimum):
    schedule = WarmupStableDecay(0.1, 1000, warmup_steps, fraction, shape, initial, minimum)
    values = evaluate(schedule, STEPS)
    assert_matches(values, reference.warmup_stable_decay(STEPS, 0.1, 1000, warmup_steps, fraction, shape, initial, minimum))
    decay_start = 1000 - schedule.decay_steps
    assert schedule.decay_steps == max(1, round(fraction * 1000))
    np.testing.assert_allclose(values[warmup_steps : decay_start + 1], 0.1, rtol=1e-6)  # the stable phase
    np.testing.assert_allclose(values[1000:], minimum, atol=1e-8)


@pytest.mark.parametrize(
    "arguments, name",
    [({"decay_fraction": 0.0}, "decay_fraction"), ({"decay_fraction": 1.5}, "decay_fraction"),
     ({"decay_shape": "exponential"}, "decay_shape"), ({"warmup_steps": 900}, "warmup_steps"),
     ({"total_steps": 0}, "total_steps"), ({"peak_learning_rate": -0.1}, "peak_learning_rate"),
     ({"min_learning_rate": -0.1}, "min_learning_rate")],
)
def test_bad_arguments_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        WarmupStableDecay(**{"peak_learning_rate": 0.1, "total_steps": 1000, "warmup_steps": 100, **arguments})
