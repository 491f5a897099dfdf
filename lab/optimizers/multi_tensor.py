"""Multi-tensor updates on PyTorch: each operation of a step as one ``torch._foreach_*`` call over
every variable, in place of ``update_step`` called once per variable.

Why. On PyTorch each ``keras.ops`` call in an ``update_step`` is Python work (argument
conversion, dtype resolution) and its own dispatch, repeated for every variable: an Adam step of
a four-variable MLP pays it some sixty times. Keras's own PyTorch optimisers
(``keras/src/backend/torch/optimizers/``: ``TorchOptimizer.__new__`` swaps
``keras.optimizers.Adam`` etc. for classes whose ``_parallel_update_step`` is written with
``torch._foreach_*``) do the same for exactly the nine classes here; without it the lab's twins
were 1.2-1.4x slower per training step than the built-ins they mirror, on PyTorch only.

Each rule ``rule(optimizer, grads, variables, learning_rate)`` mirrors one ``update_step``
operation for operation (the same operations on the same values in the same order, the scalars
built the same way), so the two agree to the last bit in float32; the ``update_step`` stays the
documented reference. Where ``keras.ops`` on PyTorch rounds to float32 in a float64 step (a
Python float it is given, ``ops.maximum``: see ``lab.optimizers.elementwise``) the rule keeps
float64, so in float64 the two agree to about 1e-8 (relatively) instead.

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
from keras.src.backend.common.stateless_scope import in_stateless_scope  # no public equivalent

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
    if keras.backend.backend() != "torch" or in_stateless_scope():
        return None
    return _RULES.get(type(optimizer).update_step)


class MultiTensorUpdate:
    """Mixin: ``_backend_update_step`` as one multi-tensor rule on PyTorch (see the module docstring)."""

    def _backend_update_step(self, grads: list, trainable_variables: list, learning_rate: Any) -> None:
        rule = rule_in_effect(self)
        if rule is None:
            super()._backend_update_step(grads, trainable_variables, learning_rate)  # type: ignore[misc]
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
    return [slots[optimizer._get_variable_index(variable)].value for variable in variables]


def _moving_average_(averages: list, values: list, beta: float) -> None:
    """``a ← a + (x − a)·(1 − β)`` in place: the moment updates of Adam, Nadam and Adamax, in the
    form their ``update_step`` writes them."""
    import torch

    torch._foreach_add_(averages, torch._foreach_mul(torch._foreach_sub(values, averages), 1 - beta))


def sgd(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """Mirrors ``SGD.update_step`` (every momentum style, with and without Nesterov)."""
    import torch

    dtype = variables[0].dtype
    lr = ops.cast(learning_rate, dtype)
    thetas = [variable.value for variable in variables]
    scaled = torch._foreach_mul(grads, lr)  # g·lr
    if optimizer.momentum == 0:
        torch._foreach_sub_(thetas, scaled)
        return
    beta = ops.convert_to_tensor(optimizer.momentum, dtype)
    v = _values(optimizer, optimizer.velocities, variables)
    if optimizer.momentum_style == "keras":
        torch._foreach_mul_(v, beta)
        torch._foreach_sub_(v, scaled)  # v ← β·v − lr·g
        if optimizer.nesterov:
            torch._foreach_add_(thetas, torch._foreach_sub(torch._foreach_mul(v, beta), scaled))
        else:
            torch._foreach_add_(thetas, v)
        return
    if optimizer.momentum_style == "heavy_ball":
        torch._foreach_mul_(v, beta)
        torch._foreach_add_(v, grads)  # v ← β·v + g
        step = torch._foreach_add(torch._foreach_mul(v, beta), grads) if optimizer.nesterov else v
    else:  # "ema"
        one_minus_beta = ops.convert_to_tensor(1.0 - optimizer.momentum, dtype)
        damped = torch._foreach_mul(grads, one_minus_beta)  # (1 − β)·g
        torch._foreach_mul_(v, beta)
        torch._foreach_add_(v, damped)  # v ← β·v + (1 − β)·g
        step = torch._foreach_add(torch._foreach_mul(v, beta), damped) if optimizer.nesterov else v
    torch._foreach_sub_(thetas, torch._foreach_mul(step, lr))


def adagrad(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """Mirrors ``Adagrad.update_step``."""
    import torch

    lr = ops.cast(learning_rate, variables[0].dtype)
    thetas = [variable.value for variable in variables]
    s = _values(optimizer, optimizer.accumulators, variables)
    torch._foreach_add_(s, torch._foreach_mul(grads, grads))  # s ← s + g²
    denominators = torch._foreach_sqrt(torch._foreach_add(s, optimizer.epsilon))
    torch._foreach_sub_(thetas, torch._foreach_div(torch._foreach_mul(grads, lr), denominators))


def rmsprop(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """Mirrors ``RMSprop.update_step`` (plain, centred, with momentum)."""
    import torch

    lr = ops.cast(learning_rate, variables[0].dtype)
    rho = optimizer.rho
    thetas = [variable.value for variable in variables]
    v = _values(optimizer, optimizer.velocities, variables)
    torch._foreach_mul_(v, rho)
    torch._foreach_add_(v, torch._foreach_mul(torch._foreach_mul(grads, grads), 1 - rho))  # v ← ρ·v + (1 − ρ)·g²
    if optimizer.centered:
        g_bar = _values(optimizer, optimizer.average_gradients, variables)
        torch._foreach_mul_(g_bar, rho)
        torch._foreach_add_(g_bar, torch._foreach_mul(grads, 1 - rho))  # ḡ ← ρ·ḡ + (1 − ρ)·g
        denominators = torch._foreach_add(torch._foreach_sub(v, torch._foreach_mul(g_bar, g_bar)), optimizer.epsilon)
    else:
        denominators = torch._foreach_add(v, optimizer.epsilon)
    increments = torch._foreach_div(torch._foreach_mul(grads, lr), torch._foreach_sqrt(denominators))
    if optimizer.momentum > 0:
        m = _values(optimizer, optimizer.momentums, variables)
        torch._foreach_mul_(m, optimizer.momentum)
        torch._foreach_add_(m, increments)  # m ← μ·m + Δ
        torch._foreach_sub_(thetas, m)
    else:
        torch._foreach_sub_(thetas, increments)


def adam(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """Mirrors ``Adam.update_step`` (both ε placements, with and without AMSGrad; AdamW's too)."""
    import torch

    dtype = variables[0].dtype
    lr = ops.cast(learning_rate, dtype)
    t = ops.cast(optimizer.iterations + 1, dtype)
    beta_1_power = ops.power(ops.convert_to_tensor(optimizer.beta_1, dtype), t)
    beta_2_power = ops.power(ops.convert_to_tensor(optimizer.beta_2, dtype), t)
    thetas = [variable.value for variable in variables]
    m = _values(optimizer, optimizer.momentums, variables)
    v = _values(optimizer, optimizer.velocities, variables)
    _moving_average_(m, grads, optimizer.beta_1)  # m ← β₁·m + (1 − β₁)·g
    _moving_average_(v, torch._foreach_mul(grads, grads), optimizer.beta_2)  # v ← β₂·v + (1 − β₂)·g²
    if optimizer.amsgrad:
        v_max = _values(optimizer, optimizer.velocity_maxima, variables)
        torch._foreach_maximum_(v_max, v)  # NaN propagates, as in elementwise.maximum
        v = v_max
    if optimizer.epsilon_placement == "keras":
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        steps = torch._foreach_div(torch._foreach_mul(m, alpha), torch._foreach_add(torch._foreach_sqrt(v), optimizer.epsilon))
    else:
        m_hat = torch._foreach_div(m, 1 - beta_1_power)
        v_hat = torch._foreach_div(v, 1 - beta_2_power)
        steps = torch._foreach_div(
            torch._foreach_mul(m_hat, lr), torch._foreach_add(torch._foreach_sqrt(v_hat), optimizer.epsilon)
        )
    torch._foreach_sub_(thetas, steps)


def nadam(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """Mirrors ``Nadam.update_step`` (``Π μ_i`` already advanced by ``Nadam._backend_update_step``)."""
    import torch

    dtype = variables[0].dtype
    lr = ops.cast(learning_rate, dtype)
    t = ops.cast(optimizer.iterations + 1, dtype)
    mu_t = optimizer._mu(t, dtype)
    mu_next = optimizer._mu(t + 1, dtype)
    mu_product = ops.cast(optimizer._u_product, dtype)
    mu_product_next = mu_product * mu_next
    beta_2_power = ops.power(ops.convert_to_tensor(optimizer.beta_2, dtype), t)
    thetas = [variable.value for variable in variables]
    m = _values(optimizer, optimizer.momentums, variables)
    v = _values(optimizer, optimizer.velocities, variables)
    _moving_average_(m, grads, optimizer.beta_1)  # m ← β₁·m + (1 − β₁)·g
    _moving_average_(v, torch._foreach_mul(grads, grads), optimizer.beta_2)  # v ← β₂·v + (1 − β₂)·g²
    m_hat = torch._foreach_add(
        torch._foreach_div(torch._foreach_mul(m, mu_next), 1 - mu_product_next),
        torch._foreach_div(torch._foreach_mul(grads, 1 - mu_t), 1 - mu_product),
    )
    v_hat = torch._foreach_div(v, 1 - beta_2_power)
    steps = torch._foreach_div(torch._foreach_mul(m_hat, lr), torch._foreach_add(torch._foreach_sqrt(v_hat), optimizer.epsilon))
    torch._foreach_sub_(thetas, steps)


def lion(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """Mirrors ``Lion.update_step``."""
    import torch

    dtype = variables[0].dtype
    lr = ops.cast(learning_rate, dtype)
    beta_1 = ops.convert_to_tensor(optimizer.beta_1, dtype)
    beta_2 = ops.convert_to_tensor(optimizer.beta_2, dtype)
    thetas = [variable.value for variable in variables]
    m = _values(optimizer, optimizer.momentums, variables)
    c = torch._foreach_add(torch._foreach_mul(m, beta_1), torch._foreach_mul(grads, 1.0 - beta_1))
    torch._foreach_sub_(thetas, torch._foreach_mul(torch._foreach_sign(c), lr))  # θ ← θ − lr·sign(c)
    torch._foreach_mul_(m, beta_2)
    torch._foreach_add_(m, torch._foreach_mul(grads, 1.0 - beta_2))  # m ← β₂·m + (1 − β₂)·g


def adadelta(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """Mirrors ``Adadelta.update_step``."""
    import torch

    lr = ops.cast(learning_rate, variables[0].dtype)
    rho = optimizer.rho
    thetas = [variable.value for variable in variables]
    squared_gradients = _values(optimizer, optimizer.squared_gradient_averages, variables)
    squared_updates = _values(optimizer, optimizer.squared_update_averages, variables)
    torch._foreach_mul_(squared_gradients, rho)
    torch._foreach_add_(squared_gradients, torch._foreach_mul(torch._foreach_mul(grads, grads), 1 - rho))
    rms_update = torch._foreach_sqrt(torch._foreach_add(squared_updates, optimizer.epsilon))
    rms_gradient = torch._foreach_sqrt(torch._foreach_add(squared_gradients, optimizer.epsilon))
    delta = torch._foreach_neg(torch._foreach_div(torch._foreach_mul(rms_update, grads), rms_gradient))
    torch._foreach_mul_(squared_updates, rho)
    torch._foreach_add_(squared_updates, torch._foreach_mul(torch._foreach_mul(delta, delta), 1 - rho))
    torch._foreach_add_(thetas, torch._foreach_mul(delta, lr))  # θ ← θ + lr·Δθ


def adamax(optimizer: Any, grads: list, variables: list, learning_rate: Any) -> None:
    """Mirrors ``Adamax.update_step``."""
    import torch

    dtype = variables[0].dtype
    lr = ops.cast(learning_rate, dtype)
    t = ops.cast(optimizer.iterations + 1, dtype)
    beta_1_power = ops.power(ops.convert_to_tensor(optimizer.beta_1, dtype), t)
    thetas = [variable.value for variable in variables]
    m = _values(optimizer, optimizer.momentums, variables)
    u = _values(optimizer, optimizer.norms, variables)
    _moving_average_(m, grads, optimizer.beta_1)  # m ← β₁·m + (1 − β₁)·g
    torch._foreach_mul_(u, optimizer.beta_2)
    torch._foreach_maximum_(u, torch._foreach_abs(grads))  # u ← max(β₂·u, |g|)
    denominators = torch._foreach_mul(torch._foreach_add(u, optimizer.epsilon), 1 - beta_1_power)
    torch._foreach_sub_(thetas, torch._foreach_div(torch._foreach_mul(m, lr), denominators))
