"""FTRL-Proximal: follow the regularised leader, with per-coordinate rates and L1/L2 terms."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals

# keras.optimizers.Ftrl's wording of its argument checks (the ranges are the same)
NON_NEGATIVE_MESSAGE = "`{name}` needs to be positive or zero. Received: {name}={value}."
NON_POSITIVE_MESSAGE = "`{name}` needs to be negative or zero. Received: {name}={value}."


@keras.saving.register_keras_serializable(package="lab")
class Ftrl(keras.optimizers.Optimizer):
    """FTRL-Proximal: each weight is the closed-form minimiser of the linearised past losses.

    With gradient ``g``, learning rate ``lr``, power ``p`` (``learning_rate_power``, ``<= 0``),
    L1 strength ``λ₁``, L2 strength ``λ₂``, shrinkage ``λ₂ₛ``, ``β`` (``beta``), the accumulator
    ``n`` starting at ``initial_accumulator_value`` and the linear term ``z`` at zero::

        g̃ = g + 2·λ₂ₛ·θ                               the gradient with the shrinkage penalty
        n' = n + g²
        σ = (n'^(−p) − n^(−p)) / lr                    (p = −½: σ = (√n' − √n)/lr)
        z ← z + g̃ − σ·θ
        θ ← (clip(z, −λ₁, λ₁) − z) / (n'^(−p)/lr + 2·(λ₂ + β/(2·lr)))
        n ← n'

    ``θ`` is not moved by a step but recomputed from ``z``: it is the minimiser of
    ``z·θ + ½·(n'^(−p)/lr + 2λ₂ + β/lr)·θ² + λ₁·|θ|``, which is exactly zero where ``|z| <= λ₁``
    (the L1 term makes the weights sparse, the reason FTRL serves click-through models with huge
    sparse inputs). The per-coordinate rate is ``lr/n^(−p)``; with ``p = −½`` it is AdaGrad's
    ``lr/√n`` (the paper's ``α/(β + √n)`` with β folded into the L2 term, as in Keras and
    TensorFlow). ``λ₂`` is the paper's stabilising L2 term; ``λ₂ₛ`` is an L2 penalty added to the
    loss (a magnitude penalty), entering only through ``g̃``. ``n`` accumulates ``g²`` of the raw
    gradient, not of ``g̃``.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001``.
        learning_rate_power: ``p <= 0``; ``0`` keeps the per-coordinate rate fixed. Defaults to ``-0.5``.
        initial_accumulator_value: the starting ``n``, ``>= 0``. Defaults to ``0.1``.
        l1_regularization_strength: ``λ₁ >= 0``. Defaults to ``0.0``.
        l2_regularization_strength: ``λ₂ >= 0``. Defaults to ``0.0``.
        l2_shrinkage_regularization_strength: ``λ₂ₛ >= 0``. Defaults to ``0.0``.
        beta: the paper's ``β >= 0``. Defaults to ``0.0``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.Ftrl``. The argument errors use Keras's wording.

    Reference:
        McMahan et al., 2013, "Ad click prediction: a view from the trenches"
        (https://research.google.com/pubs/archive/41159.pdf).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
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
        non_negative = {"message": NON_NEGATIVE_MESSAGE}
        self.initial_accumulator_value = checks.check_non_negative(
            "initial_accumulator_value", initial_accumulator_value, **non_negative
        )
        self.learning_rate_power = checks.check_non_positive(
            "learning_rate_power", learning_rate_power, message=NON_POSITIVE_MESSAGE
        )
        self.l1_regularization_strength = checks.check_non_negative(
            "l1_regularization_strength", l1_regularization_strength, **non_negative
        )
        self.l2_regularization_strength = checks.check_non_negative(
            "l2_regularization_strength", l2_regularization_strength, **non_negative
        )
        self.l2_shrinkage_regularization_strength = checks.check_non_negative(
            "l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength, **non_negative
        )
        self.beta = checks.check_non_negative("beta", beta, **non_negative)

    def build(self, variables: list) -> None:
        """Slots ``n`` (filled with ``initial_accumulator_value``) and ``z`` per variable."""
        if self.built:
            return
        super().build(variables)
        self.accumulators, self.linears = self.add_optimizer_variables(
            variables,
            ["accumulator", "linear"],
            initializer=[keras.initializers.Constant(self.initial_accumulator_value), "zeros"],
        )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        index = internals.variable_index(self, variable)
        n = self.accumulators[index]
        z = self.linears[index]
        power = -self.learning_rate_power
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        shrunk_gradient = ops.add(g, ops.multiply(2 * self.l2_shrinkage_regularization_strength, variable))
        n_new = ops.add(n, ops.square(g))
        sigma = ops.divide(ops.subtract(ops.power(n_new, power), ops.power(n, power)), lr)
        self.assign_add(z, ops.subtract(shrunk_gradient, ops.multiply(sigma, variable)))
        quadratic = ops.add(ops.divide(ops.power(n_new, power), lr), 2 * l2)
        l1 = self.l1_regularization_strength
        self.assign(variable, ops.divide(ops.subtract(ops.clip(z, -l1, l1), z), quadratic))
        self.assign(n, n_new)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
                "beta": self.beta,
            }
        )
        return config
