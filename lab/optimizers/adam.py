"""Adam and AdamW: bias-corrected moment estimates, with ε placed as Keras does or as the paper does."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import elementwise
from lab.optimizers import multi_tensor

EPSILON_PLACEMENTS = ("keras", "paper")
# keras.optimizers.AdamW's wording (for None), with the range the lab checks
WEIGHT_DECAY_MESSAGE = "Argument `{name}` must be a float. Received: {name}={value}. AdamW needs one in [0, +inf)."


@keras.saving.register_keras_serializable(package="lab")
class Adam(multi_tensor.MultiTensorUpdate, keras.optimizers.Optimizer):
    """Adam: momentum on the gradient, step scaled by a running RMS of the gradient.

    With gradient ``g``, step ``t = 1, 2, ...``, learning rate ``lr``, decays ``β₁, β₂``::

        m ← β₁·m + (1 − β₁)·g                         first moment
        v ← β₂·v + (1 − β₂)·g²                        second moment
        m̂ = m / (1 − β₁ᵗ)        v̂ = v / (1 − β₂ᵗ)     bias corrections

    ``epsilon_placement="paper"`` (Algorithm 1 of the paper; notebooks 000, 002 and PyTorch)::

        θ ← θ − lr·m̂ / (√v̂ + ε)

    ``epsilon_placement="keras"`` (the default; Keras and TensorFlow fold the corrections into
    the step size)::

        α_t = lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ)
        θ ← θ − α_t·m / (√v + ε)

    The two are the same rule with a different ε: the Keras form equals the paper form with
    ``ε_paper = ε / √(1 − β₂ᵗ)``, the "ε̂" of the paper's Section 2. Early in training
    (``1 − β₂ᵗ`` small) the Keras ε is effectively much larger — ``ε/√(1 − 0.999) ≈ 32ε`` at
    ``t = 1`` — and the two converge as ``t`` grows. They differ only where ``√v̂`` is of the order
    of ``ε``.

    ``amsgrad=True`` keeps ``v_max ← max(v_max, v)`` and uses it in place of ``v`` (and ``v̂``
    is ``v_max / (1 − β₂ᵗ)`` in the paper placement, as in PyTorch).

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001``.
        beta_1: ``β₁`` in ``[0, 1)``. Defaults to ``0.9``.
        beta_2: ``β₂`` in ``[0, 1)``. Defaults to ``0.999``.
        epsilon: ``ε > 0``. Defaults to ``1e-7`` (Keras's default; the paper uses ``1e-8``).
        amsgrad: use the AMSGrad maximum of ``v``. Defaults to ``False``.
        epsilon_placement: ``"keras"`` or ``"paper"`` (keyword only), see above.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.Adam``.

    References:
        - Kingma and Ba, 2014, "Adam: A method for stochastic optimization"
          (https://arxiv.org/abs/1412.6980).
        - Reddi et al., 2018, "On the convergence of Adam and beyond"
          (https://openreview.net/pdf?id=ryQu7f-RZ), for ``amsgrad``.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
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
        epsilon_placement: str = "keras",
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
        self.amsgrad = bool(amsgrad)
        self.epsilon_placement = checks.check_choice("epsilon_placement", epsilon_placement, EPSILON_PLACEMENTS)

    def build(self, variables: list) -> None:
        """Slots: ``m`` and ``v``, plus ``v_max`` with ``amsgrad``."""
        if self.built:
            return
        super().build(variables)
        self.momentums, self.velocities = self.add_optimizer_variables(variables, ["momentum", "velocity"])
        self.velocity_maxima = self.add_optimizer_variables(variables, "velocity_max") if self.amsgrad else []

    @multi_tensor.mirrored_by(multi_tensor.adam)
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
        if self.amsgrad:
            v_max = self.velocity_maxima[index]
            self.assign(v_max, elementwise.maximum(v_max, v))
            v = v_max
        if self.epsilon_placement == "keras":
            alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
            self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)))
        else:
            m_hat = ops.divide(m, 1 - beta_1_power)
            v_hat = ops.divide(v, 1 - beta_2_power)
            self.assign_sub(variable, ops.divide(ops.multiply(lr, m_hat), ops.add(ops.sqrt(v_hat), self.epsilon)))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "amsgrad": self.amsgrad,
                "epsilon_placement": self.epsilon_placement,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="lab")
class AdamW(Adam):
    """Adam with decoupled weight decay.

    Before each Adam step (either ε placement, see :class:`Adam`) the weights shrink by a decay
    proportional to the learning rate, independent of the gradient::

        θ ← θ − lr·λ·θ                                λ = weight_decay
        θ ← θ − (the Adam step)

    In Keras the decay is applied by the ``keras.optimizers.Optimizer`` base class for any
    optimiser given ``weight_decay`` (variables named in ``exclude_from_weight_decay`` are
    skipped); AdamW is Adam with that argument made first-class and required. Unlike an L2 penalty
    added to the loss, the decay does not pass through ``m`` and ``v``, so it is not rescaled by
    ``1/√v̂``.

    Args:
        learning_rate: as :class:`Adam`. Defaults to ``0.001``.
        weight_decay: ``λ >= 0``. Defaults to ``0.004`` (Keras's default).
        beta_1, beta_2, epsilon, amsgrad, epsilon_placement: as :class:`Adam`.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.AdamW``.

    Reference:
        Loshchilov and Hutter, 2019, "Decoupled weight decay regularization"
        (https://arxiv.org/abs/1711.05101).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
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
        epsilon_placement: str = "keras",
        **kwargs: Any,
    ) -> None:
        checks.check_non_negative("weight_decay", weight_decay, message=WEIGHT_DECAY_MESSAGE)
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
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
            epsilon_placement=epsilon_placement,
            **kwargs,
        )
