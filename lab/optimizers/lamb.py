"""LAMB: the Adam direction, rescaled per variable by a trust ratio ‖θ‖/‖update‖."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals


@keras.saving.register_keras_serializable(package="lab")
class Lamb(keras.optimizers.Optimizer):
    """LAMB (layer-wise adaptive moments): Adam's direction, with a step of ``lr·‖θ‖`` per variable.

    With gradient ``g``, step ``t = 1, 2, ...``, learning rate ``lr``, decays ``β₁, β₂``; norms
    are Frobenius norms over the whole variable (one "layer")::

        m ← β₁·m + (1 − β₁)·g        v ← β₂·v + (1 − β₂)·g²
        r = (m/(1 − β₁ᵗ)) / (√(v/(1 − β₂ᵗ)) + ε)      Adam's direction, ε after the correction
        φ = ‖θ‖/‖r‖  if ‖θ‖ > 0 and ‖r‖ > 0, else 1    the trust ratio
        θ ← θ − lr·φ·r

    The step of each variable has norm ``lr·‖θ‖``: a relative change of ``lr`` per step
    whatever the scale of its gradients, which is what lets LAMB train with very large batches
    (and large rates) where Adam's per-coordinate steps do not match the weights' scale. A
    variable at zero (e.g. a fresh bias) takes Adam's step (``φ = 1``).

    Weight decay: the paper adds ``λ·θ`` to ``r`` before the trust ratio. Keras applies
    ``weight_decay`` as every Keras optimiser does, decoupled, ``θ ← θ − lr·λ·θ`` before the step
    (so ``‖θ‖`` is taken after the decay); the twin does the same.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001``.
        beta_1: ``β₁`` in ``[0, 1)``. Defaults to ``0.9``.
        beta_2: ``β₂`` in ``[0, 1)``. Defaults to ``0.999``.
        epsilon: ``ε > 0``. Defaults to ``1e-7``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.Lamb``.

    Reference:
        You et al., 2020, "Large batch optimization for deep learning: training BERT in 76
        minutes" (https://arxiv.org/abs/1904.00962).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
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
        self.beta_1 = checks.check_unit_interval_open_right("beta_1", beta_1)
        self.beta_2 = checks.check_unit_interval_open_right("beta_2", beta_2)
        self.epsilon = checks.check_positive("epsilon", epsilon)

    def build(self, variables: list) -> None:
        """Slots ``m`` and ``v`` per variable."""
        if self.built:
            return
        super().build(variables)
        self.momentums, self.velocities = self.add_optimizer_variables(variables, ["momentum", "velocity"])

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        index = internals.variable_index(self, variable)
        t = ops.cast(self.iterations + 1, variable.dtype)
        beta_1_power = ops.power(ops.convert_to_tensor(self.beta_1, variable.dtype), t)
        beta_2_power = ops.power(ops.convert_to_tensor(self.beta_2, variable.dtype), t)
        m = self.momentums[index]
        v = self.velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - self.beta_2))
        m_hat = ops.divide(m, 1 - beta_1_power)
        r = ops.divide(m_hat, ops.add(ops.sqrt(ops.divide(v, 1 - beta_2_power)), self.epsilon))
        weight_norm = ops.sqrt(ops.sum(ops.square(variable)))
        update_norm = ops.sqrt(ops.sum(ops.square(r)))
        both_positive = ops.logical_and(ops.greater(weight_norm, 0), ops.greater(update_norm, 0))
        trust_ratio = ops.where(both_positive, ops.divide(weight_norm, update_norm), 1.0)
        self.assign_sub(variable, ops.multiply(ops.multiply(trust_ratio, lr), r))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
