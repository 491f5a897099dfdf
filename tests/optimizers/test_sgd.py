"""lab.optimizers.SGD: every momentum style, with and without Nesterov, against its NumPy
reference (constant LR and a schedule) and against keras.optimizers.SGD on model.fit."""

import keras
import numpy as np
import pytest

from lab.optimizers import SGD
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic

STYLES = ["keras", "heavy_ball", "ema"]


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("style", STYLES)
def test_matches_reference(style, nesterov):
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        optimizer = SGD(learning_rate=lr, momentum=0.9, nesterov=nesterov, momentum_style=style)
        harness.assert_matches_reference(optimizer, reference.SGD(0.9, nesterov, style), lrs)


def test_plain_gradient_descent_matches_reference():
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        harness.assert_matches_reference(SGD(lr), reference.SGD(0.0), lrs)


@pytest.mark.parametrize("nesterov", [False, True])
def test_heavy_ball_equals_keras_form_under_constant_rate_only(nesterov):
    """v_keras = −lr·v_heavy_ball when lr is constant; under a schedule the two part ways."""
    constant = [harness.run_optimizer(SGD(0.05, 0.9, nesterov, momentum_style=s)) for s in ("keras", "heavy_ball")]
    np.testing.assert_allclose(constant[0], constant[1], rtol=1e-5, atol=1e-6)
    scheduled = [
        harness.run_optimizer(SGD(harness.schedule(), 0.9, nesterov, momentum_style=s)) for s in ("keras", "heavy_ball")
    ]
    assert np.abs(scheduled[0][-1] - scheduled[1][-1]).max() > 1e-2


def test_ema_equals_heavy_ball_with_scaled_rate():
    ema = harness.run_optimizer(SGD(0.5, 0.9, momentum_style="ema"))
    heavy_ball = harness.run_optimizer(SGD(0.05, 0.9, momentum_style="heavy_ball"))
    np.testing.assert_allclose(ema, heavy_ball, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_fit_matches_keras_twin(momentum, nesterov):
    lab = harness.fit_weights(SGD(0.1, momentum, nesterov))
    twin = harness.fit_weights(keras.optimizers.SGD(0.1, momentum, nesterov))
    initial = [np.array(w) for w in harness.tiny_model(0).get_weights()]
    assert max(np.abs(a - b).max() for a, b in zip(lab, initial)) > 1e-2
    harness.assert_same_weights(lab, twin)


def test_no_slot_without_momentum():
    optimizer = SGD(0.1)
    optimizer.build([keras.Variable(np.zeros(3, "float32"))])
    assert optimizer.velocities == []
