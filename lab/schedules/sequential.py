"""Composition: several schedules run one after another."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops
from keras.optimizers.schedules import LearningRateSchedule, deserialize, serialize

from lab.checks import check_positive_int
from lab.schedules.base import Schedule, as_float_step, describe


@keras.saving.register_keras_serializable(package="lab")
class Sequential(Schedule):
    """Run each schedule in turn, each one starting from its own step 0 at its boundary.

        b_0 = 0,  b_k = boundaries[k − 1]
        lr(t) = schedules[k](t − b_k)     for b_k <= t < b_(k+1)

    Every piece sees its own step count starting at 0, so a warm-up followed by a cosine is
    ``Sequential([warmup, CosineAnnealing(...)], [warmup_steps])``.

    Args:
        schedules: a non-empty list of ``LearningRateSchedule`` (lab or Keras).
        boundaries: strictly increasing integers >= 1, one fewer than ``schedules``; the step at
            which each schedule after the first starts.
        name: optional name; defaults to ``"Sequential"``.

    Reference: PyTorch ``torch.optim.lr_scheduler.SequentialLR`` (``milestones``); optax
    ``join_schedules``.
    """

    STEP_ARGUMENTS = ("boundaries",)

    def __init__(
        self,
        schedules: Sequence[LearningRateSchedule],
        boundaries: Sequence[int],
        name: str | None = None,
    ) -> None:
        super().__init__()
        is_list = isinstance(schedules, Sequence) and not isinstance(schedules, (str, bytes))
        if not is_list or not schedules:
            raise ValueError(
                f"`schedules` must be a non-empty list of schedules, got {schedules!r}."
            )
        schedules = [deserialize(s) if isinstance(s, dict) else s for s in schedules]
        for index, schedule in enumerate(schedules):
            if not isinstance(schedule, LearningRateSchedule):
                raise ValueError(
                    "`schedules` must hold LearningRateSchedule objects; "
                    f"item {index} is {schedule!r}."
                )
        if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, Sequence):
            raise ValueError(f"`boundaries` must be a list of integers, got {boundaries!r}.")
        if len(boundaries) != len(schedules) - 1:
            raise ValueError(
                f"`boundaries` must have len(schedules) - 1 = {len(schedules) - 1} entries, "
                f"got {len(boundaries)}: {list(boundaries)!r}."
            )
        boundaries = [check_positive_int("boundaries", b) for b in boundaries]
        if any(later <= earlier for earlier, later in zip(boundaries, boundaries[1:])):
            raise ValueError(f"`boundaries` must be strictly increasing, got {boundaries!r}.")
        self.schedules = list(schedules)
        self.boundaries = boundaries
        self.name = name or "Sequential"

    def __call__(self, step):
        step = as_float_step(step)
        value = ops.cast(self.schedules[0](step), "float32")
        for boundary, schedule in zip(self.boundaries, self.schedules[1:]):
            start = float(boundary)
            later = ops.cast(schedule(ops.maximum(step - start, 0.0)), "float32")
            value = ops.where(step >= start, later, value)
        return value

    def get_config(self) -> dict[str, Any]:
        return {
            "schedules": [serialize(schedule) for schedule in self.schedules],
            "boundaries": list(self.boundaries),
            "name": self.name,
        }

    def __repr__(self) -> str:
        pieces = ", ".join(describe(schedule) for schedule in self.schedules)
        return f"Sequential([{pieces}], boundaries={self.boundaries!r})"
