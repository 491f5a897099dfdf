"""Reading and setting the learning rate of any Keras optimizer, on any backend.

The callbacks share these few helpers: which optimizers a model trains with (one, or the inner
optimizers of a multi-optimizer), the learning rate an optimizer applies at its current step (a
float variable or a schedule evaluated at ``iterations``), and how to sync JAX's training state.

JAX: ``model.fit`` passes the model's, the optimizer's and the metrics' variables into the jitted
train step as arguments and writes them back only at the end of an epoch. A callback that wants
to read or change them mid-epoch first calls :func:`sync_training_state`. State that a callback
changes lives in the optimizer's variables (a float learning rate, the plateau scale during
``fit``), so the compiled step sees every change without being traced again.
"""

from __future__ import annotations

import keras
import numpy as np
from keras.optimizers.schedules import LearningRateSchedule

from lab import internals


def model_optimizers(model: keras.Model) -> list[keras.optimizers.Optimizer]:
    """The optimizers ``model`` trains with (the inner ones of a multi-optimizer)."""
    optimizer = model.optimizer
    if optimizer is None:
        raise ValueError("The model has no optimizer: compile it before training.")
    if hasattr(optimizer, "optimizers"):
        return list(optimizer.optimizers)
    return [optimizer]


def base_optimizer(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer that owns the learning rate (unwraps ``LossScaleOptimizer``)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def learning_rate_schedule(optimizer: keras.optimizers.Optimizer) -> LearningRateSchedule | None:
    """The optimizer's schedule, or ``None`` when its learning rate is a float variable."""
    learning_rate = internals.learning_rate_or_schedule(base_optimizer(optimizer))
    return learning_rate if isinstance(learning_rate, LearningRateSchedule) else None


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the optimizer applies at its current ``iterations``, as a float."""
    return float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate)))


def learning_rate_at(optimizer: keras.optimizers.Optimizer, step: int) -> float:
    """The learning rate for update number ``step`` (0-based): the schedule at ``step``, or the
    current value of a float learning rate."""
    schedule = learning_rate_schedule(optimizer)
    if schedule is None:
        return current_learning_rate(optimizer)
    return float(keras.ops.convert_to_numpy(schedule(step)))


def sync_training_state(model: keras.Model) -> None:
    """Write the JAX train step's state back into the variables (no-op on other backends).

    Afterwards the next train step reads the state again from the variables, so values assigned
    by a callback between two steps take effect.
    """
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()

