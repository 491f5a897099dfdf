"""Lion: the sign of an interpolated momentum, found by program search."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import multi_tensor


@keras.saving.register_keras_serializable(package="lab")
class Lion(multi_tensor.MultiTensorUpdate, keras.optimizers.Optimizer):
    """Lion (EvoLved Sign Momentum): every coordinate moves by exactly ``lr`` per step.

    With gradient ``g``, learning rate ``lr`` and decays ``β₁, β₂``::

        c = β₁·m + (1 − β₁)·g                         the update direction
        θ ← θ − lr·sign(c)
        m ← β₂·m + (1 − β₂)·g                         the momentum, tracked with the slower β₂

    Because only the sign of ``c`` is used, each step has the same size in every coordinate;
    the usual advice is a learning rate 3–10× smaller than AdamW's and a weight decay 3–10×
    larger. With ``β₁ = 0`` it is signSGD.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001``.
        beta_1: ``β₁`` in ``[0, 1)``, the interpolation of the update direction. Defaults to ``0.9``.
            ``keras.optimizers.Lion`` requires ``(0, 1]``: it rejects ``β₁ = 0``, which the lab
            keeps as the signSGD variant, and accepts ``β₁ = 1``, where the current gradient no
            longer enters the direction; Keras's ``test_invalid_beta_1`` is an expected difference.
        beta_2: ``β₂`` in ``[0, 1)``, the decay of the momentum. Defaults to ``0.99``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.Lion``.

    Reference:
        Chen et al., 2023, "Symbolic discovery of optimization algorithms"
        (http://arxiv.org/abs/2302.06675).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
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

    def build(self, variables: list) -> None:
        """One momentum slot ``m`` per variable."""
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")

    @multi_tensor.mirrored_by(multi_tensor.lion)
    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        beta_1 = ops.convert_to_tensor(self.beta_1, variable.dtype)
        beta_2 = ops.convert_to_tensor(self.beta_2, variable.dtype)
        m = self.momentums[internals.variable_index(self, variable)]
        c = ops.add(ops.multiply(m, beta_1), ops.multiply(g, 1.0 - beta_1))
        self.assign_sub(variable, ops.multiply(lr, ops.sign(c)))
        self.assign(m, ops.add(ops.multiply(m, beta_2), ops.multiply(g, 1.0 - beta_2)))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2})
        return config
