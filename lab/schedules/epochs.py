"""Build any schedule from epoch units."""

from __future__ import annotations

from typing import Any, TypeVar

from keras.optimizers.schedules import LearningRateSchedule

from lab.checks import check_in_range, check_positive_int

ScheduleT = TypeVar("ScheduleT", bound=LearningRateSchedule)

# Step-count arguments of Keras's own schedules (CosineDecay, CosineDecayRestarts, ExponentialDecay,
# InverseTimeDecay, PolynomialDecay, PiecewiseConstantDecay); lab schedules list theirs in
# ``STEP_ARGUMENTS``.
KERAS_STEP_ARGUMENTS = ("decay_steps", "first_decay_steps", "warmup_steps", "boundaries")


def step_arguments(schedule_class: type[LearningRateSchedule]) -> tuple[str, ...]:
    """The constructor arguments of ``schedule_class`` that count optimizer steps."""
    return tuple(getattr(schedule_class, "STEP_ARGUMENTS", KERAS_STEP_ARGUMENTS))


def _to_steps(name: str, epochs: Any, steps_per_epoch: int) -> int:
    return int(round(check_in_range(name, epochs, 0.0, None) * steps_per_epoch))


def per_epoch(
    schedule_class: type[ScheduleT], steps_per_epoch: int, **epoch_arguments: Any
) -> ScheduleT:
    """Construct ``schedule_class`` with its step-count arguments given in epochs.

    The arguments named by ``step_arguments(schedule_class)`` are multiplied by
    ``steps_per_epoch`` and rounded to whole steps (fractional epochs are allowed); ``boundaries``
    is converted item by item. All other arguments (rates, factors, modes) pass through unchanged.

    ==================  ====================================
    schedule            arguments converted from epochs
    ==================  ====================================
    StepDecay           decay_steps
    ExponentialDecay    decay_steps
    CosineAnnealing     decay_steps
    WarmupCosine        warmup_steps, decay_steps
    OneCycle            total_steps
    CyclicalLR          step_size
    CosineWarmRestarts  first_decay_steps
    Sequential          boundaries
    PolynomialDecay     decay_steps
    LinearDecay         decay_steps
    PiecewiseConstant   boundaries
    InverseTimeDecay    decay_steps
    LinearWarmup        warmup_steps
    WarmupStableDecay   total_steps, warmup_steps
    Constant, Scaled    (none)
    Keras's schedules   decay_steps, first_decay_steps, warmup_steps, boundaries
    ==================  ====================================

    Example: the notebooks' step decay, halving every 10 epochs, with 469 batches per epoch::

        per_epoch(StepDecay, 469, initial_learning_rate=0.1, decay_rate=0.5, decay_steps=10)

    Note that ``ExponentialDecay`` built this way still decays smoothly within an epoch unless
    ``staircase=True``.
    """
    steps_per_epoch = check_positive_int("steps_per_epoch", steps_per_epoch)
    arguments = dict(epoch_arguments)
    for name in step_arguments(schedule_class):
        if name not in arguments:
            continue
        value = arguments[name]
        if name == "boundaries":
            arguments[name] = [_to_steps(name, item, steps_per_epoch) for item in value]
        else:
            arguments[name] = _to_steps(name, value, steps_per_epoch)
    return schedule_class(**arguments)
