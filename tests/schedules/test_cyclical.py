"""CyclicalLR against a transcription of PyTorch CyclicLR.get_lr."""

import numpy as np
import pytest

from lab.schedules import CyclicalLR
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches

STEPS = np.arange(0, 1501)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "arguments",
    [
        {"base_learning_rate": 0.001, "max_learning_rate": 0.1, "step_size": 200},
        {"base_learning_rate": 0.001, "max_learning_rate": 0.1, "step_size": 150, "mode": "triangular2"},
        {"base_learning_rate": 0.001, "max_learning_rate": 0.1, "step_size": 7, "mode": "exp_range", "gamma": 0.998},
        {"base_learning_rate": 0.1, "max_learning_rate": 0.01, "step_size": 333},
    ],
)
def test_cyclical_matches_pytorch_reference(evaluate, arguments):
    values = evaluate(CyclicalLR(**arguments), STEPS)
    assert_matches(values, reference.cyclic_lr(STEPS, **arguments))
    size = arguments["step_size"]
    # every cycle starts at the base rate
    np.testing.assert_allclose(values[:: 2 * size], arguments["base_learning_rate"], rtol=1e-6)


@pytest.mark.backend_agnostic
def test_triangular2_halves_the_amplitude_each_cycle(evaluate):
    values = evaluate(CyclicalLR(0.0, 0.8, step_size=100, mode="triangular2"), [100, 300, 500, 700])
    np.testing.assert_allclose(values, [0.8, 0.4, 0.2, 0.1], rtol=1e-6)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "arguments, name",
    [
        ({"base_learning_rate": -0.1}, "base_learning_rate"),
        ({"max_learning_rate": -0.1}, "max_learning_rate"),
        ({"step_size": 0}, "step_size"),
        ({"mode": "triangle"}, "mode"),
        ({"gamma": 0.0}, "gamma"),
        ({"gamma": 1.1}, "gamma"),
    ],
)
def test_bad_arguments_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        CyclicalLR(**{"base_learning_rate": 0.01, "max_learning_rate": 0.1, "step_size": 10, **arguments})
