"""RAdam: Adam whose adaptive step is switched on gradually, by a variance rectification term."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import elementwise

# PyTorch's threshold on the length of the approximated simple moving average (the paper uses 4).
RECTIFICATION_THRESHOLD = 5.0
# Below this u = t·ln(1/β₂) the length ρ_t comes from its series (see `sma_length`).
SERIES_LIMIT = 1.0


def one_minus_power(beta: float, t: Any) -> Any:
    """``1 − βᵗ`` as ``−expm1(t·ln β)``: exact to float precision even where ``βᵗ`` is near 1."""
    if beta == 0.0:
        return ops.ones_like(t)
    return -ops.expm1(t * math.log(beta))


def sma_length(t: Any, beta_2: float, dtype: str) -> Any:
    """``ρ_t = ρ_∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)``, accurate in float32 too.

    Directly, ρ_t is a small difference of two numbers near ``ρ_∞ ≈ 2/(1 − β₂)`` (2000 for
    ``β₂ = 0.999``) while ``t·(1 − β₂)`` is small, and float32 loses three to four digits of it
    (PyTorch computes it in Python floats). With ``L = ln(1/β₂)`` and ``u = t·L``,
    ``2t/(eᵘ − 1) = 2/L − t + t·(u/6 − u³/360 + u⁵/15120 − u⁷/604800 + u⁹/23950080 − ...)``
    (the Bernoulli series of ``u/(eᵘ − 1)``), so for ``u <= 1``
    ``ρ_t = (ρ_∞ − 2/L) + t·(1 − u/6 + u³/360 − ...)`` with the constant in float64, and beyond
    it the direct form, no longer a cancellation, with ``eᵘ − 1`` as ``expm1``.
    """
    rho_infinity = 2.0 / (1.0 - beta_2) - 1.0
    if beta_2 == 0.0:
        return ops.ones_like(t) * rho_infinity
    log_inverse = -math.log(beta_2)
    u = t * log_inverse
    u_squared = u * u
    # u/6 − u³/360 + u⁵/15120 − u⁷/604800 + u⁹/23950080, nested
    series = u / 6.0 * (
        1.0 - u_squared / 60.0 * (1.0 - u_squared / 42.0 * (1.0 - u_squared / 40.0 * (1.0 - u_squared * 10.0 / 396.0)))
    )
    near = (rho_infinity - 2.0 / log_inverse) + t * (1.0 - series)
    far = rho_infinity - 2.0 * t / ops.expm1(elementwise.maximum(u, SERIES_LIMIT))
    return ops.where(u <= SERIES_LIMIT, near, far)


@keras.saving.register_keras_serializable(package="lab")
class RAdam(keras.optimizers.Optimizer):
    """RAdam: Adam with the variance of its adaptive learning rate rectified.

    With gradient ``g``, step ``t = 1, 2, ...``, learning rate ``lr``, decays ``β₁, β₂``::

        m ← β₁·m + (1 − β₁)·g                      v ← β₂·v + (1 − β₂)·g²
        m̂ = m / (1 − β₁ᵗ)
        ρ_∞ = 2/(1 − β₂) − 1                       ρ_t = ρ_∞ − 2t·β₂ᵗ / (1 − β₂ᵗ)
        ρ_t > 5:   r_t = √((ρ_t − 4)(ρ_t − 2)ρ_∞ / ((ρ_∞ − 4)(ρ_∞ − 2)ρ_t))
                   θ ← θ − lr·r_t·m̂·√(1 − β₂ᵗ) / (√v + ε)
        otherwise: θ ← θ − lr·m̂                     (SGD with bias-corrected momentum)

    ``ρ_t`` is the length of the simple moving average that the exponential average ``v``
    approximates; while it is short the variance of ``1/√v̂`` is large (or, below 4, undefined),
    so the first steps are momentum SGD and ``r_t`` then raises the adaptive step smoothly to
    Adam's (``r_t → 1`` as ``t → ∞``). With ``β₂ = 0.999`` the switch happens at ``t = 6``. This
    follows ``torch.optim.RAdam`` exactly: its threshold is ``ρ_t > 5`` (the paper's Algorithm 2
    uses ``ρ_t > 4``) and ε is added to ``√v``, not to ``√v̂``.

    Weight decay ``λ = weight_decay``: ``decoupled_weight_decay=False`` (PyTorch's default) adds
    the L2 gradient ``g ← g + λ·θ`` before the moments; ``True`` shrinks the weights
    ``θ ← θ − lr·λ·θ`` before the step (AdamW's decoupled decay, Keras's ``weight_decay``).
    ``exclude_from_weight_decay`` applies to both.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001``.
        beta_1: ``β₁`` in ``[0, 1)``. Defaults to ``0.9``.
        beta_2: ``β₂`` in ``[0, 1)``. Defaults to ``0.999``.
        epsilon: ``ε > 0``. Defaults to ``1e-8`` (the paper's and PyTorch's).
        weight_decay: ``λ >= 0`` or ``None`` (no decay). Defaults to ``None``.
        decoupled_weight_decay: see above (keyword only). Defaults to ``False``.
        **Other arguments**: as ``keras.optimizers.Optimizer``.

    Reference:
        Liu et al., 2020, "On the Variance of the Adaptive Learning Rate and Beyond"
        (https://arxiv.org/abs/1908.03265); ``torch.optim.RAdam``.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
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
        decoupled_weight_decay: bool = False,
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
        self.epsilon = checks.check_positive("epsilon", epsilon)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)

    def build(self, variables: list) -> None:
        """Slots ``m`` and ``v`` per variable."""
        if self.built:
            return
        super().build(variables)
        self.momentums, self.velocities = self.add_optimizer_variables(variables, ["momentum", "velocity"])

    def _apply_weight_decay(self, variables: list) -> None:
        """Keras's decoupled decay only when asked for; the L2 form is added in ``update_step``."""
        if self.decoupled_weight_decay:
            internals.apply_weight_decay(super(), variables)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        if self.weight_decay and not self.decoupled_weight_decay and internals.uses_weight_decay(self, variable):
            g = ops.add(g, ops.multiply(variable, ops.cast(self.weight_decay, dtype)))
        index = internals.variable_index(self, variable)
        t = ops.cast(self.iterations + 1, dtype)
        m = self.momentums[index]
        v = self.velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - self.beta_2))
        m_hat = ops.divide(m, one_minus_power(self.beta_1, t))
        rho_infinity = 2.0 / (1.0 - self.beta_2) - 1.0
        rho_t = sma_length(t, self.beta_2, dtype)
        # the branch not taken may hold the root of a negative number; `where` discards it
        rho_clipped = elementwise.maximum(rho_t, RECTIFICATION_THRESHOLD)
        rectification = ops.sqrt(
            (rho_clipped - 4.0) * (rho_clipped - 2.0) * rho_infinity
            / ((rho_infinity - 4.0) * (rho_infinity - 2.0) * rho_clipped)
        )
        adaptive = ops.divide(ops.sqrt(one_minus_power(self.beta_2, t)), ops.add(ops.sqrt(v), self.epsilon))
        scale = ops.where(rho_t > RECTIFICATION_THRESHOLD, ops.multiply(adaptive, rectification), 1.0)
        self.assign_sub(variable, ops.multiply(ops.multiply(m_hat, lr), scale))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "decoupled_weight_decay": self.decoupled_weight_decay,
            }
        )
        return config
