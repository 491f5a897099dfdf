"""Constant against its closed form over a long range, and its argument check."""

import numpy as np
import pytest

from lab.schedules import Constant
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches

STEPS = np.arange(0, 1501)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("learning_rate", [0.1, 3e-4, 0.0])
def test_constant_matches_reference(evaluate, learning_rate):
    values = evaluate(Constant(learning_rate), STEPS)
    assert_matches(values, reference.constant(STEPS, learning_rate), rtol=1e-7)
    assert np.all(values == np.float32(learning_rate))  # the float32 of the rate, at every step


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("bad", [-0.1, float("nan"), "fast"])
def test_constant_refuses_a_bad_rate(bad):
    with pytest.raises(ValueError, match="learning_rate"):
        Constant(bad)
