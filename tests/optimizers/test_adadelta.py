"""lab.optimizers.Adadelta against its NumPy reference and against keras.optimizers.Adadelta."""

import keras
import pytest

from lab.optimizers import Adadelta
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


def test_matches_reference():
    # the paper's rate 1.0; a large epsilon makes the first steps (√ε/√E[g²]) visible
    for lr, lrs in harness.learning_rate_cases(1.0, 2.0):
        harness.assert_matches_reference(Adadelta(lr, rho=0.8, epsilon=1e-2), reference.Adadelta(0.8, 1e-2), lrs)


def test_fit_matches_keras_twin():
    lab = harness.fit_weights(Adadelta(1.0, epsilon=1e-4))
    twin = harness.fit_weights(keras.optimizers.Adadelta(1.0, epsilon=1e-4))
    harness.assert_same_weights(lab, twin)
