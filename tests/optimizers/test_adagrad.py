"""lab.optimizers.Adagrad against its NumPy reference and against keras.optimizers.Adagrad."""

import keras
import pytest

from lab.optimizers import Adagrad
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


@pytest.mark.parametrize("initial_accumulator_value", [0.1, 0.0])
def test_matches_reference(initial_accumulator_value):
    for lr, lrs in harness.learning_rate_cases(0.3, 0.5):
        optimizer = Adagrad(lr, initial_accumulator_value=initial_accumulator_value)
        harness.assert_matches_reference(optimizer, reference.Adagrad(initial_accumulator_value), lrs)


def test_fit_matches_keras_twin():
    harness.assert_same_weights(
        harness.fit_weights(Adagrad(0.1)), harness.fit_weights(keras.optimizers.Adagrad(0.1))
    )
