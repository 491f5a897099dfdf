"""lab.optimizers.Lion against its NumPy reference and against keras.optimizers.Lion."""

import keras
import numpy as np
import pytest

from lab.optimizers import Lion
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


def test_matches_reference():
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        harness.assert_matches_reference(Lion(lr, beta_1=0.8, beta_2=0.95), reference.Lion(0.8, 0.95), lrs)


def test_every_coordinate_moves_by_the_learning_rate():
    trajectory = harness.run_optimizer(Lion(0.01), steps=3)
    np.testing.assert_allclose(np.abs(np.diff(trajectory, axis=0)), 0.01, rtol=1e-6)


def test_fit_matches_keras_twin():
    harness.assert_same_weights(harness.fit_weights(Lion(0.01)), harness.fit_weights(keras.optimizers.Lion(0.01)))
