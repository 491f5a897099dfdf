"""Multi-tensor updates on PyTorch: each operation of a step as one call of PyTorch's multi-tensor
kernels (``foreach``, through ``lab.internals.foreach``) over every variable, in place of ``update_step`` called once per variable.

Why. On PyTorch each ``keras.ops`` call in an ``update_step`` is Python work (argument
conversion, dtype resolution) and its own dispatch, repeated for every variable: an Adam step of
a four-variable MLP pays it some sixty times. Keras's own PyTorch optimisers
(``keras/src/backend/torch/optimizers/``: ``TorchOptimizer.__new__`` swaps
``keras.optimizers.Adam`` etc. for classes whose ``_parallel_update_step`` is written with
the same kernels) do the same for exactly the nine classes here; without it the lab's twins
were 1.2-1.4x slower per training step than the built-ins they mirror, on PyTorch only.

Each rule ``rule(optimizer, grads, variables, learning_rate)`` computes the update of one
``update_step`` for every variable at once, in the fused forms Keras's own PyTorch optimizers use
(``lerp`` for a moving average, ``addcmul``/``addcdiv`` for a product or quotient added in place,
in-place temporaries, the step's scalars as Python numbers): each is a different rounding of the
same arithmetic, so a rule agrees with its ``update_step`` to float32 rounding (about 1e-7
relatively per step; the tests check 1e-6 over several steps), and the ``update_step`` stays the
documented reference.

``MultiTensorUpdate``, a mixin placed before ``keras.optimizers.Optimizer``, routes
``_backend_update_step`` to the rule only on PyTorch, outside a ``StatelessScope``, and only
while the ``update_step`` in effect is the very function the rule was registered for
(``@mirrored_by(rule)`` on it): a subclass that overrides ``update_step`` (``NAdamW``, a user's)
keeps the per-variable path. Options are all implemented by the rules (SGD's momentum styles and
Nesterov, Adam's ε placements and AMSGrad, RMSprop's centring and momentum). What the base class
does around ``_backend_update_step`` is unchanged: clipping, loss-scale unscaling, weight decay
(``TorchOptimizer._apply_weight_decay``, before the step), gradient accumulation and EMA.

The gradients are cast to their variable's dtype, as ``update_step`` does, and variables of
different dtypes are updated in one group per dtype. torch is imported only when a rule runs, so
this module imports on every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
from keras import ops
from lab import internals
from lab.optimizers.nadam_momentum import MOMENTUM_DECAY

foreach = internals.foreach  # PyTorch's multi-tensor kernels, imported when first used

Rule = Callable[[Any, list, list, Any], None]

# update_step function -> the rule that mirrors it (identity, not name: an override is not found)
_RULES: dict[Callable[..., Any], Rule] = {}


def mirrored_by(rule: Rule) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator of an ``update_step``: ``rule`` computes the same update for all variables at once."""
    def register(update_step: Callable[..., Any]) -> Callable[..., Any]:
        _RULES[update_step] = rule
        return update_step

    return register


def rule_in_effect(optimizer: Any) -> Rule | None:
    """The rule ``optimizer``'s next step will use, or None for the per-variable ``update_step``."""
    if keras.backend.backend() != "torch" or internals.in_stateless_scope():
        return None
    return _RULES.get(type(optimizer).update_step)


class MultiTensorUpdate:
    """Mixin: ``_backend_update_step`` as one multi-tensor rule on PyTorch (see the module docstring)."""
    def _backend_update_step(self, grads: list, trainable_variables: list, learning_rate: Any) -> None:
        rule = rule_in_effect(self)
        if rule is None:
            internals.backend_update_step(super(), grads, trainable_variables, learning_rate)
            return
        import torch

        groups: dict[Any, tuple[list, list]] = {}
        for gradient, variable in zip(grads, trainable_variables):
            dtype = variable.dtype
            if not (isinstance(gradient, torch.Tensor) and keras.backend.standardize_dtype(gradient.dtype) == dtype):
                gradient = ops.cast(gradient, dtype)
            group = groups.setdefault(dtype, ([], []))
            group[0].append(gradient)
            group[1].append(variable)
        with torch.no_grad():
            for group_grads, group_variables in groups.values():
                rule(self, group_grads, group_variables, learning_rate)


def _values(optimizer: Any, slots: list, variables: list) -> list:
    """The tensors of ``variables``' slots in ``slots`` (one optimizer variable per model variable)."""
    return [slots[internals.variable_index(optimizer, variable)].value for variable in variables]


def _scalar(value: Any, dtype: Any) -> float:
    """``value`` rounded to ``dtype`` as ``update_step`` rounds it, as a Python number (the
    ``alpha``/``value``/``weight`` arguments of the fused kernels take numbers, not tensors)."""
    return ops.cast(value, dtype).item()


def _step_number(optimizer: Any) -> int:
    """``t``, the 1-based number of the step being taken."""
    iterations = optimizer.iterations  # a variable, or a tensor inside the base class's ``cond``
    return int(getattr(iterations, "value", iterations).item()) + 1


def sgd(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """``SGD.update_step`` (every momentum style, with and without Nesterov)."""
    lr = _scalar(learning_rate, variables[0].dtype)
    beta = optimizer.momentum
    thetas = [variable.value for variable in variables]
    if beta == 0:
        foreach.add_(thetas, grads, alpha=-lr)  # θ ← θ − lr·g
        return
    v = _values(optimizer, optimizer.velocities, variables)
    if optimizer.momentum_style == "keras":
        foreach.mul_(v, beta)
        foreach.add_(v, grads, alpha=-lr)  # v ← β·v − lr·g
        if optimizer.nesterov:
            foreach.add_(thetas, grads, alpha=-lr)
            foreach.add_(thetas, v, alpha=beta)  # θ ← θ + β·v − lr·g
        else:
            foreach.add_(thetas, v)  # θ ← θ + v
        return
    if optimizer.momentum_style == "heavy_ball":
        foreach.mul_(v, beta)
        foreach.add_(v, grads)  # v ← β·v + g
        step = foreach.add(grads, v, alpha=beta) if optimizer.nesterov else v  # g + β·v
    else:  # "ema"
        foreach.lerp_(v, grads, 1.0 - beta)  # v ← β·v + (1 − β)·g
        step = foreach.lerp(grads, v, beta) if optimizer.nesterov else v  # β·v + (1 − β)·g
    foreach.add_(thetas, step, alpha=-lr)  # θ ← θ − lr·step


def adagrad(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """``Adagrad.update_step``."""
    lr = _scalar(learning_rate, variables[0].dtype)
    thetas = [variable.value for variable in variables]
    s = _values(optimizer, optimizer.accumulators, variables)
    foreach.addcmul_(s, grads, grads)  # s ← s + g²
    denominators = foreach.add(s, optimizer.epsilon)
    foreach.sqrt_(denominators)
    foreach.addcdiv_(thetas, grads, denominators, value=-lr)  # θ ← θ − lr·g/√(s + ε)


def rmsprop(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """``RMSprop.update_step`` (plain, centred, with momentum)."""
    lr = _scalar(learning_rate, variables[0].dtype)
    rho = optimizer.rho
    thetas = [variable.value for variable in variables]
    v = _values(optimizer, optimizer.velocities, variables)
    foreach.mul_(v, rho)
    foreach.addcmul_(v, grads, grads, value=1 - rho)  # v ← ρ·v + (1 − ρ)·g²
    if optimizer.centered:
        g_bar = _values(optimizer, optimizer.average_gradients, variables)
        foreach.lerp_(g_bar, grads, 1 - rho)  # ḡ ← ρ·ḡ + (1 − ρ)·g
        denominators = foreach.addcmul(v, g_bar, g_bar, value=-1)  # v − ḡ²
        foreach.add_(denominators, optimizer.epsilon)
    else:
        denominators = foreach.add(v, optimizer.epsilon)
    foreach.sqrt_(denominators)
    if optimizer.momentum > 0:
        m = _values(optimizer, optimizer.momentums, variables)
        foreach.mul_(m, optimizer.momentum)
        foreach.addcdiv_(m, grads, denominators, value=lr)  # m ← μ·m + lr·g/√(…)
        foreach.sub_(thetas, m)
    else:
        foreach.addcdiv_(thetas, grads, denominators, value=-lr)


def _adam_moments_(optimizer: Any, grads: list, variables: list) -> tuple[list, list]:
    """``m ← β₁·m + (1 − β₁)·g`` and ``v ← β₂·v + (1 − β₂)·g²`` in place; the two lists."""
    m = _values(optimizer, optimizer.momentums, variables)
    v = _values(optimizer, optimizer.velocities, variables)
    foreach.lerp_(m, grads, 1 - optimizer.beta_1)
    foreach.mul_(v, optimizer.beta_2)
    foreach.addcmul_(v, grads, grads, value=1 - optimizer.beta_2)
    return m, v


def adam(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """``Adam.update_step`` (both ε placements, with and without AMSGrad; AdamW's too)."""
    dtype = variables[0].dtype
    lr = _scalar(learning_rate, dtype)
    t = _step_number(optimizer)
    bias_1 = 1 - _scalar(optimizer.beta_1, dtype) ** t  # 1 − β₁ᵗ
    bias_2 = 1 - _scalar(optimizer.beta_2, dtype) ** t  # 1 − β₂ᵗ
    thetas = [variable.value for variable in variables]
    m, v = _adam_moments_(optimizer, grads, variables)
    if optimizer.amsgrad:
        v_max = _values(optimizer, optimizer.velocity_maxima, variables)
        foreach.maximum_(v_max, v)  # NaN propagates, as in elementwise.maximum
        v = v_max
    denominators = foreach.sqrt(v)
    if optimizer.epsilon_placement == "keras":
        # θ ← θ − α·m/(√v + ε̂),  α = lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)
        foreach.add_(denominators, optimizer.epsilon)
        foreach.addcdiv_(thetas, m, denominators, value=-lr * bias_2**0.5 / bias_1)
    else:
        # θ ← θ − lr·m̂/(√v̂ + ε),  m̂ = m/(1 − β₁ᵗ), √v̂ = √v/√(1 − β₂ᵗ)
        foreach.div_(denominators, bias_2**0.5)
        foreach.add_(denominators, optimizer.epsilon)
        foreach.addcdiv_(thetas, m, denominators, value=-lr / bias_1)


def nadam(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """``Nadam.update_step`` (``Π μ_i`` already advanced by ``Nadam._backend_update_step``)."""
    dtype = variables[0].dtype
    lr = _scalar(learning_rate, dtype)
    t = _step_number(optimizer)
    beta_1 = _scalar(optimizer.beta_1, dtype)
    mu_t = beta_1 * (1 - 0.5 * MOMENTUM_DECAY**t)  # μ_t = β₁·(1 − ½·0.96ᵗ)
    mu_next = beta_1 * (1 - 0.5 * MOMENTUM_DECAY ** (t + 1))
    mu_product = _scalar(optimizer.mu_product, dtype)  # Π_{i≤t} μ_i
    mu_product_next = mu_product * mu_next  # Π_{i≤t+1} μ_i
    bias_2 = 1 - _scalar(optimizer.beta_2, dtype) ** t
    thetas = [variable.value for variable in variables]
    m, v = _adam_moments_(optimizer, grads, variables)
    # m̂ = μ_{t+1}·m/(1 − Π_{i≤t+1} μ_i) + (1 − μ_t)·g/(1 − Π_{i≤t} μ_i)
    m_hat = foreach.mul(m, mu_next / (1 - mu_product_next))
    foreach.add_(m_hat, grads, alpha=(1 - mu_t) / (1 - mu_product))
    denominators = foreach.sqrt(v)
    foreach.div_(denominators, bias_2**0.5)  # √v̂
    foreach.add_(denominators, optimizer.epsilon)
    foreach.addcdiv_(thetas, m_hat, denominators, value=-lr)  # θ ← θ − lr·m̂/(√v̂ + ε)


def lion(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """``Lion.update_step``."""
    lr = _scalar(learning_rate, variables[0].dtype)
    thetas = [variable.value for variable in variables]
    m = _values(optimizer, optimizer.momentums, variables)
    c = foreach.lerp(m, grads, 1.0 - optimizer.beta_1)  # c = β₁·m + (1 − β₁)·g
    foreach.sign_(c)
    foreach.add_(thetas, c, alpha=-lr)  # θ ← θ − lr·sign(c)
    foreach.lerp_(m, grads, 1.0 - optimizer.beta_2)  # m ← β₂·m + (1 − β₂)·g


def adadelta(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """``Adadelta.update_step``."""
    lr = _scalar(learning_rate, variables[0].dtype)
    rho, epsilon = optimizer.rho, optimizer.epsilon
    thetas = [variable.value for variable in variables]
    squared_gradients = _values(optimizer, optimizer.squared_gradient_averages, variables)
    squared_updates = _values(optimizer, optimizer.squared_update_averages, variables)
    foreach.mul_(squared_gradients, rho)
    foreach.addcmul_(squared_gradients, grads, grads, value=1 - rho)  # E[g²] ← ρ·E[g²] + (1 − ρ)·g²
    rms_update = foreach.add(squared_updates, epsilon)
    foreach.sqrt_(rms_update)
    rms_gradient = foreach.add(squared_gradients, epsilon)
    foreach.sqrt_(rms_gradient)
    minus_delta = foreach.mul(rms_update, grads)
    foreach.div_(minus_delta, rms_gradient)  # −Δθ = g·√(E[Δθ²] + ε)/√(E[g²] + ε)
    foreach.mul_(squared_updates, rho)
    foreach.addcmul_(squared_updates, minus_delta, minus_delta, value=1 - rho)
    foreach.add_(thetas, minus_delta, alpha=-lr)  # θ ← θ + lr·Δθ


def adamax(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """``Adamax.update_step``."""
    dtype = variables[0].dtype
    lr = _scalar(learning_rate, dtype)
    bias_1 = 1 - _scalar(optimizer.beta_1, dtype) ** _step_number(optimizer)
    thetas = [variable.value for variable in variables]
    m = _values(optimizer, optimizer.momentums, variables)
    u = _values(optimizer, optimizer.norms, variables)
    foreach.lerp_(m, grads, 1 - optimizer.beta_1)  # m ← β₁·m + (1 − β₁)·g
    foreach.mul_(u, optimizer.beta_2)
    foreach.maximum_(u, foreach.abs(grads))  # u ← max(β₂·u, |g|)
    denominators = foreach.add(u, optimizer.epsilon)
    foreach.addcdiv_(thetas, m, denominators, value=-lr / bias_1)  # θ ← θ − lr·m/((u + ε)(1 − β₁ᵗ))
