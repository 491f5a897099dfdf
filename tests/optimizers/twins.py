"""Each lab optimiser paired with its Keras built-in twin, with the same (test) settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from lab import optimizers

# name -> (lab class, Keras class, constructor arguments used by the tests)
TWINS: dict[str, tuple[type, type, dict[str, Any]]] = {
    "SGD": (optimizers.SGD, keras.optimizers.SGD, {"learning_rate": 0.05, "momentum": 0.9}),
    "Adagrad": (optimizers.Adagrad, keras.optimizers.Adagrad, {"learning_rate": 0.1}),
    "RMSprop": (optimizers.RMSprop, keras.optimizers.RMSprop, {"learning_rate": 0.01}),
    "Adam": (optimizers.Adam, keras.optimizers.Adam, {"learning_rate": 0.05}),
    "AdamW": (optimizers.AdamW, keras.optimizers.AdamW, {"learning_rate": 0.05, "weight_decay": 0.01}),
    "Nadam": (optimizers.Nadam, keras.optimizers.Nadam, {"learning_rate": 0.05}),
    "Lion": (optimizers.Lion, keras.optimizers.Lion, {"learning_rate": 0.01}),
}

# The other Keras built-ins' twins. Muon's AdamW decay is off, so each run decays only what its
# options say (``weight_decay`` is Muon's, for matrices).
TWINS.update(
    {
        "Adadelta": (optimizers.Adadelta, keras.optimizers.Adadelta, {"learning_rate": 1.0}),
        "Adamax": (optimizers.Adamax, keras.optimizers.Adamax, {"learning_rate": 0.05}),
        "Ftrl": (optimizers.Ftrl, keras.optimizers.Ftrl, {"learning_rate": 0.1}),
        "Lamb": (optimizers.Lamb, keras.optimizers.Lamb, {"learning_rate": 0.01}),
        "Adafactor": (optimizers.Adafactor, keras.optimizers.Adafactor, {"learning_rate": 0.05}),
        "Muon": (optimizers.Muon, keras.optimizers.Muon, {"learning_rate": 0.02, "adam_weight_decay": None}),
        "ScheduleFreeAdamW": (optimizers.ScheduleFreeAdamW, keras.optimizers.ScheduleFreeAdamW, {"learning_rate": 0.01}),
    }
)

# Twins that do not follow their own rule on some backends: (backends, why). The lab's class
# matches its NumPy reference there; tests against the twin expect the difference (strictly).
TWIN_DIFFERS: dict[str, tuple[tuple[str, ...], str]] = {
    "ScheduleFreeAdamW": (
        ("tensorflow", "torch"),
        "Keras 3.15's ScheduleFreeAdamW computes x_old from the updated z on TensorFlow and torch "
        "(lab.optimizers.ScheduleFreeAdamW's docstring)",
    ),
}


def twin_params(names: list[str] | None = None) -> list[Any]:
    """``pytest.param`` of each twin name, strictly expected to fail where its twin differs."""
    import pytest

    params = []
    for name in names or list(TWINS):
        backends, reason = TWIN_DIFFERS.get(name, ((), ""))
        differs = keras.backend.backend() in backends
        marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if differs else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def pair(name: str, **options: Any) -> tuple[Callable[[], keras.optimizers.Optimizer], Callable[[], keras.optimizers.Optimizer]]:
    """Factories of the lab optimiser and its twin, both with the test settings plus ``options``."""
    lab_class, keras_class, arguments = TWINS[name]
    arguments = {**arguments, **options}
    return (lambda: lab_class(**arguments)), (lambda: keras_class(**arguments))
