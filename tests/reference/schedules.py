"""NumPy references of the learning-rate schedules, in float64.

Each function takes an array of 0-based steps and returns the learning rate at each, written from
the closed-form formulas of the notebooks, the papers and PyTorch's documented
``torch.optim.lr_scheduler`` behaviour (the value at step i is PyTorch's learning rate after i
``scheduler.step()`` calls). Where PyTorch's documentation gives the rule as a loop over phases or
cycles, the reference follows that loop step by step instead of a vectorised closed form, so it
shares no arithmetic shortcut with the code under test.
"""

from __future__ import annotations

import math

import numpy as np


def _steps(steps) -> np.ndarray:
    return np.asarray(steps, dtype=np.float64)


def constant(steps, learning_rate: float) -> np.ndarray:
    return np.full(_steps(steps).shape, float(learning_rate))


def step_decay(steps, initial_learning_rate: float, decay_rate: float, decay_steps: int) -> np.ndarray:
    """StepLR: lr0 * gamma ** (t // step_size)."""
    t = np.asarray(steps, dtype=np.int64)
    return initial_learning_rate * decay_rate ** (t // decay_steps).astype(np.float64)


def exponential_decay(
    steps, initial_learning_rate: float, decay_steps: int, decay_rate: float, staircase: bool = False
) -> np.ndarray:
    """lr0 * rate ** (t / decay_steps), integer division when staircase."""
    t = np.asarray(steps, dtype=np.int64)
    exponent = (t // decay_steps).astype(np.float64) if staircase else t / decay_steps
    return initial_learning_rate * decay_rate**exponent


def cosine_annealing(
    steps, initial_learning_rate: float, decay_steps: int, min_learning_rate: float = 0.0
) -> np.ndarray:
    """CosineAnnealingLR's closed form eta_min + (lr0 - eta_min)(1 + cos(pi T_cur / T_max)) / 2,
    held at eta_min once T_cur >= T_max."""
    out = []
    for t in np.asarray(steps, dtype=np.int64):
        t_cur = min(int(t), decay_steps)
        out.append(
            min_learning_rate
            + (initial_learning_rate - min_learning_rate) * (1 + math.cos(math.pi * t_cur / decay_steps)) / 2
        )
    return np.array(out)


def warmup_cosine(
    steps,
    peak_learning_rate: float,
    warmup_steps: int,
    decay_steps: int,
    initial_learning_rate: float = 0.0,
    min_learning_rate: float = 0.0,
) -> np.ndarray:
    """Notebooks 000/002: linear warm-up initial -> peak over warmup_steps, then a cosine from
    peak to the floor over decay_steps, flat after."""
    out = []
    for t in np.asarray(steps, dtype=np.int64):
        t = int(t)
        if t < warmup_steps:
            out.append(initial_learning_rate + (peak_learning_rate - initial_learning_rate) * t / warmup_steps)
        else:
            progress = min(t - warmup_steps, decay_steps) / decay_steps
            out.append(
                min_learning_rate
                + 0.5 * (peak_learning_rate - min_learning_rate) * (1 + math.cos(math.pi * progress))
            )
    return np.array(out)


def one_cycle(
    steps,
    max_learning_rate: float,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal: str = "cos",
) -> np.ndarray:
    """OneCycleLR(three_phase=False).get_lr(), transcribed: a list of phases, each with an end step
    and start/end rates, walked in order. Steps past total_steps - 1 keep the final rate."""
    initial = max_learning_rate / div_factor
    minimum = initial / final_div_factor
    phases = [
        {"end_step": float(pct_start * total_steps) - 1, "start_lr": initial, "end_lr": max_learning_rate},
        {"end_step": total_steps - 1, "start_lr": max_learning_rate, "end_lr": minimum},
    ]

    def annealing_cos(start, end, pct):
        cos_out = math.cos(math.pi * pct) + 1
        return end + (start - end) / 2.0 * cos_out

    def annealing_linear(start, end, pct):
        return (end - start) * pct + start

    anneal_func = annealing_cos if anneal == "cos" else annealing_linear
    out = []
    for step_num in np.asarray(steps, dtype=np.int64):
        step_num = int(step_num)
        if step_num > total_steps - 1:
            out.append(minimum)
            continue
        start_step = 0.0
        for i, phase in enumerate(phases):
            end_step = phase["end_step"]
            if step_num <= end_step or i == len(phases) - 1:
                pct = (step_num - start_step) / (end_step - start_step)
                out.append(anneal_func(phase["start_lr"], phase["end_lr"], pct))
                break
            start_step = phase["end_step"]
    return np.array(out)


def cyclic_lr(
    steps,
    base_learning_rate: float,
    max_learning_rate: float,
    step_size: int,
    mode: str = "triangular",
    gamma: float = 1.0,
) -> np.ndarray:
    """CyclicLR.get_lr() with step_size_up = step_size_down = step_size, transcribed."""
    total_size = float(step_size + step_size)
    step_ratio = step_size / total_size
    if mode == "triangular":
        scale_fn, scale_mode = (lambda x: 1.0), "cycle"
    elif mode == "triangular2":
        scale_fn, scale_mode = (lambda x: 1 / (2.0 ** (x - 1))), "cycle"
    else:
        scale_fn, scale_mode = (lambda x: gamma**x), "iterations"
    out = []
    for last_epoch in np.asarray(steps, dtype=np.int64):
        last_epoch = int(last_epoch)
        cycle = math.floor(1 + last_epoch / total_size)
        x = 1.0 + last_epoch / total_size - cycle
        if x <= step_ratio:
            scale_factor = x / step_ratio
        else:
            scale_factor = (x - 1) / (step_ratio - 1)
        base_height = (max_learning_rate - base_learning_rate) * scale_factor
        factor = scale_fn(cycle) if scale_mode == "cycle" else scale_fn(last_epoch)
        out.append(base_learning_rate + base_height * factor)
    return np.array(out)


def cosine_warm_restarts_pytorch(
    steps, initial_learning_rate: float, first_decay_steps: int, t_mul: int = 1, min_learning_rate: float = 0.0
) -> np.ndarray:
    """CosineAnnealingWarmRestarts(T_0, T_mult, eta_min) stepped one call at a time
    (T_cur += 1; on T_cur >= T_i: T_cur -= T_i, T_i *= T_mult)."""
    wanted = np.asarray(steps, dtype=np.int64)
    last = int(wanted.max())
    t_cur, t_i = 0, first_decay_steps
    history = []
    for _ in range(last + 1):
        history.append(
            min_learning_rate
            + (initial_learning_rate - min_learning_rate) * (1 + math.cos(math.pi * t_cur / t_i)) / 2
        )
        t_cur += 1
        if t_cur >= t_i:
            t_cur -= t_i
            t_i *= t_mul
    return np.array(history)[wanted]


def sgdr(
    steps,
    initial_learning_rate: float,
    first_decay_steps: int,
    t_mul: float = 2.0,
    m_mul: float = 1.0,
    min_learning_rate: float = 0.0,
) -> np.ndarray:
    """SGDR (Loshchilov & Hutter 2017) with any t_mul >= 1 and a height factor m_mul per restart:
    walk the periods until the one holding t, then a half cosine inside it."""
    out = []
    for t in np.asarray(steps, dtype=np.int64):
        start, length, restarts = 0.0, float(first_decay_steps), 0
        while t >= start + length:
            start += length
            length *= t_mul
            restarts += 1
        height = (m_mul**restarts) * (initial_learning_rate - min_learning_rate)
        out.append(min_learning_rate + height * (1 + math.cos(math.pi * (t - start) / length)) / 2)
    return np.array(out)


def sequential(steps, pieces, boundaries) -> np.ndarray:
    """pieces: reference callables of the step; piece k runs from boundaries[k-1] (0 for the first)
    and sees the step counted from its start."""
    starts = [0, *boundaries]
    out = []
    for t in np.asarray(steps, dtype=np.int64):
        k = sum(1 for b in boundaries if t >= b)
        out.append(float(pieces[k](np.array([t - starts[k]]))[0]))
    return np.array(out)


def polynomial_decay(steps, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False):
    """Keras's documented decayed_learning_rate(step): with cycle, decay_steps becomes the first
    multiple of itself >= step (1 at step 0)."""
    out = []
    for t in np.asarray(steps, dtype=np.int64):
        t = int(t)
        if cycle:
            period = decay_steps * max(1, math.ceil(t / decay_steps))
        else:
            period, t = decay_steps, min(t, decay_steps)
        out.append((initial_learning_rate - end_learning_rate) * (1 - t / period) ** power + end_learning_rate)
    return np.array(out)


def piecewise_constant(steps, boundaries, values):
    """Keras's PiecewiseConstantDecay: values[i] while boundaries[i-1] < t <= boundaries[i]."""
    out = []
    for t in np.asarray(steps, dtype=np.int64):
        index = sum(1 for b in boundaries if t > b)
        out.append(values[index])
    return np.array(out, dtype=np.float64)


def multi_step(steps, initial_learning_rate, milestones, gamma=0.1):
    """MultiStepLR's closed form: lr0 * gamma ** bisect_right(milestones, t)."""
    import bisect

    return np.array([initial_learning_rate * gamma ** bisect.bisect_right(milestones, int(t)) for t in steps])


def inverse_time_decay(steps, initial_learning_rate, decay_steps, decay_rate, staircase=False):
    """lr0 / (1 + rate * t / decay_steps), integer division when staircase."""
    t = np.asarray(steps, dtype=np.int64)
    progress = (t // decay_steps).astype(np.float64) if staircase else t / decay_steps
    return initial_learning_rate / (1 + decay_rate * progress)


def linear_warmup(steps, target, warmup_steps, initial_learning_rate=0.0):
    """target: a number, or a reference callable of the step run from the end of the warm-up."""
    after = target if callable(target) else (lambda s: np.full(np.shape(s), float(target)))
    peak = float(after(np.array([0]))[0])
    out = []
    for t in np.asarray(steps, dtype=np.int64):
        if t < warmup_steps:
            out.append(initial_learning_rate + (peak - initial_learning_rate) * t / warmup_steps)
        else:
            out.append(float(after(np.array([t - warmup_steps]))[0]))
    return np.array(out)


def warmup_stable_decay(
    steps, peak, total_steps, warmup_steps=0, decay_fraction=0.2, decay_shape="linear", initial=0.0, minimum=0.0
):
    """Hägele et al. 2024: warm-up, constant, cool-down over the last round(fraction·T) steps with
    1 − p, (1 + cos πp)/2 or 1 − √p, then the floor."""
    decay = max(1, round(decay_fraction * total_steps))
    start = total_steps - decay
    shapes = {"linear": lambda p: 1 - p, "cosine": lambda p: (1 + math.cos(math.pi * p)) / 2, "1-sqrt": lambda p: 1 - math.sqrt(p)}
    out = []
    for t in np.asarray(steps, dtype=np.int64):
        t = int(t)
        if t < warmup_steps:
            out.append(initial + (peak - initial) * t / warmup_steps)
        elif t < start:
            out.append(peak)
        elif t < total_steps:
            out.append(minimum + (peak - minimum) * shapes[decay_shape]((t - start) / decay))
        else:
            out.append(minimum)
    return np.array(out)
