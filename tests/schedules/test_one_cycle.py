"""OneCycle against a transcription of PyTorch OneCycleLR.get_lr (three_phase=False)."""

import numpy as np
import pytest

from lab.schedules import OneCycle
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches

STEPS = np.arange(0, 1201)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "arguments",
    [
        {"max_learning_rate": 0.1, "total_steps": 1000},
        {"max_learning_rate": 0.1, "total_steps": 1000, "anneal": "linear"},
        {"max_learning_rate": 1.0, "total_steps": 1001, "pct_start": 0.25, "div_factor": 10.0, "final_div_factor": 100.0},
        {"max_learning_rate": 0.01, "total_steps": 1200, "pct_start": 0.9, "anneal": "linear"},
    ],
)
def test_one_cycle_matches_pytorch_reference(evaluate, arguments):
    schedule = OneCycle(**arguments)
    values = evaluate(schedule, STEPS)
    assert_matches(values, reference.one_cycle(STEPS, **arguments))
    total = arguments["total_steps"]
    assert values[0] == pytest.approx(schedule.initial_learning_rate, rel=1e-6)
    assert values.max() == pytest.approx(arguments["max_learning_rate"], rel=1e-5)
    assert values[total - 1] == pytest.approx(schedule.min_learning_rate, rel=1e-4)
    # past the cycle the rate stays at the minimum
    np.testing.assert_allclose(values[total - 1 :], schedule.min_learning_rate, rtol=1e-4)


@pytest.mark.backend_agnostic
def test_one_cycle_derived_rates():
    schedule = OneCycle(0.1, 100, div_factor=25.0, final_div_factor=1e4)
    assert schedule.initial_learning_rate == pytest.approx(0.004)
    assert schedule.min_learning_rate == pytest.approx(4e-7)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "arguments, name",
    [
        ({"max_learning_rate": 0.0}, "max_learning_rate"),
        ({"max_learning_rate": -0.1}, "max_learning_rate"),
        ({"total_steps": 0}, "total_steps"),
        ({"pct_start": 0.0}, "pct_start"),
        ({"pct_start": 1.0}, "pct_start"),
        ({"pct_start": 1.5}, "pct_start"),
        ({"total_steps": 3, "pct_start": 0.3}, "pct_start"),
        ({"div_factor": 0.0}, "div_factor"),
        ({"final_div_factor": -1.0}, "final_div_factor"),
        ({"anneal": "cosine"}, "anneal"),
    ],
)
def test_bad_arguments_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        OneCycle(**{"max_learning_rate": 0.1, "total_steps": 100, **arguments})
