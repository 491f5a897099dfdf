"""Schedule-Free SGD: momentum replaced by interpolation and averaging, no schedule needed."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import elementwise, slots
from lab.schedules.base import check_non_negative_int


@keras.saving.register_keras_serializable(package="lab")
class ScheduleFreeSGD(keras.optimizers.Optimizer):
    """Schedule-Free SGD: gradients at an interpolation ``y`` of a base sequence ``z`` and its
    running average ``x``; ``x`` is the point to evaluate.

    With gradient ``g`` taken at the model's weights ``y``, step ``t = 1, 2, ...``, momentum
    ``β`` and the learning rate ``γ_t = lr_t·min(1, t / warmup_steps)`` (``lr_t`` from a schedule
    if one is given; the method needs none)::

        z ← z − γ_t·g                                   the SGD sequence
        x ← (1 − c_t)·x + c_t·z                         its weighted average, what to evaluate
        y = (1 − β)·z + β·x                             where the next gradient is taken
        c_t = w_t / Σ_{i≤t} w_i,   w_t = t^weight_power · (max_{i≤t} γ_i)^weight_learning_rate_power

    Only ``z`` is stored: the model holds ``y``, and ``x = (y − (1 − β)·z)/β``, which
    :meth:`evaluation_weights` returns. In place, as the reference does::

        y ← (1 − c_t)·y + c_t·z + γ_t·(β·(1 − c_t) − 1)·g
        z ← z − γ_t·g

    With the defaults (``weight_power = 0``, ``weight_learning_rate_power = 2``) ``x`` is the
    plain average of the ``z`` iterates once ``γ`` stops growing; during a warm-up the early
    iterates count less. ``β`` plays momentum's role: ``β → 0`` is SGD on ``z`` (``y = z``),
    ``β → 1`` evaluates the gradient at the average (Polyak averaging).

    Weight decay ``λ = weight_decay`` is the reference's: ``g ← g + λ·y`` (an L2 gradient taken
    at ``y``), not Keras's decoupled decay; ``exclude_from_weight_decay`` applies.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable. Defaults to
            ``1.0`` (the reference's).
        momentum: ``β`` in ``(0, 1)``. Defaults to ``0.9``.
        warmup_steps: integer ``>= 0``; a linear warm-up of ``γ`` over that many steps.
            Defaults to ``0``.
        weight_power: the reference's ``r >= 0``, polynomial weighting ``t^r`` in the average.
            Defaults to ``0.0``.
        weight_learning_rate_power: the reference's ``weight_lr_power >= 0``. Defaults to
            ``2.0``.
        weight_decay: ``λ >= 0`` or ``None``. Defaults to ``None``.
        **Other arguments**: as ``keras.optimizers.Optimizer``.

    Reference:
        Defazio et al., 2024, "The Road Less Scheduled" (https://arxiv.org/abs/2405.15682);
        ``SGDScheduleFree`` of https://github.com/facebookresearch/schedule_free.
    """

    def __init__(
        self,
        learning_rate: Any = 1.0,
        momentum: float = 0.9,
        warmup_steps: int = 0,
        weight_power: float = 0.0,
        weight_learning_rate_power: float = 2.0,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if weight_decay is not None:
            checks.check_non_negative("weight_decay", weight_decay)
        super().__init__(
            learning_rate=checks.check_learning_rate(learning_rate),
            name=name,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            **kwargs,
        )
        self.momentum = checks.check_in_range("momentum", momentum, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        self.warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
        self.weight_power = checks.check_non_negative("weight_power", weight_power)
        self.weight_learning_rate_power = checks.check_non_negative(
            "weight_learning_rate_power", weight_learning_rate_power
        )

    def build(self, variables: list) -> None:
        """One slot ``z`` per variable (the weights at the first update); scalars ``max γ``, ``Σ w``."""
        if self.built:
            return
        super().build(variables)
        self.z = self.add_optimizer_variables(variables, "z")  # z starts at the weights: at the first update
        dtype = slots.scalar_dtype(variables)
        self.learning_rate_max = slots.scalar(self, "learning_rate_max", -1.0, dtype)
        self.weight_sum = slots.scalar(self, "weight_sum", 0.0, dtype)

    def _apply_weight_decay(self, variables: list) -> None:
        """The reference's L2 form is added to the gradient in ``update_step``."""

    def _warmed_up(self, learning_rate: Any, dtype: str) -> Any:
        """``γ_t = lr_t·min(1, t / warmup_steps)``."""
        lr = ops.cast(learning_rate, dtype)
        if self.warmup_steps == 0:
            return lr
        t = ops.cast(self.iterations + 1, dtype)
        return lr * elementwise.minimum(t / float(self.warmup_steps), 1.0)

    def _weight(self, dtype: str) -> Any:
        """``w_t`` from this step's ``max γ`` (already advanced)."""
        t = ops.cast(self.iterations + 1, dtype)
        return ops.power(t, self.weight_power) * ops.power(
            ops.cast(self.learning_rate_max, dtype), self.weight_learning_rate_power
        )

    def _backend_update_step(self, grads: list, trainable_variables: list, learning_rate: Any) -> None:
        """Advance ``max γ`` and ``Σ w`` once per step, then update every variable."""
        dtype = self.weight_sum.dtype
        learning_rate_max = elementwise.maximum(self._warmed_up(learning_rate, dtype), self.learning_rate_max)
        self.assign(self.learning_rate_max, learning_rate_max)
        self.assign_add(self.weight_sum, self._weight(dtype))
        internals.backend_update_step(super(), grads, trainable_variables, learning_rate)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        lr = self._warmed_up(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        if self.weight_decay and internals.uses_weight_decay(self, variable):
            g = ops.add(g, ops.multiply(variable, ops.cast(self.weight_decay, dtype)))
        weight_sum = ops.cast(self.weight_sum, dtype)
        # c_t = w_t / Σ w (0 while every γ so far is 0, as the reference's ZeroDivisionError branch)
        c = ops.where(weight_sum > 0, self._weight(dtype) / ops.where(weight_sum > 0, weight_sum, 1.0), 0.0)
        z_slot = self.z[internals.variable_index(self, variable)]
        z = slots.initial_value(self, z_slot, variable)
        y = ops.add(ops.multiply(variable, 1 - c), ops.multiply(z, c))
        self.assign(variable, ops.add(y, ops.multiply(g, lr * (self.momentum * (1 - c) - 1))))
        self.assign(z_slot, ops.subtract(z, ops.multiply(g, lr)))

    def evaluation_weights(self, variables: list | None = None) -> list:
        """The averaged iterate ``x = (y − (1 − β)·z)/β`` of each of ``variables`` (default: every
        variable the optimiser was built with, in that order; ``model.trainable_variables`` under
        ``fit``): the weights to evaluate, checkpoint for inference or export. The model itself
        holds ``y``; assign these to evaluate and the training weights back before training on
        (``lab.callbacks.AveragedWeights`` does both around every evaluation)."""
        if variables is not None:
            averaged = self.evaluation_weights()
            return [averaged[internals.variable_index(self, variable)] for variable in variables]
        return [
            variable
            if z is None
            else ops.divide(
                ops.subtract(variable, ops.multiply(slots.initial_value(self, z, variable), 1 - self.momentum)),
                self.momentum,
            )
            for variable, z in zip(internals.built_variables(self), self.z)
        ]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "warmup_steps": self.warmup_steps,
                "weight_power": self.weight_power,
                "weight_learning_rate_power": self.weight_learning_rate_power,
            }
        )
        return config
