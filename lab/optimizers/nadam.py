"""Nadam: Adam with a Nesterov look-ahead on the first moment."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import multi_tensor
from lab.optimizers.nadam_momentum import MOMENTUM_DECAY


@keras.saving.register_keras_serializable(package="lab")
class Nadam(multi_tensor.MultiTensorUpdate, keras.optimizers.Optimizer):
    """Nadam: Adam whose bias-corrected first moment looks one step ahead, as Nesterov does.

    With gradient ``g``, step ``t = 1, 2, ...``, learning rate ``lr`` and the momentum schedule
    ``μ_t = β₁·(1 − ½·0.96ᵗ)`` (which warms the momentum up towards ``β₁``)::

        m ← β₁·m + (1 − β₁)·g
        v ← β₂·v + (1 − β₂)·g²
        m̂ = μ_{t+1}·m / (1 − Π_{i≤t+1} μ_i) + (1 − μ_t)·g / (1 − Π_{i≤t} μ_i)
        v̂ = v / (1 − β₂ᵗ)
        θ ← θ − lr·m̂ / (√v̂ + ε)

    Compared with Adam's ``m̂ = m/(1 − β₁ᵗ)``, the first term applies *next* step's momentum to
    ``m`` (the look-ahead) and the second adds the current gradient with its own weight. ε is
    added after the bias correction, as in the paper placement of :class:`Adam`. The running
    product ``Π μ_i`` is kept in one scalar slot, updated once per step.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001``.
        beta_1: ``β₁`` in ``[0, 1)``. Defaults to ``0.9``.
        beta_2: ``β₂`` in ``[0, 1)``. Defaults to ``0.999``.
        epsilon: ``ε > 0``. Defaults to ``1e-7``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.Nadam``.

    Reference:
        Dozat, 2016, "Incorporating Nesterov momentum into Adam"
        (https://openreview.net/pdf?id=OM0jvwB8jIp57ZJjtNEZ).
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
        """Slots ``m`` and ``v`` per variable, and the scalar running product ``Π μ_i``."""
        if self.built:
            return
        super().build(variables)
        dtype = variables[0].dtype if variables else keras.backend.floatx()
        self.momentums, self.velocities = self.add_optimizer_variables(variables, ["momentum", "velocity"])
        # Keras's attribute name (μ is "u" there), so code written for keras.optimizers.Nadam finds it
        self._u_product = self.add_variable(
            shape=(), initializer="ones", dtype=dtype, aggregation="only_first_replica", name="mu_product"
        )

    @property
    def mu_product(self) -> Any:
        """The running product ``Π_{i≤t} μ_i``, a scalar optimiser variable (Keras: ``_u_product``)."""
        return self._u_product

    def _mu(self, step: Any, dtype: str) -> Any:
        """``μ_step = β₁·(1 − ½·0.96^step)``."""
        decay = ops.convert_to_tensor(MOMENTUM_DECAY, dtype)
        return ops.convert_to_tensor(self.beta_1, dtype) * (1.0 - 0.5 * ops.power(decay, step))

    def _backend_update_step(self, grads: list, trainable_variables: list, learning_rate: Any) -> None:
        """Advance ``Π μ_i`` to this step once, then update every variable."""
        dtype = self._u_product.dtype
        self.assign(self._u_product, self._u_product * self._mu(ops.cast(self.iterations + 1, dtype), dtype))
        internals.backend_update_step(super(), grads, trainable_variables, learning_rate)

    @multi_tensor.mirrored_by(multi_tensor.nadam)
    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        index = internals.variable_index(self, variable)
        t = ops.cast(self.iterations + 1, dtype)
        mu_t = self._mu(t, dtype)
        mu_next = self._mu(t + 1, dtype)
        mu_product = ops.cast(self._u_product, dtype)  # Π_{i≤t} μ_i, advanced for this step
        mu_product_next = mu_product * mu_next  # Π_{i≤t+1} μ_i
        beta_2_power = ops.power(ops.convert_to_tensor(self.beta_2, dtype), t)
        m = self.momentums[index]
        v = self.velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - self.beta_2))
        m_hat = ops.add(
            ops.divide(ops.multiply(mu_next, m), 1 - mu_product_next),
            ops.divide(ops.multiply(1 - mu_t, g), 1 - mu_product),
        )
        v_hat = ops.divide(v, 1 - beta_2_power)
        self.assign_sub(variable, ops.divide(ops.multiply(m_hat, lr), ops.add(ops.sqrt(v_hat), self.epsilon)))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
