"""Every reach into a library's private names, in one place: Keras, TensorFlow, JAX, PyTorch.

The lab reads or writes no private attribute of another library anywhere else. Where no public
API does the job, the reach-in is one small function here, with the release it was checked on;
``tests/test_internals.py`` checks each one's numbers or identities on every backend it applies
to, so that a release that moves one fails there, loudly, and not as a wrong number in a study.

Checked on Keras 3.15.1, TensorFlow 2.21.0, JAX 0.10.2 and PyTorch 2.13.0 (``CHECKED_ON``).

Public APIs used instead, where one exists:

- the variable of a float learning rate: ``optimizer.learning_rate`` is that very
  ``keras.Variable``; only for a schedule does it give the schedule's value at ``iterations``
  (a tensor), so the schedule object itself needs :func:`learning_rate_or_schedule`;
- the step counter: ``optimizer.iterations``; an optimiser variable's place in
  ``optimizer.variables``: :func:`position_of`, by identity;
- whether a variable is overwritten by its gradient: ``variable.overwrite_with_gradient``.

Hooks of Keras's that the lab's subclasses override keep Keras's names (``_backend_update_step``
of an optimiser, ``_apply_weight_decay``, ``ReduceLROnPlateau._is_improvement`` and
``_reduce_optimizer_lr``); the call to Keras's own version goes through a function here that
takes the ``super()`` of the caller, and the test checks that Keras still calls each hook.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import keras

CHECKED_ON = {"keras": "3.15.1", "tensorflow": "2.21.0", "jax": "0.10.2", "torch": "2.13.0"}

# --- optimisers --------------------------------------------------------------------------------


def learning_rate_or_schedule(optimizer: keras.optimizers.Optimizer) -> Any:
    """What the optimiser was given as its rate, as it holds it: the float rate's ``keras.Variable``,
    a ``LearningRateSchedule`` or a callable (Keras's ``_learning_rate``; Keras 3.15.1).

    ``optimizer.learning_rate`` is the same variable for a float rate, but evaluates a schedule or
    a callable; ``get_config()["learning_rate"]`` is a serialised copy, not the object."""
    return optimizer._learning_rate


def position_of(optimizer: keras.optimizers.Optimizer, variable: Any) -> int:
    """Where ``variable`` (an optimiser variable: ``iterations``, the rate's variable, a slot)
    stands in ``optimizer.variables``, by identity (public API)."""
    return next(i for i, v in enumerate(optimizer.variables) if v is variable)


def variable_index(optimizer: keras.optimizers.Optimizer, variable: Any) -> int:
    """The index of a model variable among those the optimiser was built with, i.e. of its slots
    in every list ``add_optimizer_variables`` returned (``_get_variable_index``; Keras 3.15.1)."""
    return optimizer._get_variable_index(variable)


def built_variables(optimizer: keras.optimizers.Optimizer) -> list:
    """The model variables the optimiser was built with, in the order of its slots
    (``_trainable_variables``; Keras 3.15.1)."""
    return optimizer._trainable_variables


def uses_weight_decay(optimizer: keras.optimizers.Optimizer, variable: Any) -> bool:
    """Whether weight decay applies to ``variable``: not excluded by
    ``exclude_from_weight_decay`` (``_use_weight_decay``; Keras 3.15.1)."""
    return optimizer._use_weight_decay(variable)


def moving_average(optimizer: keras.optimizers.Optimizer, variable: Any) -> Any:
    """The exponential moving average that ``use_ema=True`` keeps of ``variable``
    (``_model_variables_moving_average``; Keras 3.15.1); ``None`` without ``use_ema``."""
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not getattr(optimizer, "use_ema", False) or averages is None:
        return None
    return averages[variable_index(optimizer, variable)]


def track_variable(optimizer: keras.optimizers.Optimizer, variable: keras.Variable) -> None:
    """Add a variable made elsewhere to ``optimizer.variables`` (so that the compiled train step
    carries it, and checkpoints save it) (``_track_variable``; Keras 3.15.1)."""
    optimizer._track_variable(variable)


def untrack_variable(optimizer: keras.optimizers.Optimizer, variable: keras.Variable) -> None:
    """Undo :func:`track_variable` (``_untrack_variable``; Keras 3.15.1)."""
    optimizer._untrack_variable(variable)


def backend_update_step(parent: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """Keras's ``_backend_update_step`` through ``parent``, the ``super()`` of an override: the step
    of every variable, after clipping and weight decay, before EMA (Keras 3.15.1)."""
    parent._backend_update_step(grads, variables, learning_rate)


def apply_weight_decay(parent: Any, variables: list) -> None:
    """Keras's decoupled decay ``θ ← θ − θ·wd·lr`` through ``parent``, the ``super()`` of an
    override of ``_apply_weight_decay`` (Keras 3.15.1)."""
    parent._apply_weight_decay(variables)


def in_stateless_scope() -> bool:
    """Whether the code runs inside a ``keras.StatelessScope`` (``stateless_apply``), where
    variables are read and written through the scope, not in place (Keras 3.15.1:
    ``keras.src.backend.common.stateless_scope``; the public API has only the scope itself)."""
    from keras.src.backend.common.stateless_scope import in_stateless_scope as inside

    return inside()


# --- callbacks ---------------------------------------------------------------------------------


def plateau_is_improvement(parent: Any, monitor_value: Any, reference_value: Any) -> bool:
    """Keras's ``MonitorCallback._is_improvement`` through ``parent``, the ``super()`` of an
    override: ``monitor_op(value − min_delta, reference)`` (Keras 3.15.1)."""
    return parent._is_improvement(monitor_value, reference_value)


def plateau_reduce_learning_rate(parent: Any, optimizer: Any, epoch: int, name: str = "") -> bool:
    """Keras's ``ReduceLROnPlateau._reduce_optimizer_lr`` through ``parent``, the ``super()`` of an
    override: multiplies a float rate by ``factor`` down to ``min_lr``; whether it did
    (Keras 3.15.1)."""
    return parent._reduce_optimizer_lr(optimizer, epoch, name)


def print_message(message: str) -> None:
    """Print as Keras's callbacks print (to absl's log when interactive logging is off)
    (``keras.src.utils.io_utils.print_msg``; Keras 3.15.1)."""
    from keras.src.utils import io_utils

    io_utils.print_msg(message)


# --- models and Keras's process state ----------------------------------------------------------


def symbolic_build(model: keras.Model, data_batch: tuple) -> None:
    """Build a compiled model's variables, its optimiser's and its metrics' from one batch,
    without a training step (``Trainer._symbolic_build``, what ``fit`` does first; Keras 3.15.1)."""
    model._symbolic_build(data_batch=data_batch)


@contextlib.contextmanager
def tensorflow_hidden() -> Iterator[None]:
    """Inside: Keras takes TensorFlow for not installed, if it is not imported yet.

    Keras's serialisation (``get_config``, ``clone_model``) asks whether TensorFlow is installed,
    importing it (seconds) to test for its ``TensorShape``; while TensorFlow is not imported no
    object can be one. Sets the answer of Keras's lazy module
    (``keras.src.utils.module_utils.tensorflow._available``; Keras 3.15.1) and restores it after."""
    from keras.src.utils import module_utils

    lazy = getattr(module_utils, "tensorflow", None)
    if "tensorflow" in sys.modules or getattr(lazy, "_available", True) is not None:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None


def set_global_seed_without_tensorflow(seed: int) -> None:
    """Keras's global random state as ``keras.utils.set_random_seed`` sets it, with Python's and
    NumPy's, without the TensorFlow seed that function also sets (importing TensorFlow takes
    seconds; on JAX nothing draws from it) (``keras.src.utils.rng_utils.GLOBAL_RANDOM_SEED`` and
    ``keras.src.random.seed_generator.GLOBAL_SEED_GENERATOR``; Keras 3.15.1)."""
    import random

    import numpy as np
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)


# --- JAX ---------------------------------------------------------------------------------------


def reset_jax_compilation_cache() -> None:
    """Make JAX decide again whether its persistent compilation cache is on, and where (it
    decides once per process) (``jax._src.compilation_cache.reset_cache``; JAX 0.10.2)."""
    from jax._src import compilation_cache

    compilation_cache.reset_cache()


# --- PyTorch -----------------------------------------------------------------------------------

# the multi-tensor operations the lab uses: torch._foreach_<name>, one kernel over a list of tensors
FOREACH_OPERATIONS = (
    "abs", "add", "add_", "addcdiv_", "addcmul", "addcmul_", "div_", "lerp", "lerp_", "maximum_",
    "mul", "mul_", "sign_", "sqrt", "sqrt_", "sub_",
)


class _Foreach:
    """``foreach.add_(xs, ys, alpha=a)`` is ``torch._foreach_add_(xs, ys, alpha=a)``."""

    def __getattr__(self, name: str) -> Any:
        if name not in FOREACH_OPERATIONS:
            raise AttributeError(f"torch._foreach_{name} is not among lab.internals.FOREACH_OPERATIONS")
        import torch

        return getattr(torch, f"_foreach_{name}")


# PyTorch's multi-tensor kernels (``torch._foreach_*``: what ``torch.optim``'s ``foreach=True``
# and Keras's own PyTorch optimisers use; no public name; PyTorch 2.13.0)
foreach = _Foreach()
