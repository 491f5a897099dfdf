"""Argument checks shared by every optimiser and schedule.

Each check raises ``ValueError`` naming the argument, the value it got and the allowed range,
so a bad hyperparameter fails at construction rather than as a NaN many steps later.

Where a Keras twin words the same check differently, the optimiser passes the twin's wording as
``message`` (a format string of ``{name}`` and ``{value}``), so code and tests written against the
twin's errors see the same text; the range checked stays the one the lab declares.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def _describe(value: Any) -> str:
    return repr(value)


def _fail(name: str, value: Any, default: str, message: str | None) -> ValueError:
    return ValueError(default if message is None else message.format(name=name, value=value))


def _as_float(name: str, value: Any, message: str | None = None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(name, value, f"`{name}` must be a number, got {_describe(value)}.", message) from None
    if math.isnan(number):
        raise _fail(name, value, f"`{name}` must be a number, got NaN.", message)
    return number


def check_in_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    message: str | None = None,
) -> float:
    """Return ``float(value)`` if it lies in the interval, else raise ``ValueError``.

    ``low``/``high`` of ``None`` leave that side open (to -inf / +inf); ``message`` replaces the
    default wording (see the module docstring).
    """
    number = _as_float(name, value, message)
    ok = True
    if low is not None:
        ok &= number >= low if low_inclusive else number > low
    if high is not None:
        ok &= number <= high if high_inclusive else number < high
    if not ok:
        left = "-inf" if low is None else f"{low:g}"
        right = "+inf" if high is None else f"{high:g}"
        interval = (
            ("[" if low_inclusive and low is not None else "(")
            + f"{left}, {right}"
            + ("]" if high_inclusive and high is not None else ")")
        )
        raise _fail(name, value, f"`{name}` must be in {interval}, got {_describe(value)}.", message)
    return number


def check_non_negative(name: str, value: Any, *, message: str | None = None) -> float:
    """``value >= 0``."""
    return check_in_range(name, value, 0.0, None, message=message)


def check_non_positive(name: str, value: Any, *, message: str | None = None) -> float:
    """``value <= 0`` -- a power that makes a step size decay."""
    return check_in_range(name, value, None, 0.0, message=message)


def check_positive(name: str, value: Any, *, message: str | None = None) -> float:
    """``value > 0``."""
    return check_in_range(name, value, 0.0, None, low_inclusive=False, message=message)


def check_unit_interval_open_right(name: str, value: Any, *, message: str | None = None) -> float:
    """``0 <= value < 1`` -- momentum, beta_1, beta_2, rho."""
    return check_in_range(name, value, 0.0, 1.0, high_inclusive=False, message=message)



def check_positive_int(name: str, value: Any) -> int:
    """An integer ``>= 1`` (steps, epochs, batch sizes)."""
    if isinstance(value, bool) or not float(_as_float(name, value)).is_integer():
        raise ValueError(f"`{name}` must be a positive integer, got {_describe(value)}.")
    number = int(value)
    if number < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {_describe(value)}.")
    return number


def check_non_negative_int(name: str, value: Any) -> int:
    """An integer ``>= 0`` (warm-up steps, where 0 means none)."""
    if isinstance(value, bool) or not float(_as_float(name, value)).is_integer() or int(value) < 0:
        raise ValueError(f"`{name}` must be an integer >= 0, got {_describe(value)}.")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` is one of ``choices``; the error lists them."""
    choices = tuple(choices)
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {valid}; got {_describe(value)}.")
    return value


def check_learning_rate(value: Any) -> Any:
    """A learning rate is a number ``>= 0``, a ``LearningRateSchedule`` or a callable.

    Schedules, callables and backend variables/tensors pass through unchanged.
    """
    from keras.optimizers.schedules import LearningRateSchedule

    if isinstance(value, LearningRateSchedule) or callable(value):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        check_non_negative("learning_rate", value)
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # a tensor or keras.Variable
        return value
    raise ValueError(
        "`learning_rate` must be a number >= 0, a "
        "keras.optimizers.schedules.LearningRateSchedule or a callable; "
        f"got {_describe(value)}."
    )
