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
