"""lab.optimizers.Adafactor against its NumPy reference and against keras.optimizers.Adafactor."""

import keras
import numpy as np
import pytest

from lab.optimizers import Adafactor
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


def test_matches_reference():
    """The 2×3 variable takes the factored second moment; the rates cross 1/√t within the run."""
    for lr, lrs in harness.learning_rate_cases(0.3, 0.5):
        optimizer = Adafactor(lr, beta_2_decay=-0.6, epsilon_2=1e-2, clip_threshold=0.8)
        harness.assert_matches_reference(optimizer, reference.Adafactor(-0.6, 1e-30, 1e-2, 0.8), lrs)


def test_factored_variables_keep_rows_and_columns_only():
    optimizer = Adafactor()
    kernel, bias = keras.Variable(np.ones((4, 3)), name="kernel"), keras.Variable(np.ones(3), name="bias")
    optimizer.build([kernel, bias])
    shapes = sorted(tuple(v.shape) for v in optimizer.variables[2:])  # past iterations and learning rate
    assert shapes == [(3,), (3,), (4,)]  # the kernel's columns and rows, the bias's full second moment


def test_fit_matches_keras_twin():
    """Dense kernels (factored) and biases (not), against Keras's implementation of both."""
    lab = harness.fit_weights(Adafactor(0.05))
    twin = harness.fit_weights(keras.optimizers.Adafactor(0.05))
    harness.assert_same_weights(lab, twin)
