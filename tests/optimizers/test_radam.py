"""lab.optimizers.RAdam against its NumPy reference and against torch.optim.RAdam."""

import numpy as np
import pytest

from lab.optimizers import RAdam
from tests.optimizers import harness, torch_reference
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


@pytest.mark.parametrize("decoupled", [False, True])
def test_matches_reference(decoupled):
    # beta_2 = 0.999: rho_t <= 5 for t <= 5 (momentum SGD), rectified Adam from t = 6
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        optimizer = RAdam(lr, beta_1=0.8, epsilon=1e-3, weight_decay=0.1, decoupled_weight_decay=decoupled)
        harness.assert_matches_reference(
            optimizer, reference.RAdam(0.8, 0.999, 1e-3, weight_decay=0.1, decoupled=decoupled), lrs
        )


@pytest.mark.parametrize("decoupled", [False, True])
def test_matches_torch(decoupled):
    torch = pytest.importorskip("torch")
    arguments = {"betas": (0.8, 0.99), "eps": 1e-3, "weight_decay": 0.1, "decoupled_weight_decay": decoupled}
    expected = torch_reference.trajectory(lambda params: torch.optim.RAdam(params, lr=0.05, foreach=False, **arguments))
    optimizer = RAdam(0.05, 0.8, 0.99, 1e-3, weight_decay=0.1, decoupled_weight_decay=decoupled)
    torch_reference.assert_matches(harness.run_optimizer(optimizer), expected)


def test_first_steps_are_momentum_sgd():
    """While rho_t <= 5 the step is lr·m̂ exactly: with a constant gradient, lr·g per step."""
    optimizer = RAdam(0.1)
    theta = harness.run_optimizer(optimizer, steps=1)
    g = harness.gradient(harness.THETA_0, 0)
    np.testing.assert_allclose(theta[1], harness.THETA_0 - 0.1 * g, rtol=1e-6)


@pytest.mark.parametrize("beta_2", [0.0, 0.5, 0.99, 0.999, 0.9999])
def test_sma_length_is_accurate_in_float32(beta_2):
    """ρ_t and 1 − β₂ᵗ in float32 against the float64 closed form, where the direct float32 form
    loses three to four digits (ρ_t is a small difference of numbers near 2/(1 − β₂))."""
    from keras import ops

    from lab.optimizers.radam import one_minus_power, sma_length

    t = np.concatenate([np.arange(1, 3001), [10**4, 10**5, 10**6]]).astype("float64")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        power = beta_2**t
        exact = 2 / (1 - beta_2) - 1 - np.where(power > 0, 2 * t * power / (1 - power), 0.0)
    steps = ops.convert_to_tensor(t, "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(sma_length(steps, beta_2, "float32")), exact, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(one_minus_power(beta_2, steps)), 1 - power, rtol=1e-6)
