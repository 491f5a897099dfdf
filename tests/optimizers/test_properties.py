"""Property tests (hypothesis) of every lab optimiser: random shapes, dtypes and extreme gradients.

For each optimiser configuration, hypothesis draws a variable shape (scalars included; every side
1..4, up to 3 dimensions -- 0-sized variables are left out: there is nothing in them to check), a
dtype (float16, float32 and float64; float64 only where the backend really computes in it, i.e.
not on JAX without ``jax_enable_x64``, where Keras silently computes in float32), initial values,
a number of steps (1..3) and a gradient whose elements are each zero, tiny, ordinary or huge, of
either sign:

- tiny: 1e-30 (float32/float64; g² underflows to 0) and the smallest float16 subnormal (6e-8);
- ordinary: anything in [-10, 10];
- huge: 1e30 (float32/float64) and the largest finite float16, 65504.

Every run checks the structure: one slot per state the configuration keeps (``SLOTS``), each with
the variable's shape and dtype, and ``iterations`` equal to the number of steps.

Then the numbers, in two regimes decided by arithmetic, not by a list of exceptions:

1. **Representable** (``huge² <= finfo(dtype).max``: every gradient in float16/float32 without
   huge elements, and every gradient in float64, 1e30 included, since 1e60 fits): the variable,
   every slot and every other optimiser state stay finite -- no NaN and no infinity.
2. **Overflowing** (a huge element in float16 or float32, where g² is not representable): the
   second-moment accumulators legitimately become infinite (v = g² overflows). What follows is
   the optimiser's algebra, shared with Keras: Adam, AdamW and Nadam update
   ``v ← v + (1 − β₂)(g² − v)``, so the step after an infinite v computes ∞ − ∞ = NaN (Nadam in
   float16 already at the first step: its m̂ overflows too, and ∞/∞ = NaN), and centred RMSprop
   computes ``v − ḡ²`` = ∞ − ∞ = NaN at once. The property is therefore: the lab
   optimiser produces a NaN only in elements whose gradient is huge, and only where Keras's
   built-in twin run on the same inputs produces one too (for the variants Keras lacks -- heavy-ball
   and EMA momentum, Adam's paper epsilon -- the closest twin: Keras SGD with momentum, Adam).
   SGD, momentum, Adagrad, plain RMSprop and Lion never produce a NaN here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lab import optimizers

pytestmark = pytest.mark.backend_agnostic

PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Case:
    """A lab configuration, the Keras built-in that twins it (or is closest), its slots per variable."""

    build: Callable[[], keras.optimizers.Optimizer]
    twin: Callable[[], keras.optimizers.Optimizer]
    slots: int


CASES = {
    "sgd": Case(lambda: optimizers.SGD(0.01), lambda: keras.optimizers.SGD(0.01), 0),
    "sgd_momentum_nesterov": Case(
        lambda: optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        lambda: keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        1,
    ),
    "sgd_heavy_ball": Case(
        lambda: optimizers.SGD(0.01, momentum=0.9, momentum_style="heavy_ball"),
        lambda: keras.optimizers.SGD(0.01, momentum=0.9),
        1,
    ),
    "sgd_ema_nesterov": Case(
        lambda: optimizers.SGD(0.01, momentum=0.9, nesterov=True, momentum_style="ema"),
        lambda: keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        1,
    ),
    "adagrad": Case(lambda: optimizers.Adagrad(0.01), lambda: keras.optimizers.Adagrad(0.01), 1),
    "rmsprop": Case(lambda: optimizers.RMSprop(0.01), lambda: keras.optimizers.RMSprop(0.01), 1),
    "rmsprop_centered_momentum": Case(
        lambda: optimizers.RMSprop(0.01, momentum=0.9, centered=True),
        lambda: keras.optimizers.RMSprop(0.01, momentum=0.9, centered=True),
        3,
    ),
    "adam": Case(lambda: optimizers.Adam(0.01), lambda: keras.optimizers.Adam(0.01), 2),
    "adam_amsgrad": Case(lambda: optimizers.Adam(0.01, amsgrad=True), lambda: keras.optimizers.Adam(0.01, amsgrad=True), 3),
    "adam_paper_epsilon": Case(
        lambda: optimizers.Adam(0.01, epsilon_placement="paper"), lambda: keras.optimizers.Adam(0.01), 2
    ),
    "adamw": Case(lambda: optimizers.AdamW(0.01), lambda: keras.optimizers.AdamW(0.01), 2),
    "nadam": Case(lambda: optimizers.Nadam(0.01), lambda: keras.optimizers.Nadam(0.01), 2),
    "lion": Case(lambda: optimizers.Lion(0.01), lambda: keras.optimizers.Lion(0.01), 1),
}

# the cases whose twin Keras replaces on torch by a class with another second-moment algebra
TORCH_OWN_SECOND_MOMENT = {"adam", "adam_amsgrad", "adam_paper_epsilon", "adamw", "nadam"}

HUGE = {"float16": float(np.finfo(np.float16).max), "float32": 1e30, "float64": 1e30}
TINY = {"float16": float(np.finfo(np.float16).smallest_subnormal), "float32": 1e-30, "float64": 1e-30}
ZERO, TINY_KIND, ORDINARY, HUGE_KIND = range(4)


def float64_computes_in_float64() -> bool:
    if keras.backend.backend() != "jax":
        return True
    import jax

    return bool(jax.config.jax_enable_x64)


def overflows(dtype: str) -> bool:
    """Whether the square of this dtype's huge gradient is beyond its largest finite value."""
    return HUGE[dtype] ** 2 > float(np.finfo(dtype).max)


def dtypes(overflowing: bool) -> list[str]:
    """Every dtype the backend computes in; only those where huge² overflows for ``overflowing``."""
    candidates = ["float16", "float32"] + (["float64"] if float64_computes_in_float64() else [])
    return [dtype for dtype in candidates if overflows(dtype) or not overflowing]


@dataclass(frozen=True)
class Problem:
    dtype: str
    initial: np.ndarray  # float64; cast to dtype when the variable is made
    gradient: np.ndarray  # float64; cast to dtype, exact for zero/tiny/huge values
    huge: np.ndarray  # bool mask of the huge elements
    steps: int


@st.composite
def problems(draw, overflowing: bool) -> Problem:
    dtype = draw(st.sampled_from(dtypes(overflowing)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    allowed_kinds = [ZERO, TINY_KIND, ORDINARY] + ([] if overflows(dtype) else [HUGE_KIND])
    kinds = draw(hnp.arrays(np.int8, shape, elements=st.sampled_from(allowed_kinds)))
    if overflowing:  # at least one huge element, at a drawn position
        kinds = kinds.copy()
        kinds.flat[draw(st.integers(0, kinds.size - 1))] = HUGE_KIND
    signs = np.where(draw(hnp.arrays(np.bool_, shape)), -1.0, 1.0)
    ordinary = draw(hnp.arrays(np.float64, shape, elements=st.floats(-10.0, 10.0)))
    magnitude = np.select(
        [kinds == ZERO, kinds == TINY_KIND, kinds == ORDINARY], [0.0, TINY[dtype], ordinary], default=HUGE[dtype]
    )
    initial = draw(hnp.arrays(np.float64, shape, elements=st.floats(-2.0, 2.0)))
    steps = draw(st.integers(1, 3))
    return Problem(dtype, initial, signs * magnitude, kinds == HUGE_KIND, steps)


def run(optimizer: keras.optimizers.Optimizer, problem: Problem, slots: int | None) -> np.ndarray:
    """Apply the gradient ``problem.steps`` times; check the slots and iterations; return θ."""
    variable = keras.Variable(problem.initial.astype(problem.dtype), dtype=problem.dtype, name="theta")
    gradient = keras.ops.convert_to_tensor(problem.gradient.astype(problem.dtype), dtype=problem.dtype)
    for _ in range(problem.steps):
        optimizer.apply([gradient], [variable])
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == problem.steps
    if slots is not None:
        own = [slot for slot in optimizer.variables if slot.name.startswith("theta")]
        assert len(own) == slots, [slot.name for slot in own]
        for slot in own:
            assert tuple(slot.shape) == tuple(variable.shape), slot.name
            assert slot.dtype == variable.dtype == problem.dtype, slot.name
    return keras.ops.convert_to_numpy(variable.value)


def optimizer_state(optimizer: keras.optimizers.Optimizer) -> dict[str, np.ndarray]:
    return {
        slot.path: keras.ops.convert_to_numpy(slot.value)
        for slot in optimizer.variables
        if "float" in str(slot.dtype)
    }


@pytest.mark.parametrize("case_name", sorted(CASES))
@PROPERTY_SETTINGS
@given(problem=problems(overflowing=False))
def test_representable_gradients_keep_variable_and_every_slot_finite(case_name, problem):
    case = CASES[case_name]
    optimizer = case.build()
    theta = run(optimizer, problem, case.slots)
    assert theta.dtype == np.dtype(problem.dtype)
    assert np.isfinite(theta).all(), f"{case_name} made {theta} from gradient {problem.gradient}"
    for path, value in optimizer_state(optimizer).items():
        assert np.isfinite(value).all(), f"{case_name}: {path} = {value}"


@pytest.mark.parametrize("case_name", sorted(CASES))
@PROPERTY_SETTINGS
@given(problem=problems(overflowing=True))
def test_overflowing_gradients_give_nan_only_where_keras_does(case_name, problem):
    if keras.backend.backend() == "torch" and case_name in TORCH_OWN_SECOND_MOMENT:
        pytest.skip(
            "on torch Keras swaps in its own Adam/AdamW/Nadam (keras/src/backend/torch/optimizers), which "
            "update v as β₂·v + (1 − β₂)·g² (torch._foreach ops): an overflowed v stays infinite instead "
            "of becoming ∞ − ∞ = NaN, so it is not the algebra the lab shares with Keras's generic classes"
        )
    case = CASES[case_name]
    theta = run(case.build(), problem, case.slots)
    twin = run(case.twin(), problem, None)
    nan, twin_nan = np.isnan(theta), np.isnan(twin)
    assert not nan[~problem.huge].any(), f"{case_name}: NaN where the gradient was representable"
    assert not (nan & ~twin_nan).any(), f"{case_name}: NaN where Keras's {type(case.twin()).__name__} has none"
