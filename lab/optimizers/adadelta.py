"""Adadelta: steps in the units of the parameter, from running RMS of gradients and of updates."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import multi_tensor


@keras.saving.register_keras_serializable(package="lab")
class Adadelta(multi_tensor.MultiTensorUpdate, keras.optimizers.Optimizer):
    """Adadelta: the step is ``RMS[Δθ]/RMS[g]`` times the gradient, scaled by a learning rate.

    With gradient ``g``, learning rate ``lr``, decay ``ρ`` (``rho``) and the two running means
    ``E[g²]`` and ``E[Δθ²]`` starting at zero, ``RMS[x] = √(E[x²] + ε)``::

        E[g²]  ← ρ·E[g²] + (1 − ρ)·g²
        Δθ     = −(RMS[Δθ] / RMS[g])·g             RMS[Δθ] from the previous steps
        E[Δθ²] ← ρ·E[Δθ²] + (1 − ρ)·Δθ²
        θ      ← θ + lr·Δθ

    The ratio of the two RMS gives the step the units of ``θ`` (the paper's argument from
    Newton's method), so the paper has no learning rate, i.e. ``lr = 1``; Keras and TensorFlow
    multiply by ``lr`` afterwards and keep ``E[Δθ²]`` of the *unscaled* ``Δθ``, as here. Compared
    with :class:`RMSprop` (``θ ← θ − lr·g/√(E[g²] + ε)``) the numerator ``RMS[Δθ]`` replaces a
    fixed step size; it starts at ``√ε``, so the first steps are tiny and grow as updates
    accumulate.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001`` (Keras's default; the paper's form is ``1.0``).
        rho: ``ρ`` in ``[0, 1)``, the decay of both running means. Defaults to ``0.95``.
        epsilon: ``ε > 0``, inside both square roots. Defaults to ``1e-7``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.Adadelta``.

    Reference:
        Zeiler, 2012, "ADADELTA: An adaptive learning rate method" (https://arxiv.org/abs/1212.5701).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.95,
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
        self.epsilon = checks.check_positive("epsilon", epsilon)

    def build(self, variables: list) -> None:
        """Slots ``E[g²]`` and ``E[Δθ²]`` per variable."""
        if self.built:
            return
        super().build(variables)
        self.squared_gradient_averages, self.squared_update_averages = self.add_optimizer_variables(
            variables, ["accumulated_grad", "accumulated_delta_var"]
        )

    @multi_tensor.mirrored_by(multi_tensor.adadelta)
    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        index = internals.variable_index(self, variable)
        rho = self.rho
        squared_gradients = self.squared_gradient_averages[index]
        squared_updates = self.squared_update_averages[index]
        self.assign(squared_gradients, ops.add(ops.multiply(rho, squared_gradients), ops.multiply(1 - rho, ops.square(g))))
        rms_update = ops.sqrt(ops.add(squared_updates, self.epsilon))
        rms_gradient = ops.sqrt(ops.add(squared_gradients, self.epsilon))
        delta = ops.negative(ops.divide(ops.multiply(rms_update, g), rms_gradient))
        self.assign(squared_updates, ops.add(ops.multiply(rho, squared_updates), ops.multiply(1 - rho, ops.square(delta))))
        self.assign_add(variable, ops.multiply(lr, delta))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"rho": self.rho, "epsilon": self.epsilon})
        return config
