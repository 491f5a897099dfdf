"""Piecewise-constant rates between given steps (Keras's PiecewiseConstantDecay, PyTorch's MultiStepLR)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from lab.checks import check_non_negative, check_positive, check_positive_int
from lab.schedules.base import Schedule, as_float_step, check_non_negative_int


@keras.saving.register_keras_serializable(package="lab")
class PiecewiseConstant(Schedule):
    """A constant rate between boundaries; a drop-in for Keras's ``PiecewiseConstantDecay``.

        lr(t) = values[0]     for t <= boundaries[0]
        lr(t) = values[i]     for boundaries[i − 1] < t <= boundaries[i]
        lr(t) = values[−1]    for t > boundaries[−1]

    As in Keras, a boundary still belongs to the piece before it: the new value applies from the
    step after. PyTorch's ``MultiStepLR`` switches *at* each milestone instead;
    :meth:`from_milestones` builds that convention (boundaries = milestones − 1).

    Args:
        boundaries: strictly increasing integers >= 0.
        values: ``len(boundaries) + 1`` rates >= 0.
        name: optional name; defaults to ``"PiecewiseConstant"`` (Keras's).

    Reference: ``keras.optimizers.schedules.PiecewiseConstantDecay``; PyTorch ``MultiStepLR``.
    """

    STEP_ARGUMENTS = ("boundaries",)

    def __init__(
        self, boundaries: Sequence[int], values: Sequence[float], name: str = "PiecewiseConstant"
    ) -> None:
        super().__init__()
        for argument, given in (("boundaries", boundaries), ("values", values)):
            if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
                raise ValueError(f"`{argument}` must be a list, got {given!r}.")
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"`values` must have len(boundaries) + 1 = {len(boundaries) + 1} entries, "
                f"got {len(values)}: {list(values)!r}."
            )
        boundaries = [check_non_negative_int("boundaries", b) for b in boundaries]
        if any(later <= earlier for earlier, later in zip(boundaries, boundaries[1:])):
            raise ValueError(f"`boundaries` must be strictly increasing, got {boundaries!r}.")
        self.boundaries = boundaries
        self.values = [check_non_negative("values", v) for v in values]
        self.name = name or "PiecewiseConstant"

    @classmethod
    def from_milestones(
        cls, initial_learning_rate: float, milestones: Sequence[int], gamma: float = 0.1, name: str | None = None
    ) -> "PiecewiseConstant":
        """PyTorch's ``MultiStepLR``: ``lr0 · gamma^k`` after ``k`` milestones, switching at each.

        ``milestones`` are strictly increasing integers >= 1 (steps); ``gamma`` > 0 (default 0.1,
        PyTorch's).
        """
        initial_learning_rate = check_non_negative("initial_learning_rate", initial_learning_rate)
        gamma = check_positive("gamma", gamma)
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
            raise ValueError(f"`milestones` must be a list, got {milestones!r}.")
        milestones = [check_positive_int("milestones", m) for m in milestones]
        if any(later <= earlier for earlier, later in zip(milestones, milestones[1:])):
            raise ValueError(f"`milestones` must be strictly increasing, got {milestones!r}.")
        values = [initial_learning_rate * gamma**k for k in range(len(milestones) + 1)]
        return cls([m - 1 for m in milestones], values, name=name or "PiecewiseConstant")

    def __call__(self, step):
        step = as_float_step(step)
        value = ops.zeros_like(step) + self.values[0]
        for boundary, later in zip(self.boundaries, self.values[1:]):
            value = ops.where(step > float(boundary), later, value)
        return value

    def get_config(self) -> dict:
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}
