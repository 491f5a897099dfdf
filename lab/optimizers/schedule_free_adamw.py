"""Schedule-free AdamW: an Adam-scaled base sequence, its running average, and their interpolation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
from keras import ops

from lab import checks, internals


@keras.saving.register_keras_serializable(package="lab")
class ScheduleFreeAdamW(keras.optimizers.Optimizer):
    """Schedule-free AdamW: no decay schedule; the *average* of the iterates is the model to evaluate.

    Three sequences per variable: the base sequence ``z`` (Adam-scaled gradient steps), its
    running average ``x`` (what to evaluate) and their interpolation ``y`` (where the gradient is
    taken; the model's variables hold ``y`` during training). With the gradient ``g`` at ``y``,
    step ``t = 1, 2, ...``, learning rate ``lr`` (constant or scheduled), decays ``β₁, β₂`` and
    the warm-up ``γ_t = lr·min(t/warmup_steps, 1)`` (``γ_t = lr`` without warm-up)::

        v ← β₂·v + (1 − β₂)·g²
        z ← z − γ_t·g / (√(v/(1 − β₂ᵗ)) + ε)          z₀ = θ₀
        x ← (1 − 1/t)·x + (1/t)·z                       the uniform average of z₁ … z_t
        y ← (1 − β₁)·z + β₁·x

    ``z`` is the slot ``momentum`` (Keras's name); ``x`` is not stored but recovered from the
    other two, ``x = (y − (1 − β₁)·z)/β₁`` -- so ``β₁`` must not be 0 (the paper's β = 0,
    Polyak–Ruppert averaging, is outside the range). ``β₁ = 1`` takes the gradient at the average
    itself (primal averaging). Weight decay is Keras's decoupled ``y ← y − lr·λ·y`` before the
    step (the paper decays at ``y`` inside the ``z`` step: ``z ← z − γ_t·(g/(…) + λ·y)``).

    **Evaluate at x.** The averaging replaces the schedule's final decay, so the weights that
    reach the schedule-free paper's results are ``x``, not the ``y`` the model holds while it
    trains (Keras's own ``keras.optimizers.ScheduleFreeAdamW`` leaves ``y`` in the model and does
    not expose ``x``). :meth:`averaged_weights` returns ``x``; inside
    ``with optimizer.use_averaged_weights(): ...`` the model's trained variables hold ``x`` (for
    ``model.evaluate``, ``predict`` or saving them) and are put back to ``y`` exactly on exit, so
    training continues unchanged.

    The twin against Keras 3.15, which differs from the rule above on two backends:
    ``keras.optimizers.ScheduleFreeAdamW`` keeps ``momentum.value`` as "z before the step", a
    snapshot on JAX but the live variable on TensorFlow and torch, so there the previous ``x``
    (``x_old``, recovered from y and z) is computed from the *updated* z; and it sets ``z₀ = θ₀`` by an assign in ``build``, which on
    TensorFlow, when the optimiser is built inside the first compiled ``fit`` step, never runs
    (z starts at 0). The twin computes ``x_old`` before z moves and starts z through its
    initializer, on every backend; it equals Keras on JAX.

    How it relates to the paper: the paper weights the average by ``γ_t²`` (``c_t = γ_t²/Σ γ_i²``)
    so that warm-up steps count less; Keras, and the twin, use ``c_t = 1/t`` (the same without
    warm-up and under a constant rate).

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.0025``.
        beta_1: ``β₁`` in ``(0, 1]``, the interpolation between ``z`` and ``x``. Defaults to ``0.9``.
        beta_2: ``β₂`` in ``[0, 1)``, the decay of the second moment. Defaults to ``0.999``.
        epsilon: ``ε > 0``. Defaults to ``1e-8``.
        warmup_steps: an integer ``>= 0``; the rate rises linearly over these steps. Defaults to ``0``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.ScheduleFreeAdamW``.

    References:
        - Defazio et al., 2024, "The road less scheduled" (https://arxiv.org/abs/2405.15682).
        - https://github.com/facebookresearch/schedule_free
    """

    def __init__(
        self,
        learning_rate: Any = 0.0025,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        warmup_steps: int = 0,
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
        self.beta_1 = checks.check_in_range("beta_1", beta_1, 0.0, 1.0, low_inclusive=False)
        self.beta_2 = checks.check_unit_interval_open_right("beta_2", beta_2)
        self.epsilon = checks.check_positive("epsilon", epsilon)
        self.warmup_steps = checks.check_non_negative_int("warmup_steps", warmup_steps)

    def build(self, variables: list) -> None:
        """Slots ``z`` (starting at the variable's value) and ``v`` per variable."""
        if self.built:
            return
        super().build(variables)
        # z₀ = θ₀ through the initializer, not an assign after creation: a build traced inside a
        # compiled TensorFlow step runs initializers once, eagerly, but never that trace's assigns
        self.base_sequences = [
            None
            if getattr(variable, "overwrite_with_gradient", False)
            else self.add_variable_from_reference(variable, "momentum", initializer=_value_of(variable))
            for variable in variables
        ]
        self.velocities = self.add_optimizer_variables(variables, "velocity")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        index = internals.variable_index(self, variable)
        t = ops.cast(self.iterations + 1, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        if self.warmup_steps > 0:
            lr = lr * ops.minimum(t / ops.cast(self.warmup_steps, dtype), 1.0)
        z, v = self.base_sequences[index], self.velocities[index]
        # x from this step's y and z, computed before z moves (see the class docstring)
        x_old = ops.divide(ops.subtract(variable, ops.multiply(1 - beta_1, z)), beta_1)
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - self.beta_2))
        denominator = ops.add(ops.sqrt(v / (1 - ops.power(ops.cast(self.beta_2, dtype), t))), self.epsilon)
        self.assign_sub(z, ops.divide(ops.multiply(lr, g), denominator))
        weight = 1.0 / t
        x = ops.add(ops.multiply(1 - weight, x_old), ops.multiply(weight, z))
        self.assign(variable, ops.add(ops.multiply(1 - beta_1, z), ops.multiply(beta_1, x)))

    def averaged_weights(self) -> list[Any]:
        """``x = (y − (1 − β₁)·z)/β₁`` of every variable the optimiser was built with, in that order.

        Variables it does not train (``overwrite_with_gradient``) are returned as they are.
        """
        if not self.built:
            raise ValueError("ScheduleFreeAdamW.averaged_weights() needs a built optimizer: train a step (or build) first.")
        weights = []
        for variable, z in zip(internals.built_variables(self), self.base_sequences):
            y = ops.stop_gradient(ops.copy(variable.value))  # plain values (torch's would track gradients)
            if z is None:
                weights.append(y)
                continue
            one_minus_beta_1 = ops.cast(1 - self.beta_1, variable.dtype)
            weights.append(ops.divide(ops.subtract(y, ops.multiply(one_minus_beta_1, z.value)), self.beta_1))
        return weights

    def evaluation_weights(self, variables: list[Any]) -> list[Any]:
        """``x`` of each of ``variables`` (the model's trainable variables): the averaged-iterate
        protocol that ``lab.callbacks.AveragedWeights`` evaluates with."""
        averaged = self.averaged_weights()
        return [averaged[internals.variable_index(self, variable)] for variable in variables]

    @contextlib.contextmanager
    def use_averaged_weights(self) -> Iterator[None]:
        """Within the block the trained variables hold ``x``; on exit, exactly the ``y`` they held."""
        averaged = self.averaged_weights()
        training_weights = [ops.stop_gradient(ops.copy(variable.value)) for variable in internals.built_variables(self)]
        for variable, x in zip(internals.built_variables(self), averaged):
            variable.assign(x)
        try:
            yield
        finally:
            for variable, y in zip(internals.built_variables(self), training_weights):
                variable.assign(y)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "warmup_steps": self.warmup_steps}
        )
        return config


def _value_of(variable: Any) -> Any:
    """An initializer that copies ``variable``'s current value."""

    def initializer(shape: tuple, dtype: Any = None) -> Any:
        return ops.cast(ops.copy(variable.value), dtype or variable.dtype)

    return initializer
