"""lab.optimizers.Ftrl against its NumPy reference and against keras.optimizers.Ftrl."""

import keras
import pytest

from lab.optimizers import Ftrl
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic

# every term on: the L1 threshold, both L2 terms, β and a power other than -1/2
ARGUMENTS = {
    "learning_rate_power": -0.6,
    "initial_accumulator_value": 0.2,
    "l1_regularization_strength": 0.05,
    "l2_regularization_strength": 0.1,
    "l2_shrinkage_regularization_strength": 0.05,
    "beta": 0.3,
}


def _reference() -> reference.Ftrl:
    return reference.Ftrl(-0.6, 0.2, l1=0.05, l2=0.1, l2_shrinkage=0.05, beta=0.3)


def test_matches_reference():
    for lr, lrs in harness.learning_rate_cases(0.5, 1.0):
        harness.assert_matches_reference(Ftrl(lr, **ARGUMENTS), _reference(), lrs)


def test_l1_makes_weights_exactly_zero():
    """Where the accumulated |z| stays below λ₁ the weight is 0 exactly, not small."""
    trajectory = harness.run_optimizer(Ftrl(0.5, l1_regularization_strength=3.0), steps=3)
    assert (trajectory[1:] == 0).any() and (trajectory[1:] != 0).any()


def test_fit_matches_keras_twin():
    lab = harness.fit_weights(Ftrl(0.1, **ARGUMENTS))
    twin = harness.fit_weights(keras.optimizers.Ftrl(0.1, **ARGUMENTS))
    harness.assert_same_weights(lab, twin)
    assert any((w == 0).any() for w in lab)  # the L1 term is active in this run
