"""NAdamW: Nesterov-accelerated Adam with decoupled weight decay (the AlgoPerf baseline)."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers.nadam import Nadam
from lab.optimizers.nadam_momentum import MOMENTUM_DECAY


@keras.saving.register_keras_serializable(package="lab")
class NAdamW(Nadam):
    """NAdamW: Adam with a Nesterov look-ahead on the first moment and decoupled weight decay.

    With gradient ``g``, step ``t = 1, 2, ...``, learning rate ``lr``, decays ``β₁, β₂`` and
    ``λ = weight_decay``, the default (``momentum_decay=None``) is AlgoPerf's NAdamW, the
    Nesterov form of Dozat's Table 1 with a constant ``β₁`` (as ``optax.nadamw``)::

        θ ← θ − lr·λ·θ                                decoupled decay, before the step
        m ← β₁·m + (1 − β₁)·g                         v ← β₂·v + (1 − β₂)·g²
        m̄ = β₁·m + (1 − β₁)·g                         the look-ahead: one more momentum step
        θ ← θ − lr·(m̄ / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)

    It is AdamW with ``m`` replaced by ``m̄`` in the step (and ε after the bias correction, as
    the paper placement of :class:`lab.optimizers.Adam`).

    ``momentum_decay=ψ`` (a number ``> 0``) switches to PyTorch's ``torch.optim.NAdam`` with
    ``decoupled_weight_decay=True``: Dozat's momentum schedule ``μ_t = β₁·(1 − ½·0.96^(ψt))``
    and the two-term step of :class:`lab.optimizers.Nadam` (which is ``ψ = 1``); PyTorch's default
    is ``ψ = 0.004``. The two forms are different rules, not one rule at two settings: the
    schedule warms ``μ_t`` up from about ``β₁/2`` and corrects the bias with ``Π μ_i``, whereas
    AlgoPerf's form uses ``β₁`` throughout and Adam's ``1 − β₁ᵗ``.

    The decay is Keras's ``weight_decay`` (``exclude_from_weight_decay`` applies), as in
    :class:`lab.optimizers.AdamW`.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001``.
        weight_decay: ``λ >= 0``. Defaults to ``0.01`` (AlgoPerf's and PyTorch's AdamW default).
        beta_1: ``β₁`` in ``[0, 1)``. Defaults to ``0.9``.
        beta_2: ``β₂`` in ``[0, 1)``. Defaults to ``0.999``.
        epsilon: ``ε > 0``. Defaults to ``1e-8``.
        momentum_decay: ``None`` (AlgoPerf's form) or ``ψ > 0`` (PyTorch's NAdam), keyword only.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order follows
            :class:`lab.optimizers.AdamW`.

    References:
        - Dozat, 2016, "Incorporating Nesterov momentum into Adam"
          (https://openreview.net/pdf?id=OM0jvwB8jIp57ZJjtNEZ).
        - Loshchilov and Hutter, 2019, "Decoupled weight decay regularization"
          (https://arxiv.org/abs/1711.05101).
        - Dahl et al., 2023, "Benchmarking Neural Network Training Algorithms"
          (https://arxiv.org/abs/2306.07179): the AlgoPerf NAdamW baseline;
          ``torch.optim.NAdam(decoupled_weight_decay=True)`` for ``momentum_decay``.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
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
        momentum_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        if weight_decay is None:
            raise ValueError("`weight_decay` must be a number >= 0 for NAdamW, got None.")
        checks.check_non_negative("weight_decay", weight_decay)
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
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
        self.momentum_decay = (
            None if momentum_decay is None else checks.check_positive("momentum_decay", momentum_decay)
        )

    def _mu(self, step: Any, dtype: str) -> Any:
        """``μ_step = β₁·(1 − ½·0.96^(ψ·step))``; only used with ``momentum_decay``."""
        decay = ops.convert_to_tensor(MOMENTUM_DECAY, dtype)
        exponent = ops.multiply(step, ops.convert_to_tensor(self.momentum_decay or 1.0, dtype))
        return ops.convert_to_tensor(self.beta_1, dtype) * (1.0 - 0.5 * ops.power(decay, exponent))

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self.momentum_decay is not None:
            super().update_step(gradient, variable, learning_rate)
            return
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        index = internals.variable_index(self, variable)
        t = ops.cast(self.iterations + 1, dtype)
        beta_1_power = ops.power(ops.convert_to_tensor(self.beta_1, dtype), t)
        beta_2_power = ops.power(ops.convert_to_tensor(self.beta_2, dtype), t)
        m = self.momentums[index]
        v = self.velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - self.beta_2))
        m_bar = ops.add(ops.multiply(m, self.beta_1), ops.multiply(g, 1 - self.beta_1))
        m_hat = ops.divide(m_bar, 1 - beta_1_power)
        v_hat = ops.divide(v, 1 - beta_2_power)
        self.assign_sub(variable, ops.divide(ops.multiply(m_hat, lr), ops.add(ops.sqrt(v_hat), self.epsilon)))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["momentum_decay"] = self.momentum_decay
        return config
