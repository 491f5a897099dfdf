"""lab.optimizers.RMSprop against its NumPy reference and against keras.optimizers.RMSprop."""

import keras
import numpy as np
import pytest

from lab.optimizers import RMSprop
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic

VARIANTS = [
    {},
    {"momentum": 0.8},
    {"centered": True},
    {"momentum": 0.5, "centered": True, "epsilon": 1e-4},
]


@pytest.mark.parametrize("arguments", VARIANTS, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()) or "plain")
def test_matches_reference(arguments):
    for lr, lrs in harness.learning_rate_cases(0.02, 0.05):
        harness.assert_matches_reference(RMSprop(lr, rho=0.8, **arguments), reference.RMSprop(rho=0.8, **arguments), lrs)


@pytest.mark.parametrize("arguments", [{}, {"momentum": 0.5, "centered": True}], ids=["plain", "momentum-centered"])
def test_fit_matches_keras_twin(arguments):
    lab = harness.fit_weights(RMSprop(0.01, **arguments))
    twin = harness.fit_weights(keras.optimizers.RMSprop(0.01, **arguments))
    harness.assert_same_weights(lab, twin)


def test_slots():
    optimizer = RMSprop(momentum=0.5, centered=True)
    optimizer.build([keras.Variable(np.zeros(3, "float32"))])
    assert len(optimizer.velocities) == len(optimizer.momentums) == len(optimizer.average_gradients) == 1
    plain = RMSprop()
    plain.build([keras.Variable(np.zeros(3, "float32"))])
    assert plain.momentums == [] and plain.average_gradients == []
