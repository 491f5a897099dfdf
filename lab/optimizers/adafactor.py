"""Adafactor: a second moment stored as row and column averages, with relative step sizes."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from lab import checks, internals


def _rms(x: Any) -> Any:
    return ops.sqrt(ops.mean(ops.square(x)))


@keras.saving.register_keras_serializable(package="lab")
class Adafactor(keras.optimizers.Optimizer):
    """Adafactor: RMSprop-like steps whose second moment of an ``n×m`` matrix costs ``n + m`` numbers.

    With gradient ``g``, step ``t = 1, 2, ...``, learning rate ``lr``, decay exponent ``c``
    (``beta_2_decay``), offsets ``ε₁, ε₂`` and clipping threshold ``d``; ``RMS(x) = √mean(x²)``::

        ρ_t = min(lr, 1/√t)                           the relative step size
        α_t = max(ε₂, RMS(θ))·ρ_t                      the step, relative to the weights' scale
        β̂₂ = 1 − t^c                                  a decay that rises towards 1 (c = −0.8)
        G = g² + ε₁
        θ with two or more axes (the last two factored; R, C start at zero):
            R ← β̂₂·R + (1 − β̂₂)·mean(G, last axis)          row averages
            C ← β̂₂·C + (1 − β̂₂)·mean(G, second-last axis)   column averages
            V = R·Cᵀ / mean(R)                             rank one: V_ij = R_i·C_j / mean(R)
        θ with fewer axes:  V ← β̂₂·V + (1 − β̂₂)·G
        U = g/√V
        θ ← θ − α_t·U / max(1, RMS(U)/d)              the update clipped to RMS at most d

    The factored ``V`` is the rank-one matrix closest to the full second moment in the paper's
    (I-divergence) sense; it is computed on the fly from ``R`` and ``C``, so a factored variable
    keeps ``n + m`` numbers of state, not ``n·m`` (Keras also stores ``V`` in a full-size slot:
    the trajectory is the same, the memory is not). There is no first moment (the paper's
    ``β₁ = 0``) and no bias correction: ``β̂₂ = 0`` at ``t = 1`` makes the first ``V`` equal
    ``G``.

    How it relates to the paper: the paper's relative step is ``ρ_t = min(10⁻², 1/√t)``; Keras
    puts ``lr`` in place of ``10⁻²``, and applies ``min(lr, 1/√t)`` at every step whether
    ``relative_step`` is true or false (in Keras 3.15 the argument changes nothing), as the twin
    does: with a schedule, ``ρ_t`` is the smaller of the scheduled rate and ``1/√t``.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments; the cap of ``ρ_t``. Defaults to ``0.001``.
        beta_2_decay: ``c <= 0``; ``β̂₂ = 1 − t^c``. Defaults to ``-0.8``.
        epsilon_1: ``ε₁ >= 0``, added to ``g²``. Defaults to ``1e-30``.
        epsilon_2: ``ε₂ >= 0``, the smallest weight scale of ``α_t``. Defaults to ``1e-3``.
        clip_threshold: ``d > 0``. Defaults to ``1.0``.
        relative_step: kept from Keras's signature (see above). Defaults to ``True``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.Adafactor``.

    Reference:
        Shazeer and Stern, 2018, "Adafactor: adaptive learning rates with sublinear memory cost"
        (https://arxiv.org/abs/1804.04235).
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_2_decay: float = -0.8,
        epsilon_1: float = 1e-30,
        epsilon_2: float = 1e-3,
        clip_threshold: float = 1.0,
        relative_step: bool = True,
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
        self.beta_2_decay = checks.check_non_positive("beta_2_decay", beta_2_decay)
        self.epsilon_1 = checks.check_non_negative("epsilon_1", epsilon_1)
        self.epsilon_2 = checks.check_non_negative("epsilon_2", epsilon_2)
        self.clip_threshold = checks.check_positive("clip_threshold", clip_threshold)
        self.relative_step = bool(relative_step)

    def build(self, variables: list) -> None:
        """Per variable: ``R`` and ``C`` if it has two or more axes, else a full ``V``."""
        if self.built:
            return
        super().build(variables)
        self.row_averages, self.column_averages, self.velocities = [], [], []
        for variable in variables:
            rows = columns = velocity = None
            if getattr(variable, "overwrite_with_gradient", False):
                pass
            elif len(variable.shape) >= 2:
                rows = self._slot(variable, variable.shape[:-1], "row_average")
                columns = self._slot(variable, (*variable.shape[:-2], variable.shape[-1]), "column_average")
            else:
                velocity = self.add_variable_from_reference(variable, "velocity")
            self.row_averages.append(rows)
            self.column_averages.append(columns)
            self.velocities.append(velocity)

    def _slot(self, variable: Any, shape: tuple, name: str) -> Any:
        return self.add_variable(shape=shape, dtype=variable.dtype, name=f"{variable.path.replace('/', '_')}_{name}")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        index = internals.variable_index(self, variable)
        t = ops.cast(self.iterations + 1, dtype)
        rho = ops.minimum(lr, 1 / ops.sqrt(t))
        alpha = ops.multiply(ops.maximum(ops.cast(self.epsilon_2, dtype), _rms(variable)), rho)
        beta_2 = ops.subtract(1, ops.power(t, self.beta_2_decay))
        regulated = ops.add(ops.square(g), self.epsilon_1)
        if self.row_averages[index] is not None:
            rows, columns = self.row_averages[index], self.column_averages[index]
            self.assign(rows, ops.add(ops.multiply(beta_2, rows), ops.multiply(1 - beta_2, ops.mean(regulated, axis=-1))))
            self.assign(
                columns, ops.add(ops.multiply(beta_2, columns), ops.multiply(1 - beta_2, ops.mean(regulated, axis=-2)))
            )
            normalised_rows = ops.divide(rows, ops.mean(rows, axis=-1, keepdims=True))
            v = ops.multiply(ops.expand_dims(normalised_rows, -1), ops.expand_dims(columns, -2))
        else:
            v = self.velocities[index]
            self.assign(v, ops.add(ops.multiply(beta_2, v), ops.multiply(1 - beta_2, regulated)))
        u = ops.divide(g, ops.sqrt(v))
        u_clipped = ops.divide(u, ops.maximum(ops.cast(1.0, dtype), ops.divide(_rms(u), self.clip_threshold)))
        self.assign_sub(variable, ops.multiply(alpha, u_clipped))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "beta_2_decay": self.beta_2_decay,
                "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2,
                "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step,
            }
        )
        return config
