"""lab.optimizers.multi_tensor on PyTorch: each multi-tensor rule against the per-variable
``update_step`` it mirrors, step by step on the same weights and gradients, for every class and
option it covers; that the rule is what runs, and that a subclass overriding ``update_step`` does
not get it.

The per-variable side is the same class with ``update_step`` overridden by one that only calls
the class's own (``per_variable``), which is exactly what routes a subclass away from the rule.
Both sides run in float32; the rules compute the same arithmetic in fused kernels (``lerp``,
``addcmul``, ``addcdiv``), a different rounding, so they are checked to float32 rounding over the
run: ``rtol = 1e-6`` plus ``atol = 1e-6·max|θ|`` of the trajectory (a coordinate that crosses
zero has no useful relative error).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from lab import optimizers
from lab.optimizers import multi_tensor

pytestmark = [
    pytest.mark.backend_agnostic,
    pytest.mark.skipif(keras.backend.backend() != "torch", reason="the multi-tensor rules run on PyTorch only"),
]

STEPS = 6
RTOL = 1e-6

# (class, constructor arguments): every option each rule implements
CASES: list[tuple[type, dict[str, Any]]] = [
    (optimizers.SGD, {"learning_rate": 0.05}),
    *[
        (optimizers.SGD, {"learning_rate": 0.05, "momentum": 0.9, "nesterov": nesterov, "momentum_style": style})
        for style in ("keras", "heavy_ball", "ema")
        for nesterov in (False, True)
    ],
    (optimizers.Adagrad, {"learning_rate": 0.1}),
    (optimizers.Adagrad, {"learning_rate": 0.1, "initial_accumulator_value": 0.0, "epsilon": 1e-3}),
    *[
        (optimizers.RMSprop, {"learning_rate": 0.01, "centered": centered, "momentum": momentum})
        for centered in (False, True)
        for momentum in (0.0, 0.5)
    ],
    *[
        (optimizers.Adam, {"learning_rate": 0.05, "epsilon": 1e-2, "beta_2": 0.9, "amsgrad": amsgrad, "epsilon_placement": placement})
        for placement in ("keras", "paper")
        for amsgrad in (False, True)
    ],
    *[(optimizers.AdamW, {"learning_rate": 0.05, "weight_decay": 0.1, "epsilon_placement": p}) for p in ("keras", "paper")],
    (optimizers.AdamW, {"learning_rate": 0.05, "weight_decay": 0.1, "amsgrad": True}),
    (optimizers.Nadam, {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-3}),
    (optimizers.Lion, {"learning_rate": 0.01}),
    (optimizers.Lion, {"learning_rate": 0.01, "beta_1": 0.0}),  # signSGD
    (optimizers.Adadelta, {"learning_rate": 1.0}),
    (optimizers.Adadelta, {"learning_rate": 1.0, "rho": 0.5, "epsilon": 1e-3}),
    (optimizers.Adamax, {"learning_rate": 0.05}),
    (optimizers.Adamax, {"learning_rate": 0.05, "beta_2": 0.5, "epsilon": 1e-3}),
]

# the base class's options around the update, each with every rule
BASE_OPTIONS: dict[str, dict[str, Any]] = {
    "weight_decay": {"weight_decay": 0.2},
    "schedule": {},  # the learning rate replaced by ExponentialDecay below
    "clipnorm": {"clipnorm": 0.5},
    "use_ema": {"use_ema": True, "ema_momentum": 0.5, "ema_overwrite_frequency": 3},
    "gradient_accumulation_steps": {"gradient_accumulation_steps": 2},
    "loss_scale_factor": {"loss_scale_factor": 8.0},
}

# one typical configuration per class, for the tests that loop over something else
TYPICAL: dict[type, dict[str, Any]] = {
    optimizers.SGD: {"learning_rate": 0.05, "momentum": 0.9},
    optimizers.Adagrad: {"learning_rate": 0.1},
    optimizers.RMSprop: {"learning_rate": 0.01, "centered": True, "momentum": 0.5},
    optimizers.Adam: {"learning_rate": 0.05, "amsgrad": True},
    optimizers.AdamW: {"learning_rate": 0.05, "weight_decay": 0.1},
    optimizers.Nadam: {"learning_rate": 0.05},
    optimizers.Lion: {"learning_rate": 0.01},
    optimizers.Adadelta: {"learning_rate": 1.0},
    optimizers.Adamax: {"learning_rate": 0.05},
}

RULE_OF = {
    optimizers.SGD: multi_tensor.sgd,
    optimizers.Adagrad: multi_tensor.adagrad,
    optimizers.RMSprop: multi_tensor.rmsprop,
    optimizers.Adam: multi_tensor.adam,
    optimizers.AdamW: multi_tensor.adam,
    optimizers.Nadam: multi_tensor.nadam,
    optimizers.Lion: multi_tensor.lion,
    optimizers.Adadelta: multi_tensor.adadelta,
    optimizers.Adamax: multi_tensor.adamax,
}


def _case_id(case: tuple[type, dict[str, Any]]) -> str:
    cls, arguments = case
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in arguments.items() if k != "learning_rate")


def per_variable(cls: type, calls: list[int] | None = None) -> type:
    """``cls`` with an ``update_step`` of its own that only calls ``cls``'s: the per-variable path
    (each call appends 1 to ``calls`` when given)."""

    class PerVariable(cls):
        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            if calls is not None:
                calls.append(1)
            super().update_step(gradient, variable, learning_rate)

    return PerVariable


def weights(dtypes: tuple[str, ...] = ("float32", "float32", "float32")) -> list[keras.Variable]:
    """A matrix, a vector and a scalar, named (so weight decay and EMA see ordinary variables)."""
    values = [np.array([[1.5, -2.0, 0.3], [0.7, -0.05, 2.5]]), np.array([0.5, -1.5, 0.0]), np.array(0.8)]
    return [keras.Variable(v, dtype=d, name=f"w{i}") for i, (v, d) in enumerate(zip(values, dtypes))]


def gradients(variables: list[keras.Variable], step: int, dtype: str | None = None) -> list[Any]:
    """A changing, state-dependent gradient per variable (both signs; the scalar's is zero at step 2)."""
    result = []
    for index, variable in enumerate(variables):
        theta = np.array(variable.numpy(), dtype=np.float64)
        drift = np.sin(0.7 * step + index + np.arange(theta.size).reshape(theta.shape))
        g = 2.0 * theta + 0.5 * drift
        if index == 2 and step == 2:
            g = np.zeros_like(g)
        result.append(keras.ops.convert_to_tensor(g, dtype=dtype or variable.dtype))
    return result


def run(optimizer: keras.optimizers.Optimizer, dtypes: tuple[str, ...] = ("float32",) * 3,
        gradient_dtype: str | None = None, scale: float = 1.0, frozen: bool = False) -> list[np.ndarray]:
    """``STEPS`` eager ``apply`` calls; the weights after each step, stacked per variable.
    ``frozen``: the gradients at the initial weights, not the current ones, so that two runs get
    the same gradients even where they are rounded coarsely (float16), which would otherwise
    amplify a last-bit difference of the weights into a float16 rounding step of the gradient."""
    variables = weights(dtypes)
    initial = weights(dtypes)
    trajectory = []
    for step in range(STEPS):
        grads = [g * scale for g in gradients(initial if frozen else variables, step, gradient_dtype)]
        optimizer.apply(grads, variables)
        trajectory.append([np.array(v.numpy(), dtype=np.float64) for v in variables])
    return [np.stack(per_step) for per_step in zip(*trajectory)]


def assert_same(fast: list[np.ndarray], reference: list[np.ndarray], label: str) -> None:
    moved = max(np.abs(f[-1] - w).max() for f, w in zip(fast, [np.array(v.numpy()) for v in weights()]))
    assert moved > 1e-3, f"{label}: the run must move the weights"
    for f, r in zip(fast, reference):
        np.testing.assert_allclose(f, r, rtol=RTOL, atol=RTOL * np.abs(r).max(), err_msg=label)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_rule_equals_update_step(case):
    cls, arguments = case
    fast = cls(**arguments)
    reference = per_variable(cls)(**arguments)
    assert multi_tensor.rule_in_effect(fast) is RULE_OF[cls]
    assert multi_tensor.rule_in_effect(reference) is None
    assert_same(run(fast), run(reference), _case_id(case))


@pytest.mark.parametrize("cls", list(RULE_OF), ids=lambda cls: cls.__name__)
def test_rule_equals_update_step_with_base_options(cls):
    """One test per class, looping over the options (a Keras session per test costs time)."""
    default = TYPICAL[cls]
    for option, options in BASE_OPTIONS.items():
        arguments = {**default, **options}
        if option == "schedule":
            # from twice the constant rate, halving every two steps
            arguments["learning_rate"] = keras.optimizers.schedules.ExponentialDecay(2 * default["learning_rate"], 2, 0.5)
        scale = options.get("loss_scale_factor", 1.0)
        fast = run(cls(**arguments), scale=scale)
        reference = run(per_variable(cls)(**arguments), scale=scale)
        assert_same(fast, reference, f"{cls.__name__} with {option}")
        plain = run(per_variable(cls)(**default))
        if option != "loss_scale_factor":  # the option had an effect (Lion ignores a uniform clipnorm rescale)
            if not (cls is optimizers.Lion and option == "clipnorm"):
                assert max(np.abs(a - b).max() for a, b in zip(fast, plain)) > 1e-5, f"{cls.__name__}: {option} had no effect"
        else:  # unscaled: the same as the run without scaling
            for a, b in zip(fast, plain):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gradient_dtype", ["float64", "float16"])
@pytest.mark.parametrize("cls", list(RULE_OF), ids=lambda cls: cls.__name__)
def test_gradients_are_cast_to_the_variable_dtype(cls, gradient_dtype):
    """float64 or float16 gradients for float32 weights: cast first, as update_step casts them
    (uncast, float16 gradients would pull the step's arithmetic down to float16)."""
    arguments = TYPICAL[cls]
    fast = run(cls(**arguments), gradient_dtype=gradient_dtype, frozen=True)
    reference = run(per_variable(cls)(**arguments), gradient_dtype=gradient_dtype, frozen=True)
    assert_same(fast, reference, f"{cls.__name__}, {gradient_dtype} gradients")


@pytest.mark.parametrize("cls", list(RULE_OF), ids=lambda cls: cls.__name__)
def test_variables_of_two_dtypes(cls):
    """float32 and float16 weights in one optimizer: one group per dtype, each in its own dtype."""
    arguments = TYPICAL[cls]
    dtypes = ("float32", "float16", "float32")
    fast = run(cls(**arguments), dtypes=dtypes)
    reference = run(per_variable(cls)(**arguments), dtypes=dtypes)
    for f, r, dtype in zip(fast, reference, dtypes):
        # float16 rounds at ~1e-3; the two paths round the same operations, so they agree there too
        tolerance = (RTOL, RTOL * np.abs(r).max()) if dtype == "float32" else (1e-3, 1e-3)
        np.testing.assert_allclose(f, r, rtol=tolerance[0], atol=tolerance[1], err_msg=f"{cls.__name__} {dtype}")


def spy_on_rule(cls: type, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record, per call of ``cls``'s rule, how many variables it updated (the lab's registry entry
    wrapped; the rule itself still runs)."""
    calls: list[int] = []
    rule = multi_tensor._RULES[cls.update_step]

    def spy(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
        calls.append(len(variables))
        rule(optimizer, grads, variables, learning_rate)

    monkeypatch.setitem(multi_tensor._RULES, cls.update_step, spy)
    return calls


@pytest.mark.parametrize("cls", list(RULE_OF), ids=lambda cls: cls.__name__)
def test_the_rule_runs_once_per_step_for_every_variable(cls, monkeypatch):
    calls = spy_on_rule(cls, monkeypatch)
    fast = run(cls(**TYPICAL[cls]))
    assert calls == [3] * STEPS
    # had update_step run as well, every step would have been applied twice
    assert_same(fast, run(per_variable(cls)(**TYPICAL[cls])), cls.__name__)


@pytest.mark.parametrize("cls", list(RULE_OF), ids=lambda cls: cls.__name__)
def test_a_subclass_overriding_update_step_keeps_the_per_variable_path(cls, monkeypatch):
    calls = spy_on_rule(cls, monkeypatch)
    steps: list[int] = []
    run(per_variable(cls, steps)(**TYPICAL[cls]))
    assert calls == []
    assert steps == [1] * (3 * STEPS)
    run(cls(**TYPICAL[cls]))  # while the class itself does take it
    assert calls == [3] * STEPS


@pytest.mark.parametrize("cls", [optimizers.NAdamW, optimizers.RAdam, optimizers.Ftrl, optimizers.Prodigy])
def test_other_optimizers_have_no_rule(cls):
    assert multi_tensor.rule_in_effect(cls()) is None


def test_no_rule_inside_a_stateless_scope():
    """A StatelessScope's values are not updated in place: the per-variable path records them."""
    optimizer = optimizers.Adam(0.1)
    variable = keras.Variable([1.0, -2.0])
    optimizer.build([variable])
    assert multi_tensor.rule_in_effect(optimizer) is multi_tensor.adam
    with keras.StatelessScope():
        assert multi_tensor.rule_in_effect(optimizer) is None
    values, _ = optimizer.stateless_apply(
        [v.value for v in optimizer.variables], [keras.ops.convert_to_tensor([0.5, -0.5])], [variable.value]
    )
    np.testing.assert_allclose(np.array(variable.numpy()), [1.0, -2.0])  # untouched
    expected = per_variable(optimizers.Adam)(0.1)
    reference_variable = keras.Variable([1.0, -2.0])
    expected.apply([keras.ops.convert_to_tensor([0.5, -0.5])], [reference_variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(values[0]), np.array(reference_variable.numpy()), rtol=RTOL)
