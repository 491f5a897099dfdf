"""lab.optimizers.Lamb against its NumPy reference and against keras.optimizers.Lamb."""

import keras
import numpy as np
import pytest

from lab.optimizers import Lamb
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


def test_matches_reference():
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        harness.assert_matches_reference(Lamb(lr, beta_1=0.8, beta_2=0.9, epsilon=1e-3), reference.Lamb(0.8, 0.9, 1e-3), lrs)


def test_step_norm_is_learning_rate_times_weight_norm():
    trajectory = harness.run_optimizer(Lamb(0.01), steps=3)
    steps = np.linalg.norm(np.diff(trajectory, axis=0).reshape(3, -1), axis=1)
    np.testing.assert_allclose(steps, 0.01 * np.linalg.norm(trajectory[:-1].reshape(3, -1), axis=1), rtol=1e-5)


def test_fit_matches_keras_twin():
    harness.assert_same_weights(harness.fit_weights(Lamb(0.01)), harness.fit_weights(keras.optimizers.Lamb(0.01)))
