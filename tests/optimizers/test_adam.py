"""lab.optimizers.Adam and AdamW, both epsilon placements and AMSGrad, against the NumPy
reference and against keras.optimizers.Adam / AdamW."""

import keras
import numpy as np
import pytest

from lab.optimizers import Adam, AdamW
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("placement", ["keras", "paper"])
def test_adam_matches_reference(placement, amsgrad):
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        # a large epsilon makes the two placements differ visibly; beta_2 = 0.9 lets v forget, so
        # the AMSGrad maximum matters
        arguments = {"beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-2, "amsgrad": amsgrad}
        optimizer = Adam(lr, epsilon_placement=placement, **arguments)
        harness.assert_matches_reference(optimizer, reference.Adam(epsilon_placement=placement, **arguments), lrs)


@pytest.mark.parametrize("placement", ["keras", "paper"])
def test_adamw_matches_reference(placement):
    # under a schedule the decoupled decay lr_t·λ·θ follows the rate too
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        optimizer = AdamW(lr, weight_decay=0.1, epsilon=1e-3, epsilon_placement=placement)
        expected = reference.Adam(epsilon=1e-3, epsilon_placement=placement, weight_decay=0.1)
        harness.assert_matches_reference(optimizer, expected, lrs)


def test_placements_differ_by_the_documented_epsilon():
    """keras-ε equals paper-ε with ε_paper = ε/√(1 − β₂ᵗ): differ early, and only through ε."""
    keras_form = harness.run_optimizer(Adam(0.05, epsilon=1e-2))
    paper_form = harness.run_optimizer(Adam(0.05, epsilon=1e-2, epsilon_placement="paper"))
    assert np.abs(keras_form - paper_form).max() > 1e-3
    tiny = [harness.run_optimizer(Adam(0.05, epsilon=1e-12, epsilon_placement=p)) for p in ("keras", "paper")]
    np.testing.assert_allclose(tiny[0], tiny[1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_fit_matches_keras_twin(amsgrad):
    lab = harness.fit_weights(Adam(0.01, amsgrad=amsgrad))
    twin = harness.fit_weights(keras.optimizers.Adam(0.01, amsgrad=amsgrad))
    harness.assert_same_weights(lab, twin)


def test_adamw_fit_matches_keras_twin():
    lab = harness.fit_weights(AdamW(0.01, weight_decay=0.05))
    twin = harness.fit_weights(keras.optimizers.AdamW(0.01, weight_decay=0.05))
    harness.assert_same_weights(lab, twin)


def test_adamw_requires_weight_decay():
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW(weight_decay=None)
    assert AdamW().weight_decay == keras.optimizers.AdamW().weight_decay == 0.004
