"""Muon: momentum orthogonalised by a Newton–Schulz iteration, AdamW for everything else."""

from __future__ import annotations

import math
import re
from typing import Any

import keras
from keras import ops

from lab import checks, internals

# Newton–Schulz steps divide by the Frobenius norm plus this, so a zero matrix stays zero
NORM_OFFSET = 1e-7


@keras.saving.register_keras_serializable(package="lab")
class Muon(keras.optimizers.Optimizer):
    """Muon (MomentUm Orthogonalized by Newton–Schulz) for matrices, AdamW for the other variables.

    For a 2-D variable ``θ`` of shape ``n×m`` (a dense kernel), with gradient ``g``, learning
    rate ``lr``, momentum ``μ`` and ``rms_rate`` ``r``::

        b ← μ·b + g                                   heavy-ball momentum
        u = g + μ·b   (nesterov)     or   u = b
        O = NS₅(u)                                    ≈ U·Vᵀ of the SVD u = U·S·Vᵀ
        θ ← θ − lr·O·√max(n, m)·r                      (r = None: θ ← θ − lr·O)

    ``NS₅`` is the quintic Newton–Schulz iteration, on the wide orientation of ``u`` (transposed
    when ``n > m``, so ``X·Xᵀ`` is the smaller Gram matrix), with ``(a, b, c)`` =
    ``(muon_a, muon_b, muon_c)``::

        X ← u / (‖u‖_F + 10⁻⁷)                         every singular value now in [0, 1]
        repeat ns_steps times:   A = X·Xᵀ;   X ← a·X + (b·A + c·A·A)·X

    Each step maps every singular value ``s`` to ``a·s + b·s³ + c·s⁵`` and leaves the singular
    vectors alone. The coefficients (3.4445, −4.7750, 2.0315) favour speed over exactness: five
    steps take every singular value of the normalised matrix above about 1.5·10⁻³ into
    ``[0.68, 1.21]`` (smaller ones grow by up to ``a⁵ ≈ 490``), so ``O = U·S'·Vᵀ`` with ``S' ≈ I``.
    The update thus has all its singular values near 1: it moves every direction of the matrix
    by the same amount, whatever the gradient's spectrum. The factor ``√max(n, m)·r`` (Moonlight)
    gives it the RMS of an AdamW update, so Muon can share AdamW's learning rate and decay.

    Every other variable takes an AdamW step (Keras's ε placement, see :class:`Adam`) at the
    rate ``lr·adam_lr_ratio``, with ``m`` kept in the same momentum slot::

        m ← β₁·m + (1 − β₁)·g      v ← β₂·v + (1 − β₂)·g²
        θ ← θ − lr·adam_lr_ratio·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m/(√v + ε)

    Which variables (``_should_use_adamw``, as Keras decides): those not 2-D (convolution kernels
    included: they are not flattened); with
    ``exclude_embeddings``, those whose path contains ``"embedding"`` (any case); those whose path
    matches one of the regular expressions ``exclude_layers`` (typically the output layer, e.g.
    ``exclude_layers=["output_dense"]``). Decoupled weight decay, ``θ ← θ − lr·λ·θ`` before the
    step, uses ``λ = weight_decay`` for Muon's variables and ``λ = adam_weight_decay`` for AdamW's
    (the current ``lr``, not scaled by ``adam_lr_ratio``); either may be ``None`` for none.

    Args:
        learning_rate: a float ``>= 0``, a ``LearningRateSchedule`` or a callable of no
            arguments. Defaults to ``0.001``.
        adam_beta_1: AdamW's ``β₁`` in ``[0, 1)``. Defaults to ``0.9``.
        adam_beta_2: AdamW's ``β₂`` in ``[0, 1)``. Defaults to ``0.999``.
        adam_weight_decay: AdamW's ``λ >= 0`` or ``None``. Defaults to ``0.004``.
        epsilon: AdamW's ``ε > 0`` (Keras's placement). Defaults to ``1e-7``.
        weight_decay: Muon's ``λ >= 0`` or ``None``. Defaults to ``0.004``.
        exclude_layers: regular expressions of variable paths that take AdamW. Defaults to none.
        exclude_embeddings: embeddings take AdamW. Defaults to ``True``.
        muon_a, muon_b, muon_c: the Newton–Schulz coefficients. Default to ``3.4445, -4.7750, 2.0315``.
        adam_lr_ratio: AdamW's rate over ``lr``, ``>= 0``. Defaults to ``1``.
        momentum: ``μ`` in ``[0, 1)``. Defaults to ``0.95``.
        ns_steps: Newton–Schulz steps, an integer ``>= 1``. Defaults to ``5``.
        nesterov: the Nesterov form of ``u``. Defaults to ``True``.
        rms_rate: ``r > 0`` or ``None`` (no rescaling; Keller Jordan's original). Defaults to ``0.2``.
        **Other arguments**: as ``keras.optimizers.Optimizer``; the positional order matches
            ``keras.optimizers.Muon``.

    References:
        - Jordan et al., 2024, "Muon: an optimizer for hidden layers in neural networks"
          (https://kellerjordan.github.io/posts/muon/, https://github.com/KellerJordan/Muon).
        - Liu et al., 2025, "Muon is scalable for LLM training" (https://arxiv.org/abs/2502.16982),
          for ``rms_rate``.
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        adam_beta_1: float = 0.9,
        adam_beta_2: float = 0.999,
        adam_weight_decay: float | None = 0.004,
        epsilon: float = 1e-7,
        weight_decay: float | None = 0.004,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        exclude_layers: list[str] | None = None,
        exclude_embeddings: bool = True,
        muon_a: float = 3.4445,
        muon_b: float = -4.7750,
        muon_c: float = 2.0315,
        adam_lr_ratio: float = 1,
        momentum: float = 0.95,
        ns_steps: int = 5,
        nesterov: bool = True,
        rms_rate: float | None = 0.2,
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
        self.adam_beta_1 = checks.check_unit_interval_open_right("adam_beta_1", adam_beta_1)
        self.adam_beta_2 = checks.check_unit_interval_open_right("adam_beta_2", adam_beta_2)
        self.adam_weight_decay = (
            None if adam_weight_decay is None else checks.check_non_negative("adam_weight_decay", adam_weight_decay)
        )
        self.epsilon = checks.check_positive("epsilon", epsilon)
        self.exclude_layers = list(exclude_layers or [])
        for pattern in self.exclude_layers:
            try:
                re.compile(pattern)
            except (re.error, TypeError) as error:
                raise ValueError(f"`exclude_layers` must hold regular expressions; {pattern!r}: {error}") from None
        self.exclude_embeddings = bool(exclude_embeddings)
        self.muon_a, self.muon_b, self.muon_c = (float(muon_a), float(muon_b), float(muon_c))
        self.adam_lr_ratio = checks.check_non_negative("adam_lr_ratio", adam_lr_ratio)
        self.momentum = checks.check_unit_interval_open_right("momentum", momentum)
        self.ns_steps = checks.check_positive_int("ns_steps", ns_steps)
        self.nesterov = bool(nesterov)
        self.rms_rate = None if rms_rate is None else checks.check_positive("rms_rate", rms_rate)

    def _should_use_adamw(self, variable: Any) -> bool:
        """Whether ``variable`` takes the AdamW step (see the class docstring)."""
        if len(variable.shape) != 2:
            return True
        if self.exclude_embeddings and "embedding" in variable.path.lower():
            return True
        return any(re.search(pattern, variable.path) for pattern in self.exclude_layers)

    def build(self, variables: list) -> None:
        """Slots: the momentum ``b`` (or AdamW's ``m``) for every variable, ``v`` for AdamW's."""
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")
        self.adam_velocities = [
            self.add_variable_from_reference(variable, "velocity")
            if momentum is not None and self._should_use_adamw(variable)
            else None
            for variable, momentum in zip(variables, self.momentums)
        ]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        index = internals.variable_index(self, variable)
        m, v = self.momentums[index], self.adam_velocities[index]
        if v is None:
            self._muon_update_step(gradient, variable, learning_rate, m)
        else:
            self._adamw_update_step(gradient, variable, learning_rate * self.adam_lr_ratio, m, v)

    def _muon_update_step(self, gradient: Any, variable: Any, learning_rate: Any, b: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        self.assign(b, ops.add(ops.multiply(b, self.momentum), g))
        u = ops.add(g, ops.multiply(b, self.momentum)) if self.nesterov else b
        self.assign_sub(variable, self.match_adam_rms(ops.multiply(lr, self.orthogonalize(u, self.ns_steps))))

    def _adamw_update_step(self, gradient: Any, variable: Any, learning_rate: Any, m: Any, v: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        t = ops.cast(self.iterations + 1, variable.dtype)
        beta_1_power = ops.power(ops.convert_to_tensor(self.adam_beta_1, variable.dtype), t)
        beta_2_power = ops.power(ops.convert_to_tensor(self.adam_beta_2, variable.dtype), t)
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - self.adam_beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - self.adam_beta_2))
        self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), self.epsilon)))

    def orthogonalize(self, x: Any, steps: int) -> Any:
        """``NS₅``: the Newton–Schulz iteration of the class docstring on the last two axes of ``x``."""
        shape = ops.shape(x)
        if len(shape) < 2:
            raise ValueError(f"Newton–Schulz needs a matrix (at least 2 axes); got shape {tuple(shape)}.")
        tall = shape[-2] > shape[-1]
        if tall:
            x = _transpose_last_axes(x)
        x = x / (ops.norm(x, axis=(-2, -1), keepdims=True) + NORM_OFFSET)
        a, b, c = self.muon_a, self.muon_b, self.muon_c
        for _ in range(steps):
            gram = ops.matmul(x, _transpose_last_axes(x))
            x = a * x + ops.matmul(b * gram + ops.matmul(c * gram, gram), x)
        return _transpose_last_axes(x) if tall else x

    def match_adam_rms(self, update: Any) -> Any:
        """``update·√max(n, m)·rms_rate`` (Moonlight's scaling); ``update`` itself when ``rms_rate`` is None."""
        if self.rms_rate is None:
            return update
        return ops.multiply(ops.multiply(update, math.sqrt(max(update.shape[0], update.shape[1]))), self.rms_rate)

    # Keras's names of the two steps above, so code written for keras.optimizers.Muon runs unchanged
    zeropower_via_newtonschulz5 = orthogonalize
    lr_adjust = match_adam_rms

    def _apply_weight_decay(self, variables: list) -> None:
        """``θ ← θ − lr·λ·θ`` with Muon's or AdamW's ``λ`` per variable (before the step)."""
        for variable in variables:
            if not internals.uses_weight_decay(self, variable):
                continue
            decay = self.adam_weight_decay if self._should_use_adamw(variable) else self.weight_decay
            if decay is None:
                continue
            lr = ops.cast(self.learning_rate, variable.dtype)
            variable.assign(variable - variable * ops.cast(decay, variable.dtype) * lr)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "adam_beta_1": self.adam_beta_1,
                "adam_beta_2": self.adam_beta_2,
                "epsilon": self.epsilon,
                "exclude_layers": self.exclude_layers,
                "muon_a": self.muon_a,
                "muon_b": self.muon_b,
                "muon_c": self.muon_c,
                "adam_lr_ratio": self.adam_lr_ratio,
                "momentum": self.momentum,
                "ns_steps": self.ns_steps,
                "nesterov": self.nesterov,
                "exclude_embeddings": self.exclude_embeddings,
                "adam_weight_decay": self.adam_weight_decay,
                "rms_rate": self.rms_rate,
            }
        )
        return config


def _transpose_last_axes(x: Any) -> Any:
    axes = list(range(len(ops.shape(x))))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return ops.transpose(x, axes)
