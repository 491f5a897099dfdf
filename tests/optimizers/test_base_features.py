"""What the keras.optimizers.Optimizer base class provides still works with every lab optimiser:
weight decay (with exclusions), the three kinds of clipping, EMA of the weights, gradient
accumulation, loss scaling and jit compilation. Each is checked against the Keras built-in twin
with the same option on, and checked to have had an effect."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.optimizers import harness
from tests.optimizers.twins import pair, twin_params

pytestmark = pytest.mark.backend_agnostic

STEPS = 6

OPTIONS = {
    "weight_decay": {"weight_decay": 0.2},
    "clipnorm": {"clipnorm": 0.5},
    "clipvalue": {"clipvalue": 0.2},
    "global_clipnorm": {"global_clipnorm": 0.5},
    "use_ema": {"use_ema": True, "ema_momentum": 0.5, "ema_overwrite_frequency": 3},
    "gradient_accumulation_steps": {"gradient_accumulation_steps": 2},
    "loss_scale_factor": {"loss_scale_factor": 128.0},
}


def run(optimizer: keras.optimizers.Optimizer, exclude_bias: bool = False, gradient_scale: float = 1.0) -> list[np.ndarray]:
    """A few eager ``apply`` steps on a named kernel and bias with changing gradients."""
    kernel = keras.Variable(harness.THETA_0, dtype="float32", name="kernel")
    bias = keras.Variable(np.array([0.5, -1.5]), dtype="float32", name="bias")
    if exclude_bias:
        optimizer.exclude_from_weight_decay(var_names=["bias"])
    for step in range(STEPS):
        gradients = [harness.gradient(np.array(kernel.numpy()), step), 3.0 * np.array(bias.numpy()) + np.cos(step)]
        # tensors, not NumPy arrays: Keras's torch built-ins hand them straight to torch._foreach ops
        scaled = [keras.ops.convert_to_tensor(np.float32(gradient_scale) * g.astype("float32")) for g in gradients]
        optimizer.apply(scaled, [kernel, bias])
    return [np.array(kernel.numpy()), np.array(bias.numpy())]


def without_option(name: str) -> keras.optimizers.Optimizer:
    """The lab optimiser with none of the options (AdamW's and Muon's built-in decay switched off)."""
    return pair(name, **({"weight_decay": 0.0} if name in ("AdamW", "Muon") else {}))[0]()


@pytest.mark.parametrize("name", twin_params())
def test_options_match_twin(name):
    """One test per optimiser, looping over the options (a Keras session per test costs ~0.5 s)."""
    plain = run(without_option(name))
    for option, options in OPTIONS.items():
        make_lab, make_twin = pair(name, **options)
        gradient_scale = options.get("loss_scale_factor", 1.0)  # gradients of a scaled loss
        exclude = option == "weight_decay"
        lab = run(make_lab(), exclude, gradient_scale)
        twin = run(make_twin(), exclude, gradient_scale)
        for a, b in zip(lab, twin):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{name} with {option}")
        if option == "loss_scale_factor":  # unscaled: the same as the run without scaling
            expected_same = run(pair(name)[0]())
            for a, b in zip(lab, expected_same):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{name} with {option}")
            continue
        if option == "weight_decay":  # the excluded bias is not decayed
            np.testing.assert_allclose(lab[1], plain[1], rtol=1e-5, atol=1e-6, err_msg=f"{name}: bias was decayed")
        if name == "Lion" and option in ("clipnorm", "global_clipnorm"):
            continue  # Lion uses only the sign of its update: rescaling every gradient changes nothing here
        moved = max(np.abs(a - b).max() for a, b in zip(lab, plain))
        assert moved > 1e-4, f"{name}: {option} had no effect"


@pytest.mark.parametrize("name", twin_params())
def test_loss_scale_optimizer_matches_twin(name):
    if keras.backend.backend() == "jax":
        pytest.skip(
            "an eager LossScaleOptimizer.apply raises UnexpectedTracerError on JAX, with the built-in "
            "optimisers too; loss scaling on JAX is covered by test_mixed_float16_fit_matches_twin"
        )
    make_lab, make_twin = pair(name)
    lab = run(keras.optimizers.LossScaleOptimizer(make_lab(), initial_scale=256.0), gradient_scale=256.0)
    twin = run(keras.optimizers.LossScaleOptimizer(make_twin(), initial_scale=256.0), gradient_scale=256.0)
    harness.assert_same_weights(lab, twin, rtol=1e-5, atol=1e-6)
    harness.assert_same_weights(lab, run(make_lab()), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SGD", "Nadam"])  # Nadam: the one with its own _backend_update_step
def test_jit_compiled_fit_matches_twin(name):
    make_lab, make_twin = pair(name)
    lab = harness.fit_weights(make_lab(), epochs=1, jit_compile=True)
    twin = harness.fit_weights(make_twin(), epochs=1, jit_compile=True)
    harness.assert_same_weights(lab, twin)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Adam"])
def test_mixed_float16_fit_matches_twin(name):
    """Under mixed_float16, compile wraps the optimiser in a LossScaleOptimizer."""
    make_lab, make_twin = pair(name)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        x, y = harness.tiny_data()
        weights = []
        for optimizer in (make_lab(), make_twin()):
            model = harness.tiny_model(0)
            model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
            model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
            weights.append([np.array(w, dtype=np.float64) for w in model.get_weights()])
    finally:
        keras.config.set_dtype_policy(previous)
    harness.assert_same_weights(weights[0], weights[1], rtol=1e-3, atol=1e-4)
