"""lab.optimizers.Muon: the Newton–Schulz orthogonalisation against NumPy, both paths (Muon and the
AdamW fallback) against NumPy references, and model.fit against keras.optimizers.Muon."""

import keras
import numpy as np
import pytest

from lab.optimizers import Muon
from tests.optimizers import harness
from tests.reference import optimizers as reference

pytestmark = pytest.mark.backend_agnostic


@pytest.mark.parametrize("shape", [(3, 5), (6, 4)], ids=["wide", "tall"])
def test_newton_schulz_matches_numpy_and_orthogonalises(shape):
    dtype = harness.variable_dtype()
    matrix = np.random.default_rng(0).normal(size=shape) * 7.0
    result = np.array(Muon().orthogonalize(keras.ops.convert_to_tensor(matrix, dtype=dtype), 5), dtype=np.float64)
    expected = reference.newton_schulz(matrix, 5)
    np.testing.assert_allclose(result, expected, rtol=0, atol=harness.RTOL[dtype])
    # U·S'·Vᵀ: the singular vectors of the input, singular values moved into [0.68, 1.21]
    u, _, vt = np.linalg.svd(matrix, full_matrices=False)
    rotated = u.T @ result @ vt.T
    np.testing.assert_allclose(rotated - np.diag(np.diag(rotated)), 0.0, atol=1e-4)
    assert np.all((np.diag(rotated) > 0.68) & (np.diag(rotated) < 1.21)), np.diag(rotated)


def test_muon_step_matches_reference():
    """The 2×3 variable takes the Muon step, with its own weight decay."""
    for lr, lrs in harness.learning_rate_cases(0.05, 0.1):
        optimizer = Muon(lr, weight_decay=0.1, momentum=0.9)
        harness.assert_matches_reference(optimizer, reference.Muon(momentum=0.9, weight_decay=0.1), lrs)
    plain = Muon(0.05, weight_decay=None, nesterov=False, rms_rate=None, ns_steps=3)
    expected = reference.Muon(nesterov=False, rms_rate=None, ns_steps=3, weight_decay=0.0)
    harness.assert_matches_reference(plain, expected, harness.constant_learning_rates(0.05))


def test_adamw_fallback_matches_reference():
    """A variable named in ``exclude_layers`` takes AdamW at lr·adam_lr_ratio, with AdamW's decay."""
    arguments = {"adam_beta_1": 0.8, "adam_beta_2": 0.9, "epsilon": 1e-3, "adam_weight_decay": 0.1, "adam_lr_ratio": 0.5}
    for lr, lrs in harness.learning_rate_cases(0.1, 0.2):
        optimizer = Muon(lr, exclude_layers=["^variable"], weight_decay=0.3, **arguments)
        harness.assert_matches_reference(optimizer, reference.Muon(adamw=True, **arguments), lrs)


def named_model(seed: int = 0) -> keras.Model:
    """The harness's tiny model with stable layer names, so ``exclude_layers`` finds the output layer."""
    return harness.tiny_model(seed, names=("hidden", "output"))


def test_fit_matches_keras_twin():
    """Hidden kernel: Muon; output kernel (excluded) and biases: AdamW."""
    arguments = {"learning_rate": 0.02, "exclude_layers": ["output"]}
    optimizer = Muon(**arguments)
    lab = harness.fit_weights(optimizer, model_builder=named_model)
    uses_adamw = [optimizer._should_use_adamw(variable) for variable in optimizer._trainable_variables]
    assert uses_adamw == [False, True, True, True]  # hidden kernel and bias, output kernel and bias
    twin = harness.fit_weights(keras.optimizers.Muon(**arguments), model_builder=named_model)
    harness.assert_same_weights(lab, twin)
