"""The base every lab schedule shares: a readable name and repr, float32 steps, step-unit metadata.

A schedule is a pure function of the optimizer's step: ``__call__`` reads the step, casts it to
float32 (exact for every step below 2**24, about 16.7 million) and returns ``keras.ops`` math on
it, with no Python branching on tensor values, so the same object runs eagerly, inside
``tf.function(jit_compile=True)`` and inside ``jax.jit``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from keras import ops
from keras.optimizers.schedules import LearningRateSchedule

from lab.checks import check_in_range


class Schedule(LearningRateSchedule):
    """Base class of the lab's schedules.

    Subclasses set ``self.name`` and implement ``__call__`` and ``get_config`` (exactly the
    constructor arguments). ``STEP_ARGUMENTS`` names the constructor arguments counted in
    optimizer steps; :func:`lab.schedules.per_epoch` converts those from epochs.
    """

    STEP_ARGUMENTS: ClassVar[tuple[str, ...]] = ()

    name: str

    def __repr__(self) -> str:
        return _format_config(self)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Schedule":
        return cls(**config)


def describe(schedule: Any) -> str:
    """``ClassName(argument=value, ...)`` for lab and Keras schedules alike, ``name`` omitted."""
    if isinstance(schedule, Schedule):
        return repr(schedule)
    return _format_config(schedule)


def _format_config(schedule: Any) -> str:
    try:
        config = schedule.get_config()
    except NotImplementedError:
        return object.__repr__(schedule)
    arguments = ", ".join(f"{key}={value!r}" for key, value in config.items() if key != "name")
    return f"{type(schedule).__name__}({arguments})"


def as_float_step(step: Any) -> Any:
    """The optimizer step (any integer or float tensor) as a float32 tensor."""
    return ops.cast(step, "float32")


def check_non_negative_int(name: str, value: Any) -> int:
    """An integer ``>= 0`` (a warm-up length that may be zero)."""
    number = check_in_range(name, value, 0.0, None)
    if isinstance(value, bool) or not number.is_integer():
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")
    return int(number)


def cosine_interpolation(start: Any, end: Any, fraction: Any) -> Any:
    """``end + (start - end) * (1 + cos(pi * fraction)) / 2`` for ``fraction`` in [0, 1]."""
    return end + (start - end) * 0.5 * (1.0 + ops.cos(ops.multiply(fraction, 3.141592653589793)))
