"""lab.optimizers.Adamax against its NumPy reference and against keras.optimizers.Adamax."""

import keras
import pytest

from lab.optimizers import Adamax
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


def test_matches_reference():
    # β₂ = 0.8 lets u forget, so both branches of the maximum are taken
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        harness.assert_matches_reference(Adamax(lr, beta_1=0.8, beta_2=0.8, epsilon=1e-3), reference.Adamax(0.8, 0.8, 1e-3), lrs)


def test_fit_matches_keras_twin():
    harness.assert_same_weights(harness.fit_weights(Adamax(0.01)), harness.fit_weights(keras.optimizers.Adamax(0.01)))
