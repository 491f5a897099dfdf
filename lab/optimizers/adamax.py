"""Adamax: Adam with the second moment replaced by an exponentially weighted infinity norm."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import multi_tensor


@keras.saving.register_keras_serializable(package="lab")
class Adamax(multi_tensor.MultiTensorUpdate, keras.optimizers.Optimizer):
    """Adamax: the Adam step divided by a decaying maximum of ``|g|`` instead of an RMS.

    With gradient ``g``, step ``t = 1, 2, ...``, learning rate ``lr``, decays ``β₁, β₂``::

        m ← β₁·m + (1 − β₁)·g                         first moment, as Adam
        u ← max(β₂·u, |g|)                            exponentially weighted infinity norm
        θ ← θ − lr/(1 − β₁ᵗ) · m/(u + ε)

    Adam's ``v`` is an exponential average of ``|g|²`` (an L² norm over time); taking the L^p
    norm and letting ``p → ∞`` gives ``u``, the paper's Section 7.1. ``u`` needs no bias
    correction (it is not an average that starts at zero: its first value is ``|g₁|``), so only
    ``m`` is corrected. A single large gradient sets ``u`` and decays away at the rate ``β₂``,
    where Adam's ``v`` would average it in. ε is added to ``u`` (Keras's and TensorFlow's
    placement; the paper has none).

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001`` (the paper suggests ``0.002``).
        beta_1: ``β₁`` in ``[0, 1)``. Defaults to ``0.9``.
        beta_2: ``β₂`` in ``[0, 1)``, the decay of the infinity norm. Defaults to ``0.999``.
        epsilon: ``ε > 0``. Defaults to ``1e-7``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.Adamax``.

    Reference:
        Kingma and Ba, 2014, "Adam: A method for stochastic optimization", Section 7.1
        (https://arxiv.org/abs/1412.6980).
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
        """Slots ``m`` and ``u`` per variable."""
        if self.built:
            return
        super().build(variables)
        self.momentums, self.norms = self.add_optimizer_variables(variables, ["momentum", "norm"])

    @multi_tensor.mirrored_by(multi_tensor.adamax)
    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        index = internals.variable_index(self, variable)
        t = ops.cast(self.iterations + 1, variable.dtype)
        beta_1_power = ops.power(ops.convert_to_tensor(self.beta_1, variable.dtype), t)
        m = self.momentums[index]
        u = self.norms[index]
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - self.beta_1))
        self.assign(u, ops.maximum(ops.multiply(self.beta_2, u), ops.abs(g)))
        self.assign_sub(variable, ops.divide(ops.multiply(lr, m), ops.multiply(1 - beta_1_power, ops.add(u, self.epsilon))))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
