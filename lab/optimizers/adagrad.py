"""AdaGrad: per-coordinate steps shrinking with the accumulated squared gradients."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals
from lab.optimizers import multi_tensor


@keras.saving.register_keras_serializable(package="lab")
class Adagrad(multi_tensor.MultiTensorUpdate, keras.optimizers.Optimizer):
    """AdaGrad: each coordinate's step is divided by the root of its summed squared gradients.

    With gradient ``g`` and learning rate ``lr``, the accumulator ``s`` starting at
    ``initial_accumulator_value``::

        s ← s + g²
        θ ← θ − lr·g / √(s + ε)

    Coordinates with large past gradients take small steps and rarely-updated ones large steps.
    ``s`` only grows, so the effective rate ``lr/√s`` decays roughly as ``1/√t`` — the weakness
    RMSprop fixes by replacing the sum with a moving average (``v ← ρ·v + (1 − ρ)·g²``).

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001``.
        initial_accumulator_value: the starting value of ``s``, ``>= 0``. Defaults to ``0.1``.
        epsilon: ``ε > 0``, added to ``s`` under the square root. Defaults to ``1e-7``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.Adagrad``.

    Reference:
        Duchi, Hazan and Singer, 2011, "Adaptive subgradient methods for online learning and
        stochastic optimization" (http://www.jmlr.org/papers/volume12/duchi11a/duchi11a.pdf).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        initial_accumulator_value: float = 0.1,
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
        self.initial_accumulator_value = checks.check_non_negative("initial_accumulator_value", initial_accumulator_value)
        self.epsilon = checks.check_positive("epsilon", epsilon)

    def build(self, variables: list) -> None:
        """One accumulator ``s`` per variable, filled with ``initial_accumulator_value``."""
        if self.built:
            return
        super().build(variables)
        initializer = keras.initializers.Constant(self.initial_accumulator_value)
        self.accumulators = self.add_optimizer_variables(variables, "accumulator", initializer=initializer)

    @multi_tensor.mirrored_by(multi_tensor.adagrad)
    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        s = self.accumulators[internals.variable_index(self, variable)]
        self.assign_add(s, ops.square(g))
        self.assign_sub(variable, ops.divide(ops.multiply(lr, g), ops.sqrt(ops.add(s, self.epsilon))))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon,
            }
        )
        return config
