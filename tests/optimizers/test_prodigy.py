"""lab.optimizers.Prodigy against a NumPy port of the reference package (prodigyopt 1.1.2; PyTorch has
no Prodigy), on two variables: its step size d comes from sums over all of them."""

import keras
import numpy as np
import pytest

from lab.optimizers import Prodigy
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic

# lab arguments; the reference names decoupled_weight_decay `decouple`
CONFIGURATIONS = {
    "defaults": {},
    "bias_correction_growth_rate_decoupled_decay": {
        "use_bias_correction": True, "growth_rate": 2.0, "d0": 1e-4, "weight_decay": 0.1,
    },
    "safeguard_no_first_moment_coupled_decay": {
        "safeguard_warmup": True, "beta_1": 0.0, "beta_3": 0.9, "d_coef": 2.0, "weight_decay": 0.05,
        "decoupled_weight_decay": False,
    },
}


def split(theta: np.ndarray) -> list[np.ndarray]:
    """Two variables of different shapes: the first row and the second row as a column."""
    return [theta[0], theta[1].reshape(3, 1)]


def gradients(parameters: list[np.ndarray], step: int) -> list[np.ndarray]:
    return split(harness.gradient(np.stack([parameters[0], parameters[1].ravel()]), step))


def run(optimizer, learning_rates):
    dtype = harness.variable_dtype()
    variables = [keras.Variable(p, dtype=dtype) for p in split(harness.THETA_0)]
    trajectory, ds = [], []
    for step in range(len(learning_rates)):
        values = [np.array(v.numpy(), dtype=np.float64) for v in variables]
        trajectory.append(values)
        optimizer.apply([keras.ops.convert_to_tensor(g, dtype=dtype) for g in gradients(values, step)], variables)
        ds.append(float(keras.ops.convert_to_numpy(optimizer.d)))
    trajectory.append([np.array(v.numpy(), dtype=np.float64) for v in variables])
    return trajectory, ds


def run_reference(expected, learning_rates):
    """In the variables' dtype (Python-float scalars, as the reference package on torch): with
    ``d₀ = 1e-6`` the first displacements ``θ₀ − θ`` are below float32's resolution of θ, so the
    reference's own float32 run departs from its float64 run by up to 7% of the scale (defaults,
    constant rate); the lab's float32 run follows the float32 reference to 1e-6."""
    dtype = harness.variable_dtype()
    parameters = [p.astype(dtype) for p in split(harness.THETA_0)]
    trajectory, ds = [parameters], []
    for step, lr in enumerate(learning_rates):
        grads = [g.astype(dtype) for g in gradients(parameters, step)]
        parameters = [p.astype(dtype) for p in expected.step(parameters, grads, lr)]
        trajectory.append(parameters)
        ds.append(expected.d)
    return trajectory, ds


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_matches_reference(configuration):
    arguments = CONFIGURATIONS[configuration]
    reference_arguments = {("decouple" if k == "decoupled_weight_decay" else k): v for k, v in arguments.items()}
    d0 = arguments.get("d0", 1e-6)
    tolerance = harness.RTOL[harness.variable_dtype()]
    schedule = harness.schedule(1.0, 5, 0.5)
    # the rates the schedule really gives (float32): d's estimate amplifies a one-ulp difference
    scheduled = [float(keras.ops.convert_to_numpy(schedule(step))) for step in range(harness.STEPS)]
    for lr, lrs in [(1.0, harness.constant_learning_rates(1.0)), (schedule, scheduled)]:
        actual, actual_d = run(Prodigy(lr, **arguments), lrs)
        expected, expected_d = run_reference(reference.Prodigy(**reference_arguments), lrs)
        assert expected_d[-1] > 10 * d0, "d must grow"
        scale = max(np.abs(p).max() for step in expected for p in step)
        moved = max(np.abs(e - t).max() for e, t in zip(expected[-1], split(harness.THETA_0)))
        assert moved > 20 * tolerance * scale, moved
        for a, e in zip(actual, expected):
            for a_variable, e_variable in zip(a, e):
                np.testing.assert_allclose(a_variable, e_variable, rtol=0, atol=tolerance * scale)
        # d is a ratio of sums in which the rounding of θ₀ − θ is amplified (1.8e-4 seen in float32)
        np.testing.assert_allclose(actual_d, expected_d, rtol=100 * tolerance)


def test_zero_learning_rate_changes_nothing():
    """The reference returns without a step when lr = 0: weights, slots and d stay."""
    optimizer = Prodigy(lambda: 0.0)
    variable = keras.Variable(harness.THETA_0, dtype="float32")
    optimizer.apply([keras.ops.ones((2, 3))], [variable])
    np.testing.assert_array_equal(variable.numpy(), harness.THETA_0.astype("float32"))
    assert float(keras.ops.convert_to_numpy(optimizer.d)) == pytest.approx(1e-6)
    assert all(not np.any(keras.ops.convert_to_numpy(s)) for s in optimizer.gradient_sums)


@pytest.mark.parametrize(
    "arguments, name",
    [({"d0": 0.0}, "d0"), ({"d_coef": -1.0}, "d_coef"), ({"growth_rate": 0.5}, "growth_rate"),
     ({"beta_3": 1.0}, "beta_3"), ({"beta_1": 1.0}, "beta_1"), ({"weight_decay": -0.1}, "weight_decay")],
)
def test_bad_arguments_name_the_argument(arguments, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        Prodigy(**arguments)
