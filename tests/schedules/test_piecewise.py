"""PiecewiseConstant against its closed form and Keras's PiecewiseConstantDecay; from_milestones
against PyTorch's MultiStepLR."""

import keras
import numpy as np
import pytest

from lab.schedules import PiecewiseConstant
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches, torch_learning_rates

pytestmark = pytest.mark.backend_agnostic

STEPS = np.arange(0, 1201)


@pytest.mark.parametrize(
    "boundaries, values",
    [([100, 500, 1000], [0.1, 0.05, 0.01, 0.001]), ([0], [1.0, 0.5]), ([], [0.3]), ([7, 8, 9], [0.4, 0.3, 0.2, 0.1])],
)
def test_matches_reference_and_keras(evaluate, boundaries, values):
    ours = PiecewiseConstant(boundaries, values)
    result = evaluate(ours, STEPS)
    assert_matches(result, reference.piecewise_constant(STEPS, boundaries, values))
    if boundaries:  # Keras's class needs at least one boundary
        twin = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
        np.testing.assert_allclose(result, twin_values(evaluate, twin), rtol=1e-7)
        assert ours.get_config() == twin.get_config()
        # a boundary belongs to the piece before it
        assert result[boundaries[0]] == pytest.approx(values[0]) and result[boundaries[0] + 1] == pytest.approx(values[1])


def twin_values(evaluate, twin) -> np.ndarray:
    if keras.backend.backend() == "torch":
        # on torch Keras's class adds a vector into a 0-d tensor in place and fails: step by step
        return np.array([float(keras.ops.convert_to_numpy(twin(int(step)))) for step in STEPS])
    return evaluate(twin, STEPS)


@pytest.mark.parametrize("milestones, gamma", [([300, 800], 0.1), ([1, 2, 3, 1000], 0.5)])
def test_from_milestones_matches_torch_multistep(evaluate, milestones, gamma):
    values = evaluate(PiecewiseConstant.from_milestones(0.1, milestones, gamma), STEPS)
    assert_matches(values, reference.multi_step(STEPS, 0.1, milestones, gamma))
    torch = pytest.importorskip("torch")
    expected = torch_learning_rates(
        lambda optimizer: torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma), 0.1, len(STEPS)
    )
    assert_matches(values, expected)
    # PyTorch switches at the milestone itself
    assert values[milestones[0]] == pytest.approx(0.1 * gamma) and values[milestones[0] - 1] == pytest.approx(0.1)


@pytest.mark.parametrize(
    "arguments, name",
    [
        ({"boundaries": [10, 5], "values": [0.1, 0.2, 0.3]}, "boundaries"),
        ({"boundaries": [-1], "values": [0.1, 0.2]}, "boundaries"),
        ({"boundaries": [1.5], "values": [0.1, 0.2]}, "boundaries"),
        ({"boundaries": [10], "values": [0.1]}, "values"),
        ({"boundaries": [10], "values": [0.1, -0.2]}, "values"),
        ({"boundaries": 10, "values": [0.1, 0.2]}, "boundaries"),
    ],
)
def test_bad_arguments_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        PiecewiseConstant(**arguments)


@pytest.mark.parametrize(
    "arguments, name",
    [({"milestones": [0, 10]}, "milestones"), ({"milestones": [10, 10]}, "milestones"), ({"gamma": 0.0}, "gamma"),
     ({"initial_learning_rate": -1.0}, "initial_learning_rate")],
)
def test_bad_milestones_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        PiecewiseConstant.from_milestones(**{"initial_learning_rate": 0.1, "milestones": [10], **arguments})
