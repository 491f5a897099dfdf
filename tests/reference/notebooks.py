"""The notebooks' own NumPy code, as written in them (apart from returning arrays).

These are the expected trajectories for the tests that reproduce the notebooks' 2-D and 1-D runs
with the lab's Keras optimisers; the names and defaults are the notebooks'.
"""

import numpy as np


# --- notebook 000 (verbatim apart from returning arrays) ----------------------------------------


def simple_bowl_grad(x, y):
    return np.array([2 * x, 2 * y])


def ravine_grad(x, y):
    return np.array([2 * x, 20 * y])


def vanilla_gradient_descent(grad_func, start_pos, lr=0.1, n_iters=50):
    pos = start_pos.copy()
    trajectory = [pos.copy()]
    for i in range(n_iters):
        grad = grad_func(pos[0], pos[1])
        pos = pos - lr * grad
        trajectory.append(pos.copy())
    return np.array(trajectory)


def momentum_gd(grad_func, start_pos, lr=0.01, momentum=0.9, n_iters=50):
    pos = start_pos.copy()
    velocity = np.zeros_like(pos)
    trajectory = [pos.copy()]
    for i in range(n_iters):
        grad = grad_func(pos[0], pos[1])
        velocity = momentum * velocity + grad
        pos = pos - lr * velocity
        trajectory.append(pos.copy())
    return np.array(trajectory)


def rmsprop(grad_func, start_pos, lr=0.1, decay=0.9, eps=1e-8, n_iters=50):
    pos = start_pos.copy()
    v = np.zeros_like(pos)
    trajectory = [pos.copy()]
    for i in range(n_iters):
        grad = grad_func(pos[0], pos[1])
        v = decay * v + (1 - decay) * grad**2
        pos = pos - (lr / (np.sqrt(v) + eps)) * grad
        trajectory.append(pos.copy())
    return np.array(trajectory)


def adam(grad_func, start_pos, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, n_iters=50):
    pos = start_pos.copy()
    m = np.zeros_like(pos)
    v = np.zeros_like(pos)
    trajectory = [pos.copy()]
    for t in range(1, n_iters + 1):
        grad = grad_func(pos[0], pos[1])
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        pos = pos - (lr / (np.sqrt(v_hat) + eps)) * m_hat
        trajectory.append(pos.copy())
    return np.array(trajectory)


# --- notebook 002 -------------------------------------------------------------------------------


def rosenbrock_grad(x, y, a=1, b=100):
    return np.array([-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)])


def gd_momentum(grad_f, x0, lr=0.001, momentum=0.9, n_iters=100):
    path = [x0.copy()]
    x = x0.copy()
    v = np.zeros_like(x)
    for _ in range(n_iters):
        g = grad_f(x[0], x[1])
        v = momentum * v + g
        x = x - lr * v
        path.append(x.copy())
    return np.array(path)


class AdamOptimizer:
    def __init__(self, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.m = None
        self.v = None
        self.t = 0

    def step(self, x, grad):
        if self.m is None:
            self.m = np.zeros_like(x)
            self.v = np.zeros_like(x)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad**2
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return x - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def adam_path(grad_f, x0, n_iters=100, **arguments):
    optimizer, x, path = AdamOptimizer(**arguments), x0.copy(), [x0.copy()]
    for _ in range(n_iters):
        x = optimizer.step(x, grad_f(x[0], x[1]))
        path.append(x.copy())
    return np.array(path)


# --- notebook 001's non-convex run, pasted as written ---------------------------------------------
def grad_f_nonconvex(x):
    return 4 * x**3 - 15 * x**2 + 8 * x + 3


def nonconvex_descent(start_x, learning_rate=0.01, n_iterations=100):
    x = start_x
    history_x = [x]
    for _ in range(n_iterations):
        gradient = grad_f_nonconvex(x)
        x = x - learning_rate * gradient
        history_x.append(x)
    return np.array(history_x)
