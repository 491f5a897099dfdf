"""Optimizer variables that start from a value: the weights at the first update, an exact scalar.

Neither is set by an ``assign`` in ``build``: on TensorFlow ``fit`` builds the optimiser while
tracing the train function, where an assign is a graph op, and an initializer that reads the
model's weights cannot be lifted out of an XLA function (on JAX it would alias their buffer).
"""

from __future__ import annotations

from typing import Any

from keras import ops


def before_first_update(optimizer: Any) -> Any:
    """True until the first update of the weights (with gradient accumulation, the first
    ``gradient_accumulation_steps`` iterations); read inside ``update_step``."""
    return optimizer.iterations < (optimizer.gradient_accumulation_steps or 1)


def initial_value(optimizer: Any, slot: Any, variable: Any) -> Any:
    """A slot meant to start at the weights: the variable itself before the first update (the
    slot still holds zeros then; ``update_step`` assigns it), the slot afterwards."""
    return ops.where(before_first_update(optimizer), ops.convert_to_tensor(variable), ops.convert_to_tensor(slot))


def scalar(optimizer: Any, name: str, value: float, dtype: str) -> Any:
    """A scalar optimizer variable starting at exactly ``value`` in ``dtype`` (a Constant
    initializer passes it through float32 on TensorFlow), updated once per step."""
    return optimizer.add_variable(
        shape=(),
        initializer=lambda shape, dtype: ops.full(shape, value, dtype=dtype),
        dtype=dtype,
        aggregation="only_first_replica",
        name=name,
    )


def scalar_dtype(variables: list) -> str:
    """float64 when any variable is, else float32 (also for float16 variables)."""
    return "float64" if any(str(variable.dtype) == "float64" for variable in variables) else "float32"
