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


def pair(name: str, **options: Any) -> tuple[Callable[[], keras.optimizers.Optimizer], Callable[[], keras.optimizers.Optimizer]]:
    """Factories of the lab optimiser and its twin, both with the test settings plus ``options``."""
    lab_class, keras_class, arguments = TWINS[name]
    arguments = {**arguments, **options}
    return (lambda: lab_class(**arguments)), (lambda: keras_class(**arguments))
