"""Prodigy: Adam whose step size d is estimated from the run itself (parameter-free)."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import elementwise, slots


@keras.saving.register_keras_serializable(package="lab")
class Prodigy(keras.optimizers.Optimizer):
    """Prodigy: Adam with a learned step size ``d``, an estimate of the distance to the solution.

    With gradient ``g_k`` at step ``k = 0, 1, ...``, the variables' starting point ``θ₀``, the
    learning rate ``lr`` (a multiplier of ``d``; leave it at 1), ``β₃ = √β₂`` unless given, and
    ``⟨·,·⟩``, ``‖·‖₁`` taken over **all** variables together::

        η_k = d_k·lr·(√(1 − β₂^(k+1)) / (1 − β₁^(k+1)) if use_bias_correction else 1)
        r_{k+1} = β₃·r_k + (d_k/d₀)·η_k·⟨g_k, θ₀ − θ_k⟩
        s_{k+1} = β₃·s_k + (d_k/d₀)·η_k·g_k             (η_k → d_k with safeguard_warmup)
        d̂ = d_coef·r_{k+1} / ‖s_{k+1}‖₁
        d_{k+1} = min(max(d_max, d̂), growth_rate·d'),   d' = max(d_k, d̂) while d_k = d₀, else d_k
        m ← β₁·m + (1 − β₁)·d_k·g_k                      v ← β₂·v + (1 − β₂)·d_k²·g_k²
        θ_{k+1} = θ_k − η_k·m / (√v + d_{k+1}·ε)          (β₁ = 0: η_k·d_{k+1}·g_k in place of η_k·m)

    where ``d_max`` is the running maximum of ``d̂`` (from ``d₀``). ``d`` never decreases: it
    grows from ``d₀`` towards the scale at which the weights move, and the steps are Adam's steps
    scaled by it. The factor ``d_k/d₀`` in ``r`` and ``s`` cancels in ``d̂``; it keeps both away
    from underflow while ``d`` is tiny.

    This is the reference implementation (``prodigyopt`` 1.1.2), including its choices where it
    refines the paper's Algorithm: no ``(1 − β₃)`` factor (it cancels in ``d̂``), ``d_coef``,
    ``growth_rate``, the optional bias correction and ``safeguard_warmup``, ε scaled by the new
    ``d``. Because ``d̂`` is a ratio of sums over every variable, each step first reduces over all
    variables (``_backend_update_step``), then updates each one. Where the reference returns
    without a step (``‖s‖₁ = 0``: every gradient so far zero, or ``lr = 0``) nothing changes here
    either, except that Keras's step counter still advances. Not ported: the reference's
    ``slice_p`` (statistics on every p-th entry, a memory saving) and its FSDP handling.

    Weight decay ``λ = weight_decay``: ``decoupled_weight_decay=True`` (the reference's
    ``decouple``, its default) shrinks ``θ ← θ − η_k·λ·θ`` before the step, with Prodigy's
    ``η_k`` rather than Keras's ``lr``; ``False`` adds ``λ·θ`` to the gradient first.
    ``exclude_from_weight_decay`` applies to both.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable; multiplies
            ``d``. Defaults to ``1.0``.
        beta_1: ``β₁`` in ``[0, 1)``; ``0`` keeps no first moment. Defaults to ``0.9``.
        beta_2: ``β₂`` in ``[0, 1)``. Defaults to ``0.999``.
        beta_3: ``β₃`` in ``[0, 1)`` or ``None`` for ``√β₂``. Defaults to ``None``.
        epsilon: ``ε > 0``. Defaults to ``1e-8``.
        d0: the initial estimate ``d₀ > 0``. Defaults to ``1e-6``.
        d_coef: ``> 0``, multiplies ``d̂`` (the reference's preferred knob; 0.5 to 2 are
            typical). Defaults to ``1.0``.
        growth_rate: ``>= 1``, the largest factor by which ``d`` may grow in one step
            (``inf``: unbounded; 1.02 acts as a warm-up). Defaults to ``inf``.
        use_bias_correction: Adam's bias correction in ``η_k``. Defaults to ``False``.
        safeguard_warmup: leave ``lr`` out of ``s`` (for a warm-up schedule). Defaults to
            ``False``.
        weight_decay: ``λ >= 0`` or ``None``. Defaults to ``None``.
        decoupled_weight_decay: see above (keyword only). Defaults to ``True``.
        **Other arguments**: as ``keras.optimizers.Optimizer``.

    Reference:
        Mishchenko and Defazio, 2024, "Prodigy: An Expeditiously Adaptive Parameter-Free
        Learner" (https://arxiv.org/abs/2306.06101), Algorithm 4 (Adam); the ``prodigyopt``
        package (https://github.com/konstmish/prodigy). PyTorch has no Prodigy.
    """

    def __init__(
        self,
        learning_rate: Any = 1.0,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        beta_3: float | None = None,
        epsilon: float = 1e-8,
        d0: float = 1e-6,
        d_coef: float = 1.0,
        growth_rate: float = math.inf,
        use_bias_correction: bool = False,
        safeguard_warmup: bool = False,
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
        *,
        decoupled_weight_decay: bool = True,
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
        self.beta_1 = checks.check_unit_interval_open_right("beta_1", beta_1)
        self.beta_2 = checks.check_unit_interval_open_right("beta_2", beta_2)
        self.beta_3 = None if beta_3 is None else checks.check_unit_interval_open_right("beta_3", beta_3)
        self.epsilon = checks.check_positive("epsilon", epsilon)
        self.d0 = checks.check_positive("d0", d0)
        self.d_coef = checks.check_positive("d_coef", d_coef)
        self.growth_rate = checks.check_in_range("growth_rate", growth_rate, 1.0, None)
        self.use_bias_correction = bool(use_bias_correction)
        self.safeguard_warmup = bool(safeguard_warmup)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)

    def build(self, variables: list) -> None:
        """Slots per variable: ``m`` (when ``β₁ > 0``), ``v``, ``s`` and the start ``θ₀`` (taken
        at the first update).
        Scalars: ``d``, ``d_max``, the numerator ``r``, this step's ``‖s‖₁`` and the ``d`` the
        step started from (read by ``update_step``)."""
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum") if self.beta_1 > 0 else []
        # θ₀ is taken at the first update, as the reference takes it at its first step
        self.velocities, self.gradient_sums, self.initial_values = self.add_optimizer_variables(
            variables, ["velocity", "gradient_sum", "initial_value"]
        )
        dtype = slots.scalar_dtype(variables)
        self.d = slots.scalar(self, "d", self.d0, dtype)
        self.d_max = slots.scalar(self, "d_max", self.d0, dtype)
        self.d_numerator = slots.scalar(self, "d_numerator", 0.0, dtype)
        self.d_denominator = slots.scalar(self, "d_denominator", 0.0, dtype)
        self.d_previous = slots.scalar(self, "d_previous", self.d0, dtype)

    def _beta_3(self) -> float:
        return math.sqrt(self.beta_2) if self.beta_3 is None else self.beta_3

    def _step_size(self, d: Any, learning_rate: Any, dtype: str) -> Any:
        """``η = d·lr·(bias correction)``."""
        eta = ops.multiply(ops.cast(d, dtype), ops.cast(learning_rate, dtype))
        if self.use_bias_correction:
            t = ops.cast(self.iterations + 1, dtype)
            beta_1_power = ops.power(ops.convert_to_tensor(self.beta_1, dtype), t)
            beta_2_power = ops.power(ops.convert_to_tensor(self.beta_2, dtype), t)
            eta = eta * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        return eta

    def _decayed_gradient(self, gradient: Any, variable: Any) -> Any:
        """The gradient with the L2 term ``λ·θ`` of coupled weight decay, in the variable's dtype."""
        g = ops.cast(gradient, variable.dtype)
        if self.weight_decay and not self.decoupled_weight_decay and internals.uses_weight_decay(self, variable):
            g = ops.add(g, ops.multiply(variable, ops.cast(self.weight_decay, variable.dtype)))
        return g

    def _s_increment(self, g: Any, d: Any, eta: Any) -> Any:
        """``(d/d₀)·η·g`` (``(d/d₀)·d·g`` with ``safeguard_warmup``)."""
        scale = (d / self.d0) * (d if self.safeguard_warmup else eta)
        return ops.multiply(g, ops.cast(scale, g.dtype))

    def _apply_weight_decay(self, variables: list) -> None:
        """Both forms of decay are applied in ``update_step``, with Prodigy's step size."""

    def _backend_update_step(self, grads: list, trainable_variables: list, learning_rate: Any) -> None:
        """Reduce over every variable to the new ``d``, then update each variable."""
        dtype = self.d.dtype
        beta_3 = self._beta_3()
        d = ops.convert_to_tensor(self.d)
        eta = self._step_size(d, learning_rate, dtype)
        numerator_increment = ops.zeros((), dtype)
        denominator = ops.zeros((), dtype)
        for gradient, variable in zip(_sum_over_replicas(grads), trainable_variables):
            index = internals.variable_index(self, variable)
            g = self._decayed_gradient(gradient, variable)
            displacement = ops.subtract(slots.initial_value(self, self.initial_values[index], variable), variable)
            numerator_increment += ops.cast(ops.sum(ops.multiply(g, displacement)), dtype)
            increment = self._s_increment(g, ops.cast(d, g.dtype), ops.cast(eta, g.dtype))
            s_next = ops.add(ops.multiply(self.gradient_sums[index], beta_3), increment)
            denominator += ops.cast(ops.sum(ops.abs(s_next)), dtype)
        numerator = beta_3 * self.d_numerator + (d / self.d0) * eta * numerator_increment
        # the reference skips the step when lr = 0 or no gradient has been seen (‖s‖₁ = 0)
        denominator = ops.where(ops.cast(learning_rate, dtype) > 0, denominator, 0.0)
        active = denominator > 0
        d_hat = self.d_coef * numerator / ops.where(active, denominator, 1.0)
        d_new = ops.where(ops.equal(d, ops.convert_to_tensor(self.d0, dtype)), elementwise.maximum(d, d_hat), d)
        d_max = elementwise.maximum(self.d_max, d_hat)
        d_new = elementwise.minimum(d_max, d_new * self.growth_rate)
        self.assign(self.d_previous, d)
        self.assign(self.d_denominator, denominator)
        self.assign(self.d_numerator, ops.where(active, numerator, ops.convert_to_tensor(self.d_numerator)))
        self.assign(self.d_max, ops.where(active, d_max, ops.convert_to_tensor(self.d_max)))
        self.assign(self.d, ops.where(active, d_new, d))
        internals.backend_update_step(super(), grads, trainable_variables, learning_rate)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        index = internals.variable_index(self, variable)
        d_previous = ops.cast(self.d_previous, dtype)
        d = ops.cast(self.d, dtype)
        eta = self._step_size(d_previous, learning_rate, dtype)
        active = self.d_denominator > 0
        g = self._decayed_gradient(gradient, variable)
        self.assign(self.initial_values[index], slots.initial_value(self, self.initial_values[index], variable))

        def assign_if_active(slot: Any, value: Any) -> None:
            self.assign(slot, ops.where(active, value, ops.convert_to_tensor(slot)))

        v = ops.add(
            ops.multiply(self.velocities[index], self.beta_2),
            ops.multiply(ops.square(g), ops.square(d_previous) * (1 - self.beta_2)),
        )
        assign_if_active(self.velocities[index], v)
        s = ops.add(ops.multiply(self.gradient_sums[index], self._beta_3()), self._s_increment(g, d_previous, eta))
        assign_if_active(self.gradient_sums[index], s)
        if self.beta_1 > 0:
            m = ops.add(
                ops.multiply(self.momentums[index], self.beta_1), ops.multiply(g, d_previous * (1 - self.beta_1))
            )
            assign_if_active(self.momentums[index], m)
            direction = m
        else:
            direction = ops.multiply(g, d)
        theta = variable
        if self.weight_decay and self.decoupled_weight_decay and internals.uses_weight_decay(self, variable):
            theta = ops.subtract(theta, ops.multiply(theta, eta * ops.cast(self.weight_decay, dtype)))
        theta = ops.subtract(theta, ops.divide(ops.multiply(direction, eta), ops.add(ops.sqrt(v), d * self.epsilon)))
        assign_if_active(variable, theta)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "beta_3": self.beta_3,
                "epsilon": self.epsilon,
                "d0": self.d0,
                "d_coef": self.d_coef,
                "growth_rate": self.growth_rate,
                "use_bias_correction": self.use_bias_correction,
                "safeguard_warmup": self.safeguard_warmup,
                "decoupled_weight_decay": self.decoupled_weight_decay,
            }
        )
        return config


def _sum_over_replicas(grads: list) -> list:
    """The gradients summed over the replicas of a ``tf.distribute`` strategy (as TensorFlow's
    optimizer does before ``update_step``), so ``d`` sees the global gradient; unchanged
    elsewhere."""
    if keras.backend.backend() != "tensorflow":
        return grads
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return grads
    return context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
