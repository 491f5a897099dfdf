"""PolynomialDecay and LinearDecay against their closed forms, Keras's PolynomialDecay and
PyTorch's PolynomialLR / LinearLR."""

import keras
import numpy as np
import pytest

from lab.schedules import LinearDecay, PolynomialDecay
from tests.reference import schedules as reference
from tests.schedules.conftest import assert_matches, torch_learning_rates

pytestmark = pytest.mark.backend_agnostic

STEPS = np.arange(0, 1501)


@pytest.mark.parametrize("cycle", [False, True])
@pytest.mark.parametrize("decay_steps, end, power", [(400, 1e-4, 1.0), (333, 0.01, 0.5), (1000, 0.0, 2.0), (1, 0.001, 1.5)])
def test_polynomial_decay_matches_reference_and_keras(evaluate, cycle, decay_steps, end, power):
    ours = PolynomialDecay(0.1, decay_steps, end, power, cycle)
    twin = keras.optimizers.schedules.PolynomialDecay(0.1, decay_steps, end, power, cycle)
    values = evaluate(ours, STEPS)  # eager and compiled agree (no NaN where the decay ends)
    assert_matches(values, reference.polynomial_decay(STEPS, 0.1, decay_steps, end, power, cycle))
    # the twin eagerly: under XLA Keras's class gives NaN where 1 − t/T = 0 and power < 1; its
    # float32 1 − t/T (ours is (T − t)/T) is off by up to 5e-8 of the peak near the end
    twin_values = keras.ops.convert_to_numpy(twin(keras.ops.convert_to_tensor(STEPS))).astype("float64")
    np.testing.assert_allclose(values, twin_values, rtol=1e-6, atol=1e-6 * 0.1)
    assert ours.get_config() == twin.get_config()


def test_cycle_restarts_exactly_at_multiples_of_the_decay_steps(evaluate):
    # with T = 30, XLA's t/T at t = 90 is 3.0000002; its ceiling must not start the next period early
    steps = np.arange(0, 301)
    values = evaluate(PolynomialDecay(0.1, 30, end_learning_rate=0.001, cycle=True), steps)
    assert_matches(values, reference.polynomial_decay(steps, 0.1, 30, 0.001, cycle=True))
    np.testing.assert_allclose(values[[30, 60, 90, 120, 270]], 0.001, rtol=1e-6)


@pytest.mark.parametrize("power", [1.0, 2.0, 0.7])
def test_polynomial_decay_to_zero_matches_torch(evaluate, power):
    torch = pytest.importorskip("torch")
    expected = torch_learning_rates(
        lambda optimizer: torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=700, power=power), 0.1, len(STEPS)
    )
    # PyTorch multiplies per-step factors: its float64 rates drift by up to ~3e-6 of the peak
    values = evaluate(PolynomialDecay(0.1, 700, end_learning_rate=0.0, power=power), STEPS)
    np.testing.assert_allclose(values, expected, rtol=2e-5, atol=1e-5 * 0.1)


@pytest.mark.parametrize("decay_steps, end", [(1000, 0.0), (250, 0.02), (1, 0.05)])
def test_linear_decay_matches_reference_and_torch(evaluate, decay_steps, end):
    values = evaluate(LinearDecay(0.1, decay_steps, end), STEPS)
    assert_matches(values, reference.polynomial_decay(STEPS, 0.1, decay_steps, end, 1.0))
    torch = pytest.importorskip("torch")
    expected = torch_learning_rates(
        lambda optimizer: torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, end / 0.1, total_iters=decay_steps),
        0.1,
        len(STEPS),
    )
    assert_matches(values, expected)
    assert values[decay_steps:].max() == pytest.approx(end, abs=1e-8)


@pytest.mark.parametrize(
    "arguments, name",
    [
        ({"initial_learning_rate": -0.1}, "initial_learning_rate"),
        ({"decay_steps": 0}, "decay_steps"),
        ({"decay_steps": 2.5}, "decay_steps"),
        ({"end_learning_rate": -1.0}, "end_learning_rate"),
        ({"power": 0.0}, "power"),
        ({"cycle": "yes"}, "cycle"),
    ],
)
def test_bad_arguments_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        PolynomialDecay(**{"initial_learning_rate": 0.1, "decay_steps": 10, **arguments})
    if name not in ("power", "cycle"):
        with pytest.raises(ValueError, match=f"`{name}`"):
            LinearDecay(**{"initial_learning_rate": 0.1, "decay_steps": 10, **arguments})
