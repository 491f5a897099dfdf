"""lab.surfaces and lab.trajectory: values, minima and divergence detection."""

import numpy as np
import pytest

from lab.optimizers import SGD
from lab.surfaces import SURFACES, get_surface
from lab.trajectory import descend, divergence_step


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("name", list(SURFACES))
def test_minima_are_stationary_and_lowest_nearby(name):
    surface = get_surface(name)
    for minimum in surface.minima:
        # one SGD step from a minimum does not move: the autodiff gradient there is zero
        trajectory = descend(surface, SGD(learning_rate=1e-3), minimum, 1, dtype="float32")
        np.testing.assert_allclose(trajectory.positions[-1], minimum, atol=1e-5)
        around = np.asarray(minimum)[None, :] + 1e-2 * np.random.default_rng(0).standard_normal((20, surface.dimension))
        assert (surface.values(*around.T) >= surface.values(*np.asarray(minimum)[:, None]) - 1e-12).all()
    assert surface.minimum_value == pytest.approx(min(surface.values(*np.asarray(m)[:, None])[0] for m in surface.minima))


def test_known_values():
    assert get_surface("rosenbrock").values(np.array([-1.2]), np.array([1.0]))[0] == pytest.approx(24.2)
    assert get_surface("beale").values(np.array([3.0]), np.array([0.5]))[0] == pytest.approx(0.0)
    assert get_surface("nonconvex").minimum_value == pytest.approx(-9.0)
    assert get_surface("quadratic").minimum_value == pytest.approx(5.0)
    with pytest.raises(ValueError, match="valid surfaces"):
        get_surface("moon")


def test_divergence_step():
    assert divergence_step([1.0, 0.5, 0.1]) is None
    assert divergence_step([1.0, 5.0, 11.0, 50.0]) == 2
    assert divergence_step([1.0, np.nan]) == 1
    assert divergence_step([-2.0, -9.0], minimum_value=-9.0) is None
