"""lab.optimizers.ScheduleFreeSGD against the paper's form (x and z kept explicitly, NumPy); its
evaluation weights are the averaged iterate x."""

import keras
import numpy as np
import pytest

from lab.optimizers import ScheduleFreeSGD
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic

ARGUMENTS = {"momentum": 0.8, "warmup_steps": 4, "weight_power": 1.0, "weight_learning_rate_power": 2.0, "weight_decay": 0.1}


def test_matches_reference():
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        harness.assert_matches_reference(ScheduleFreeSGD(lr, **ARGUMENTS), reference.ScheduleFreeSGD(**ARGUMENTS), lrs)


def test_evaluation_weights_are_the_average():
    optimizer = ScheduleFreeSGD(0.05, **ARGUMENTS)
    harness.run_optimizer(optimizer)
    expected = reference.ScheduleFreeSGD(**ARGUMENTS)
    harness.run_reference(expected, harness.constant_learning_rates(0.05))
    (x,) = optimizer.evaluation_weights()
    x = keras.ops.convert_to_numpy(x)
    scale = np.abs(expected.x).max()
    np.testing.assert_allclose(x, expected.x, rtol=0, atol=10 * harness.RTOL[harness.variable_dtype()] * scale)
    assert np.abs(x - keras.ops.convert_to_numpy(optimizer.variables[-1])).max() > 1e-3  # x is not y


@pytest.mark.parametrize(
    "arguments, name",
    [({"momentum": 0.0}, "momentum"), ({"momentum": 1.0}, "momentum"), ({"warmup_steps": -1}, "warmup_steps"),
     ({"weight_power": -1.0}, "weight_power"), ({"weight_learning_rate_power": -2.0}, "weight_learning_rate_power")],
)
def test_bad_arguments_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        ScheduleFreeSGD(**arguments)
