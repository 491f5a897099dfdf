"""Stochastic gradient descent, with momentum in its three named forms and Nesterov."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import multi_tensor

MOMENTUM_STYLES = ("keras", "heavy_ball", "ema")


@keras.saving.register_keras_serializable(package="lab")
class SGD(multi_tensor.MultiTensorUpdate, keras.optimizers.Optimizer):
    """Gradient descent, optionally with momentum (three conventions) and Nesterov look-ahead.

    With gradient ``g``, learning rate ``lr`` (the value for this step, so it may follow a schedule)
    and momentum ``β``. Plain gradient descent (``momentum == 0``, every style)::

        θ ← θ − lr·g

    ``momentum_style="keras"`` (the default; Keras's and notebook 003's velocity form)::

        v ← β·v − lr·g
        θ ← θ + v                      nesterov: θ ← θ + β·v − lr·g

    ``momentum_style="heavy_ball"`` (Polyak; notebooks 000, 001, 002 and PyTorch)::

        v ← β·v + g
        θ ← θ − lr·v                   nesterov: θ ← θ − lr·(g + β·v)   (PyTorch's form)

    ``momentum_style="ema"`` (an exponential moving average of the gradients; notebook 004)::

        v ← β·v + (1 − β)·g
        θ ← θ − lr·v                   nesterov: θ ← θ − lr·((1 − β)·g + β·v)

    How they relate. Under a *constant* learning rate the Keras velocity is exactly
    ``v_keras = −lr·v_heavy_ball`` at every step, so "keras" and "heavy_ball" produce the same
    trajectory (with or without Nesterov). Under a schedule they differ: the Keras velocity carries
    the past learning rates inside it (``v = −Σ β^(t−s)·lr_s·g_s``), whereas heavy-ball applies
    today's learning rate to the whole accumulated sum (``lr_t·Σ β^(t−s)·g_s``). "ema" is
    heavy-ball with the gradients scaled by ``(1 − β)``: with a constant learning rate it equals
    heavy-ball at learning rate ``(1 − β)·lr``, so its steps are ``1/(1 − β)`` times shorter
    (10× for β = 0.9) and its effective step size does not change when β changes.

    Args:
        learning_rate: a float ``>= 0``, a ``keras.optimizers.schedules.LearningRateSchedule`` or a
            callable of no arguments. Defaults to ``0.01``.
        momentum: ``β`` in ``[0, 1)``; ``0`` is plain gradient descent. Defaults to ``0.0``.
            ``keras.optimizers.SGD`` also accepts ``1``, where the velocity never forgets a
            gradient (an undamped sum that does not settle); the lab rejects it, so Keras's
            ``test_invalid_momentum``, which expects its own ``[0, 1]`` wording, is an expected
            difference.
        nesterov: apply the Nesterov look-ahead of the chosen style. Defaults to ``False``.
        momentum_style: ``"keras"``, ``"heavy_ball"`` or ``"ema"`` (keyword only), see above.
        **Other arguments**: as ``keras.optimizers.Optimizer`` (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``, ``ema_momentum``,
            ``ema_overwrite_frequency``, ``loss_scale_factor``, ``gradient_accumulation_steps``,
            ``name``); the positional order matches ``keras.optimizers.SGD``.

    References:
        - Polyak, 1964, "Some methods of speeding up the convergence of iteration methods".
        - Sutskever et al., 2013, "On the importance of initialization and momentum in deep
          learning" (http://proceedings.mlr.press/v28/sutskever13.html).
    """

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
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
        momentum_style: str = "keras",
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
        self.momentum = checks.check_unit_interval_open_right("momentum", momentum)
        self.nesterov = bool(nesterov)
        self.momentum_style = checks.check_choice("momentum_style", momentum_style, MOMENTUM_STYLES)

    def build(self, variables: list) -> None:
        """One velocity slot ``v`` per variable, only when ``momentum > 0``."""
        if self.built:
            return
        super().build(variables)
        self.velocities = []
        if self.momentum != 0:
            self.velocities = self.add_optimizer_variables(variables, "velocity")

    @multi_tensor.mirrored_by(multi_tensor.sgd)
    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        if not self.velocities:  # momentum == 0 (read from the slots, so momentum can be a traced value)
            self.assign_sub(variable, ops.multiply(g, lr))
            return
        beta = ops.convert_to_tensor(self.momentum, variable.dtype)
        v = self.velocities[internals.variable_index(self, variable)]
        if self.momentum_style == "keras":
            self.assign(v, ops.subtract(ops.multiply(v, beta), ops.multiply(g, lr)))
            if self.nesterov:
                self.assign_add(variable, ops.subtract(ops.multiply(v, beta), ops.multiply(g, lr)))
            else:
                self.assign_add(variable, v)
            return
        if self.momentum_style == "heavy_ball":
            self.assign(v, ops.add(ops.multiply(v, beta), g))
            step = ops.add(g, ops.multiply(v, beta)) if self.nesterov else v
        else:  # "ema"
            one_minus_beta = ops.convert_to_tensor(1.0 - self.momentum, variable.dtype)
            self.assign(v, ops.add(ops.multiply(v, beta), ops.multiply(g, one_minus_beta)))
            step = ops.add(ops.multiply(g, one_minus_beta), ops.multiply(v, beta)) if self.nesterov else v
        self.assign_sub(variable, ops.multiply(step, lr))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "nesterov": self.nesterov,
                "momentum_style": self.momentum_style,
            }
        )
        return config
