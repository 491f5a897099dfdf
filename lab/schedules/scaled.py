"""A schedule multiplied by a variable factor that callbacks change during training."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule, deserialize, serialize

from lab.checks import check_non_negative
from lab.schedules.base import Schedule, as_float_step, describe


@keras.saving.register_keras_serializable(package="lab")
class Scaled(Schedule):
    """Another schedule (or a constant) times a mutable factor.

        lr(t) = scale · schedule(t)

    ``scale`` is a non-trainable float32 ``keras.Variable``; a callback changes it with
    ``schedule.scale.assign(x)`` (reduce-on-plateau on top of any schedule does exactly this).
    ``get_config`` stores the nested schedule and the *current* scale, so the factor is saved with
    the model and ``from_config`` / ``load_model`` restore both. This is the one lab schedule with
    mutable state; the curve itself stays a pure function of the step.

    Backends: on TensorFlow the train function (``tf.function``, also with ``jit_compile=True``)
    captures the variable, so an assignment is seen at the next step. On JAX the variable is not
    one of the optimizer's variables, so a jitted train step reads it once, at trace time, and bakes
    the value in: after ``scale.assign(...)`` the train function must be traced again (for
    example ``model.make_train_function(force=True)``) for the new factor to take effect.

    Args:
        schedule: a ``keras.optimizers.schedules.LearningRateSchedule`` (lab or Keras) or a
            float >= 0 (a constant learning rate).
        scale: float >= 0, the initial factor (default 1.0).
        name: optional name; defaults to ``"Scaled"``.

    Reference: the multiplicative factor of PyTorch ``ReduceLROnPlateau`` applied on top of a
    schedule (``torch.optim.lr_scheduler.MultiplicativeLR`` with a factor held in state).
    """

    def __init__(
        self,
        schedule: LearningRateSchedule | float,
        scale: float = 1.0,
        name: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(schedule, dict):
            schedule = deserialize(schedule)
        if not isinstance(schedule, LearningRateSchedule):
            schedule = check_non_negative("schedule", schedule)
        self.schedule = schedule
        self.scale = keras.Variable(
            check_non_negative("scale", scale), dtype="float32", trainable=False, name="scale"
        )
        self.name = name or "Scaled"

    def __call__(self, step):
        if isinstance(self.schedule, LearningRateSchedule):
            value = ops.cast(self.schedule(step), "float32")
        else:
            value = ops.zeros_like(as_float_step(step)) + self.schedule
        return ops.multiply(ops.cast(self.scale.value, "float32"), value)

    def get_config(self) -> dict[str, Any]:
        schedule = self.schedule
        if isinstance(schedule, LearningRateSchedule):
            schedule = serialize(schedule)
        return {
            "schedule": schedule,
            "scale": float(ops.convert_to_numpy(self.scale.value)),
            "name": self.name,
        }

    def __repr__(self) -> str:
        scale = float(ops.convert_to_numpy(self.scale.value))
        if isinstance(self.schedule, LearningRateSchedule):
            schedule = describe(self.schedule)
        else:
            schedule = repr(self.schedule)
        return f"Scaled({schedule}, scale={scale!r})"
