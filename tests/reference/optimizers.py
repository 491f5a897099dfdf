"""NumPy references of every optimiser's update rule, written from the formulas.

Each reference holds the state of one parameter array and advances it with ``step(theta, g, lr)``,
where ``lr`` is the learning rate of that step (constant or from a schedule). They follow the
papers and notebooks, in float64, with no shared code with ``lab.optimizers``.
"""

from __future__ import annotations

import numpy as np


class SGD:
    """Plain, heavy-ball, EMA and Keras-velocity momentum, each with an optional Nesterov look-ahead."""

    def __init__(self, momentum: float = 0.0, nesterov: bool = False, momentum_style: str = "keras"):
        self.beta, self.nesterov, self.style = momentum, nesterov, momentum_style
        self.v = None

    def step(self, theta: np.ndarray, g: np.ndarray, lr: float) -> np.ndarray:
        b = self.beta
        if b == 0:
            return theta - lr * g
        if self.v is None:
            self.v = np.zeros_like(theta)
        if self.style == "keras":  # v = βv − lr·g; θ += v  (nesterov: θ += βv − lr·g)
            self.v = b * self.v - lr * g
            return theta + (b * self.v - lr * g if self.nesterov else self.v)
        if self.style == "heavy_ball":  # v = βv + g; θ −= lr·v  (nesterov, PyTorch: θ −= lr·(g + βv))
            self.v = b * self.v + g
            return theta - lr * (g + b * self.v if self.nesterov else self.v)
        if self.style == "ema":  # v = βv + (1−β)g; θ −= lr·v  (nesterov: θ −= lr·((1−β)g + βv))
            self.v = b * self.v + (1 - b) * g
            return theta - lr * ((1 - b) * g + b * self.v if self.nesterov else self.v)
        raise ValueError(self.style)


class Adagrad:
    """Duchi et al. 2011: s = s + g²; θ −= lr·g/√(s + ε), s starting at ``initial_accumulator_value``."""

    def __init__(self, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7):
        self.s0, self.epsilon = initial_accumulator_value, epsilon
        self.s = None

    def step(self, theta, g, lr):
        if self.s is None:
            self.s = np.full_like(theta, self.s0)
        self.s = self.s + g**2
        return theta - lr * g / np.sqrt(self.s + self.epsilon)


class RMSprop:
    """Hinton 2012: v = ρv + (1−ρ)g²; Δ = lr·g/√(v + ε) (centred: √(v − ḡ² + ε)); momentum m = μm + Δ."""

    def __init__(self, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
        self.rho, self.mu, self.epsilon, self.centered = rho, momentum, epsilon, centered
        self.v = self.g_bar = self.m = None

    def step(self, theta, g, lr):
        if self.v is None:
            self.v, self.g_bar, self.m = (np.zeros_like(theta) for _ in range(3))
        self.v = self.rho * self.v + (1 - self.rho) * g**2
        if self.centered:
            self.g_bar = self.rho * self.g_bar + (1 - self.rho) * g
            delta = lr * g / np.sqrt(self.v - self.g_bar**2 + self.epsilon)
        else:
            delta = lr * g / np.sqrt(self.v + self.epsilon)
        if self.mu > 0:
            self.m = self.mu * self.m + delta
            return theta - self.m
        return theta - delta


class Adam:
    """Kingma & Ba 2014 (Algorithm 1), with ε after the bias correction ("paper") or folded ("keras").

    paper: θ −= lr·m̂/(√v̂ + ε);  keras: θ −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ)·m/(√v + ε).
    AMSGrad (Reddi et al. 2018) replaces v by its running maximum. ``weight_decay`` is the
    decoupled decay of AdamW (Loshchilov & Hutter), applied before the Adam step: θ −= lr·λ·θ.
    """

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, epsilon_placement="keras", weight_decay=0.0):
        self.b1, self.b2, self.epsilon = beta_1, beta_2, epsilon
        self.amsgrad, self.placement, self.wd = amsgrad, epsilon_placement, weight_decay
        self.m = self.v = self.v_max = None
        self.t = 0

    def step(self, theta, g, lr):
        if self.m is None:
            self.m, self.v, self.v_max = (np.zeros_like(theta) for _ in range(3))
        self.t += 1
        theta = theta - lr * self.wd * theta
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g**2
        v = self.v
        if self.amsgrad:
            self.v_max = np.maximum(self.v_max, self.v)
            v = self.v_max
        if self.placement == "paper":
            m_hat = self.m / (1 - self.b1**self.t)
            v_hat = v / (1 - self.b2**self.t)
            return theta - lr * m_hat / (np.sqrt(v_hat) + self.epsilon)
        alpha = lr * np.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        return theta - alpha * self.m / (np.sqrt(v) + self.epsilon)


class Nadam:
    """Dozat 2016 with the momentum schedule μ_t = β₁·(1 − ½·0.96ᵗ) (as in Keras and TensorFlow).

    m = β₁m + (1−β₁)g;  v = β₂v + (1−β₂)g²;
    m̂ = μ_{t+1}·m/(1 − Π_{i≤t+1} μ_i) + (1 − μ_t)·g/(1 − Π_{i≤t} μ_i);  v̂ = v/(1 − β₂ᵗ);
    θ −= lr·m̂/(√v̂ + ε).
    """

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.b1, self.b2, self.epsilon = beta_1, beta_2, epsilon
        self.m = self.v = None
        self.t = 0
        self.mu_product = 1.0

    def mu(self, t: int) -> float:
        return self.b1 * (1 - 0.5 * 0.96**t)

    def step(self, theta, g, lr):
        if self.m is None:
            self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        t = self.t
        self.mu_product *= self.mu(t)
        product_next = self.mu_product * self.mu(t + 1)
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g**2
        m_hat = self.mu(t + 1) * self.m / (1 - product_next) + (1 - self.mu(t)) * g / (1 - self.mu_product)
        v_hat = self.v / (1 - self.b2**t)
        return theta - lr * m_hat / (np.sqrt(v_hat) + self.epsilon)


class Lion:
    """Chen et al. 2023: θ −= lr·sign(β₁m + (1−β₁)g); then m = β₂m + (1−β₂)g."""

    def __init__(self, beta_1=0.9, beta_2=0.99):
        self.b1, self.b2 = beta_1, beta_2
        self.m = None

    def step(self, theta, g, lr):
        if self.m is None:
            self.m = np.zeros_like(theta)
        theta = theta - lr * np.sign(self.b1 * self.m + (1 - self.b1) * g)
        self.m = self.b2 * self.m + (1 - self.b2) * g
        return theta


class Adadelta:
    """Zeiler 2012, scaled by lr as Keras does: E[g²] = ρE[g²] + (1−ρ)g²;
    Δ = −√(E[Δ²] + ε)/√(E[g²] + ε)·g;  E[Δ²] = ρE[Δ²] + (1−ρ)Δ²;  θ += lr·Δ."""

    def __init__(self, rho=0.95, epsilon=1e-7):
        self.rho, self.epsilon = rho, epsilon
        self.squared_gradients = self.squared_updates = None

    def step(self, theta, g, lr):
        if self.squared_gradients is None:
            self.squared_gradients, self.squared_updates = np.zeros_like(theta), np.zeros_like(theta)
        self.squared_gradients = self.rho * self.squared_gradients + (1 - self.rho) * g**2
        delta = -np.sqrt(self.squared_updates + self.epsilon) / np.sqrt(self.squared_gradients + self.epsilon) * g
        self.squared_updates = self.rho * self.squared_updates + (1 - self.rho) * delta**2
        return theta + lr * delta


class Adamax:
    """Kingma & Ba 2014, Section 7.1 (ε added to u as in Keras): m = β₁m + (1−β₁)g; u = max(β₂u, |g|);
    θ −= lr/(1 − β₁ᵗ)·m/(u + ε)."""

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.b1, self.b2, self.epsilon = beta_1, beta_2, epsilon
        self.m = self.u = None
        self.t = 0

    def step(self, theta, g, lr):
        if self.m is None:
            self.m, self.u = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.u = np.maximum(self.b2 * self.u, np.abs(g))
        return theta - lr / (1 - self.b1**self.t) * self.m / (self.u + self.epsilon)


class Ftrl:
    """McMahan et al. 2013, FTRL-Proximal per coordinate, in Keras's parametrisation
    (power p, β folded into the L2 term, shrinkage λ₂ₛ added to the gradient):

    g̃ = g + 2λ₂ₛθ;  n' = n + g²;  z += g̃ − (n'^(−p) − n^(−p))/lr·θ;  n = n';
    θ = 0 where |z| <= λ₁, else −(z − sign(z)λ₁)/(n^(−p)/lr + 2λ₂ + β/lr).
    """

    def __init__(self, learning_rate_power=-0.5, initial_accumulator_value=0.1, l1=0.0, l2=0.0, l2_shrinkage=0.0, beta=0.0):
        self.power, self.n0 = -learning_rate_power, initial_accumulator_value
        self.l1, self.l2, self.l2_shrinkage, self.beta = l1, l2, l2_shrinkage, beta
        self.n = self.z = None

    def step(self, theta, g, lr):
        if self.n is None:
            self.n, self.z = np.full_like(theta, self.n0), np.zeros_like(theta)
        n_new = self.n + g**2
        self.z = self.z + g + 2 * self.l2_shrinkage * theta - (n_new**self.power - self.n**self.power) / lr * theta
        self.n = n_new
        quadratic = self.n**self.power / lr + 2 * self.l2 + self.beta / lr
        return np.where(np.abs(self.z) <= self.l1, 0.0, -(self.z - np.sign(self.z) * self.l1) / quadratic)


class Lamb:
    """You et al. 2020 with Keras's decoupled weight decay (none here): r = m̂/(√v̂ + ε);
    θ −= lr·(‖θ‖/‖r‖)·r, the ratio 1 where either norm is 0."""

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.adam = Adam(beta_1, beta_2, epsilon, epsilon_placement="paper")

    def step(self, theta, g, lr):
        r = theta - self.adam.step(theta, g, 1.0)  # the Adam direction at rate 1
        weight_norm, update_norm = np.linalg.norm(theta), np.linalg.norm(r)
        ratio = weight_norm / update_norm if weight_norm > 0 and update_norm > 0 else 1.0
        return theta - lr * ratio * r


class Adafactor:
    """Shazeer & Stern 2018 (Algorithm 4 without momentum), with Keras's ρ_t = min(lr, 1/√t):
    α = max(ε₂, RMS(θ))·ρ_t;  β̂₂ = 1 − t^c;  G = g² + ε₁;
    matrices: R = β̂₂R + (1−β̂₂)·row means of G, C likewise with column means, V = R Cᵀ/mean(R);
    otherwise V = β̂₂V + (1−β̂₂)G;  U = g/√V;  θ −= α·U/max(1, RMS(U)/d)."""

    def __init__(self, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0):
        self.c, self.epsilon_1, self.epsilon_2, self.d = beta_2_decay, epsilon_1, epsilon_2, clip_threshold
        self.rows = self.columns = self.v = None
        self.t = 0

    @staticmethod
    def rms(x):
        return np.sqrt(np.mean(x**2))

    def step(self, theta, g, lr):
        self.t += 1
        t = self.t
        alpha = max(self.epsilon_2, self.rms(theta)) * min(lr, 1 / np.sqrt(t))
        beta = 1 - t**self.c
        G = g**2 + self.epsilon_1
        if theta.ndim >= 2:
            if self.rows is None:
                self.rows, self.columns = np.zeros(theta.shape[:-1]), np.zeros(theta.shape[:-2] + theta.shape[-1:])
            self.rows = beta * self.rows + (1 - beta) * G.mean(axis=-1)
            self.columns = beta * self.columns + (1 - beta) * G.mean(axis=-2)
            v = self.rows[..., :, None] * self.columns[..., None, :] / self.rows.mean(axis=-1)[..., None, None]
        else:
            self.v = (0 if self.v is None else beta * self.v) + (1 - beta) * G
            v = self.v
        u = g / np.sqrt(v)
        return theta - alpha * u / max(1.0, self.rms(u) / self.d)


def newton_schulz(matrix: np.ndarray, steps: int = 5, coefficients=(3.4445, -4.7750, 2.0315)) -> np.ndarray:
    """Jordan et al. 2024: the quintic iteration X ← aX + (bA + cA²)X, A = XXᵀ, on the wide orientation
    of the matrix after dividing it by its Frobenius norm (+1e-7)."""
    a, b, c = coefficients
    tall = matrix.shape[0] > matrix.shape[1]
    x = matrix.T if tall else matrix
    x = x / (np.linalg.norm(x) + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon:
    """Jordan et al. 2024 with Moonlight's RMS matching (Liu et al. 2025), Keras's parametrisation:
    decoupled decay θ −= lr·λ·θ, then b = μb + g; u = g + μb (Nesterov) or b;
    θ −= lr·NS₅(u)·√max(n, m)·rms_rate.  ``adamw=True``: the fallback, θ −= lr·λ_adam·θ and then an
    Adam step (Keras's ε) at lr·adam_lr_ratio."""

    def __init__(self, momentum=0.95, nesterov=True, ns_steps=5, rms_rate=0.2, weight_decay=0.004,
                 adamw=False, adam_beta_1=0.9, adam_beta_2=0.999, epsilon=1e-7, adam_weight_decay=0.004, adam_lr_ratio=1.0):
        self.mu, self.nesterov, self.ns_steps, self.rms_rate = momentum, nesterov, ns_steps, rms_rate
        self.adamw, self.lr_ratio = adamw, adam_lr_ratio
        self.decay = adam_weight_decay if adamw else weight_decay
        self.adam = Adam(adam_beta_1, adam_beta_2, epsilon)
        self.b = None

    def step(self, theta, g, lr):
        theta = theta - lr * self.decay * theta
        if self.adamw:
            return self.adam.step(theta, g, lr * self.lr_ratio)
        self.b = self.mu * (0 if self.b is None else self.b) + g
        u = g + self.mu * self.b if self.nesterov else self.b
        scale = np.sqrt(max(theta.shape)) * self.rms_rate if self.rms_rate is not None else 1.0
        return theta - lr * newton_schulz(u, self.ns_steps) * scale


class ScheduleFreeAdamW:
    """Defazio et al. 2024 (Algorithm 1, AdamW form) with Keras's uniform average c_t = 1/t, x kept
    explicitly: γ = lr·min(t/warmup, 1); v = β₂v + (1−β₂)g²; z −= γ·g/(√(v/(1−β₂ᵗ)) + ε);
    x = (1 − 1/t)x + z/t; y = (1−β₁)z + β₁x (y is the model's θ; z₀ = x₀ = θ₀).
    Keras's decoupled decay shrinks y before the step, y −= lr·λ·y; x, which Keras recovers from
    y and z, takes the same change divided by β₁."""

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-8, warmup_steps=0, weight_decay=0.0):
        self.b1, self.b2, self.epsilon, self.warmup, self.wd = beta_1, beta_2, epsilon, warmup_steps, weight_decay
        self.z = self.x = self.v = None
        self.t = 0

    def step(self, theta, g, lr):
        if self.z is None:
            self.z, self.x, self.v = theta.copy(), theta.copy(), np.zeros_like(theta)
        self.t += 1
        decay = lr * self.wd * theta
        theta, self.x = theta - decay, self.x - decay / self.b1
        rate = lr * min(self.t / self.warmup, 1.0) if self.warmup else lr
        self.v = self.b2 * self.v + (1 - self.b2) * g**2
        self.z = self.z - rate * g / (np.sqrt(self.v / (1 - self.b2**self.t)) + self.epsilon)
        self.x = (1 - 1 / self.t) * self.x + self.z / self.t
        return (1 - self.b1) * self.z + self.b1 * self.x


class RAdam:
    """Liu et al. 2020 as torch.optim.RAdam: m̂ = m/(1−β₁ᵗ); ρ_t = ρ_∞ − 2tβ₂ᵗ/(1−β₂ᵗ);
    ρ_t > 5: θ −= lr·r_t·m̂·√(1−β₂ᵗ)/(√v + ε), else θ −= lr·m̂. Weight decay: L2 (g += λθ) or
    decoupled (θ −= lr·λ·θ first)."""

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0, decoupled=False):
        self.b1, self.b2, self.epsilon, self.wd, self.decoupled = beta_1, beta_2, epsilon, weight_decay, decoupled
        self.m = self.v = None
        self.t = 0

    def step(self, theta, g, lr):
        if self.m is None:
            self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        t = self.t
        if self.decoupled:
            theta = theta * (1 - lr * self.wd)
        else:
            g = g + self.wd * theta
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g**2
        m_hat = self.m / (1 - self.b1**t)
        rho_inf = 2 / (1 - self.b2) - 1
        rho_t = rho_inf - 2 * t * self.b2**t / (1 - self.b2**t)
        if rho_t > 5:
            r = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            return theta - lr * r * m_hat * np.sqrt(1 - self.b2**t) / (np.sqrt(self.v) + self.epsilon)
        return theta - lr * m_hat


class NAdamW:
    """AlgoPerf's NAdamW (reference_algorithms/paper_baselines/nadamw): θ −= lr·λ·θ; m, v as Adam;
    θ −= lr/(1−β₁ᵗ)·(β₁m + (1−β₁)g)/(√v/√(1−β₂ᵗ) + ε)."""

    def __init__(self, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.01):
        self.b1, self.b2, self.epsilon, self.wd = beta_1, beta_2, epsilon, weight_decay
        self.m = self.v = None
        self.t = 0

    def step(self, theta, g, lr):
        if self.m is None:
            self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        theta = theta * (1 - lr * self.wd)
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g**2
        nesterov = self.b1 * self.m + (1 - self.b1) * g
        denominator = np.sqrt(self.v) / np.sqrt(1 - self.b2**self.t) + self.epsilon
        return theta - lr / (1 - self.b1**self.t) * nesterov / denominator


class Prodigy:
    """Mishchenko & Defazio 2024, ported line by line from prodigyopt 1.1.2 (Prodigy.step), over a
    list of parameter arrays: the estimate d comes from sums over all of them."""

    def __init__(self, beta_1=0.9, beta_2=0.999, beta_3=None, epsilon=1e-8, weight_decay=0.0, decouple=True,
                 use_bias_correction=False, safeguard_warmup=False, d0=1e-6, d_coef=1.0, growth_rate=float("inf")):
        self.b1, self.b2 = beta_1, beta_2
        self.b3 = np.sqrt(beta_2) if beta_3 is None else beta_3
        self.eps, self.decay, self.decouple = epsilon, weight_decay, decouple
        self.bias_correction, self.safeguard = use_bias_correction, safeguard_warmup
        self.d0, self.d, self.d_max, self.d_coef, self.growth_rate = d0, d0, d0, d_coef, growth_rate
        self.d_numerator, self.k = 0.0, 0
        self.state = None

    def step(self, params: list, grads: list, lr: float) -> list:
        params = [p.copy() for p in params]
        if self.state is None:
            self.state = [
                {"s": np.zeros_like(p), "p0": p.copy(), "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
                for p in params
            ]
        b1, b2, b3, d, d0 = self.b1, self.b2, self.b3, self.d, self.d0
        k = self.k
        bias_correction = ((1 - b2 ** (k + 1)) ** 0.5) / (1 - b1 ** (k + 1)) if self.bias_correction else 1
        dlr = d * lr * bias_correction
        d_numerator = self.d_numerator * b3
        delta_numerator, d_denom = 0.0, 0.0
        grads = [g + self.decay * p if (self.decay != 0 and not self.decouple) else g for p, g in zip(params, grads)]
        if lr > 0.0:
            for p, grad, state in zip(params, grads, self.state):
                delta_numerator += (d / d0) * dlr * float(np.dot(grad.ravel(), (state["p0"] - p).ravel()))
                state["exp_avg"] = state["exp_avg"] * b1 + grad * d * (1 - b1)
                state["exp_avg_sq"] = state["exp_avg_sq"] * b2 + grad * grad * d * d * (1 - b2)
                state["s"] = state["s"] * b3 + grad * ((d / d0) * (d if self.safeguard else dlr))
                d_denom += float(np.abs(state["s"]).sum())
        if d_denom == 0:
            return params
        global_d_numerator = d_numerator + delta_numerator
        d_hat = self.d_coef * global_d_numerator / d_denom
        if d == d0:
            d = max(d, d_hat)
        self.d_max = max(self.d_max, d_hat)
        d = min(self.d_max, d * self.growth_rate)
        self.d_numerator, self.d = global_d_numerator, d
        for i, (grad, state) in enumerate(zip(grads, self.state)):
            denom = np.sqrt(state["exp_avg_sq"]) + d * self.eps
            if self.decay != 0 and self.decouple:
                params[i] = params[i] - self.decay * dlr * params[i]
            if b1 > 0:
                params[i] = params[i] - dlr * state["exp_avg"] / denom
            else:
                params[i] = params[i] - dlr * d * grad / denom
        self.k = k + 1
        return params


class ScheduleFreeSGD:
    """Defazio et al. 2024 in the paper's form, with x and z kept explicitly:
    y = (1−β)z + βx (the gradient is taken there); z −= γ_t·g; x = (1 − c)x + c·z with
    c = w_t/Σw, w_t = t^r·(max γ)^p, γ_t = lr·min(1, t/warmup). Weight decay: g += λ·y."""

    def __init__(self, momentum=0.9, warmup_steps=0, weight_power=0.0, weight_learning_rate_power=2.0, weight_decay=0.0):
        self.beta, self.warmup, self.r, self.p, self.wd = momentum, warmup_steps, weight_power, weight_learning_rate_power, weight_decay
        self.z = self.x = None
        self.t, self.lr_max, self.weight_sum = 0, -1.0, 0.0

    def step(self, y, g, lr):
        if self.z is None:
            self.z, self.x = y.copy(), y.copy()
        self.t += 1
        gamma = lr * min(1.0, self.t / self.warmup) if self.warmup else lr
        self.lr_max = max(self.lr_max, gamma)
        weight = self.t**self.r * self.lr_max**self.p
        self.weight_sum += weight
        c = weight / self.weight_sum if self.weight_sum > 0 else 0.0
        g = g + self.wd * y
        self.z = self.z - gamma * g
        self.x = (1 - c) * self.x + c * self.z
        return (1 - self.beta) * self.z + self.beta * self.x
