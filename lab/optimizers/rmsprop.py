"""RMSprop: gradients divided by a running root-mean-square of their recent magnitudes."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import multi_tensor


@keras.saving.register_keras_serializable(package="lab")
class RMSprop(multi_tensor.MultiTensorUpdate, keras.optimizers.Optimizer):
    """RMSprop, with optional momentum and the centred variant.

    With gradient ``g``, learning rate ``lr`` and decay ``ρ`` (``rho``)::

        v ← ρ·v + (1 − ρ)·g²                         running mean of the squared gradients
        Δ = lr·g / √(v + ε)                           centred: Δ = lr·g / √(v − ḡ² + ε),
                                                                with ḡ ← ρ·ḡ + (1 − ρ)·g
        θ ← θ − Δ                                     momentum μ > 0: m ← μ·m + Δ;  θ ← θ − m

    ε sits *inside* the square root, as in Keras and TensorFlow. Notebook 000 (and PyTorch) put
    it outside, ``lr·g / (√v + ε)``; the two differ only where ``v`` is of the order of ``ε``
    (``√(v + ε) ≈ √v + ε/(2√v)``), so with ``ε = 1e-7`` and ordinary gradients they agree to
    many digits. There is no bias correction: the first steps, where ``v ≈ (1 − ρ)·g²``, are
    ``1/√(1 − ρ)`` (≈ 3.2× for ρ = 0.9) longer than later ones for the same gradient.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001``.
        rho: ``ρ`` in ``[0, 1)``, the decay of the squared-gradient average. Defaults to ``0.9``.
        momentum: ``μ`` in ``[0, 1)``; ``0`` disables the momentum slot. Defaults to ``0.0``.
        epsilon: ``ε > 0``, added to ``v`` under the square root. Defaults to ``1e-7``.
        centered: divide by the estimated *variance* ``v − ḡ²`` instead of the raw second
            moment. Defaults to ``False``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.RMSprop``.

    Reference:
        Hinton, 2012, Neural Networks for Machine Learning, lecture 6e
        (http://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf); the centred
        form is from Graves, 2013, "Generating sequences with recurrent neural networks".
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
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
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.rho = checks.check_unit_interval_open_right("rho", rho)
        self.momentum = checks.check_unit_interval_open_right("momentum", momentum)
        self.epsilon = checks.check_positive("epsilon", epsilon)
        self.centered = bool(centered)

    def build(self, variables: list) -> None:
        """Slots: ``v`` always, ``m`` when ``momentum > 0``, ``ḡ`` when centred."""
        if self.built:
            return
        super().build(variables)
        self.velocities = self.add_optimizer_variables(variables, "velocity")
        self.momentums = self.add_optimizer_variables(variables, "momentum") if self.momentum > 0 else []
        self.average_gradients = self.add_optimizer_variables(variables, "average_gradient") if self.centered else []

    @multi_tensor.mirrored_by(multi_tensor.rmsprop)
    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        index = internals.variable_index(self, variable)
        rho = self.rho
        v = self.velocities[index]
        self.assign(v, ops.add(ops.multiply(rho, v), ops.multiply(1 - rho, ops.square(g))))
        if self.centered:
            g_bar = self.average_gradients[index]
            self.assign(g_bar, ops.add(ops.multiply(rho, g_bar), ops.multiply(1 - rho, g)))
            denominator = ops.add(ops.subtract(v, ops.square(g_bar)), self.epsilon)
        else:
            denominator = ops.add(v, self.epsilon)
        increment = ops.divide(ops.multiply(lr, g), ops.sqrt(denominator))
        if self.momentum > 0:
            m = self.momentums[index]
            self.assign(m, ops.add(ops.multiply(self.momentum, m), increment))
            self.assign_sub(variable, m)
        else:
            self.assign_sub(variable, increment)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "rho": self.rho,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "centered": self.centered,
            }
        )
        return config
