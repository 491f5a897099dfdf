"""lab.optimizers.Nadam against its NumPy reference and against keras.optimizers.Nadam."""

import keras
import pytest

from lab.optimizers import Nadam
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


def test_matches_reference():
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        optimizer = Nadam(lr, beta_1=0.8, beta_2=0.95, epsilon=1e-3)
        harness.assert_matches_reference(optimizer, reference.Nadam(0.8, 0.95, 1e-3), lrs)


def test_fit_matches_keras_twin():
    harness.assert_same_weights(harness.fit_weights(Nadam(0.01)), harness.fit_weights(keras.optimizers.Nadam(0.01)))


def test_running_product_is_an_optimizer_variable():
    """Saved and restored with the other slots (so a reloaded model resumes exactly)."""
    optimizer = Nadam()
    variable = keras.Variable([1.0, 2.0])
    optimizer.build([variable])
    assert any(v is optimizer.mu_product for v in optimizer.variables)
