"""Polynomial decay to an end value (Keras's PolynomialDecay), and its linear case."""

from __future__ import annotations

import keras
from keras import ops

from lab.checks import check_non_negative, check_positive, check_positive_int
from lab.schedules.base import Schedule, as_float_step


@keras.saving.register_keras_serializable(package="lab")
class PolynomialDecay(Schedule):
    """Polynomial decay; a drop-in for ``keras.optimizers.schedules.PolynomialDecay``.

        lr(t) = (lr0 − end) · (1 − min(t, T) / T)^power + end                  (cycle=False)
        lr(t) = (lr0 − end) · (1 − t / T_t)^power + end,  T_t = T · max(1, ⌈t / T⌉)   (cycle=True)

    with T = ``decay_steps``. Without ``cycle`` the rate stays at ``end`` after step T; with it,
    each time the decay reaches its end it restarts from ``lr0`` over a period as long as all the
    previous ones together (the first multiple of T beyond t), so the restarts come ever rarer
    and lower. Same arguments, defaults and meaning as Keras's class, plus the lab's checks.

    Args:
        initial_learning_rate: lr0, float >= 0.
        decay_steps: T, integer >= 1.
        end_learning_rate: float >= 0 (default ``0.0001``, Keras's).
        power: float > 0; 1 is linear (default ``1.0``).
        cycle: restart as above (default ``False``).
        name: optional name; defaults to ``"PolynomialDecay"``.

    Reference: ``keras.optimizers.schedules.PolynomialDecay``; PyTorch ``PolynomialLR`` is the
    case ``end_learning_rate=0``, ``cycle=False`` (``total_iters`` = T).
    """

    STEP_ARGUMENTS = ("decay_steps",)

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ) -> None:
        super().__init__()
        self.initial_learning_rate = check_non_negative("initial_learning_rate", initial_learning_rate)
        self.decay_steps = check_positive_int("decay_steps", decay_steps)
        self.end_learning_rate = check_non_negative("end_learning_rate", end_learning_rate)
        self.power = check_positive("power", power)
        if not isinstance(cycle, bool):
            raise ValueError(f"`cycle` must be True or False, got {cycle!r}.")
        self.cycle = cycle
        self.name = name or "PolynomialDecay"

    def __call__(self, step):
        step = as_float_step(step)
        steps = float(self.decay_steps)
        if self.cycle:
            # XLA's t/T is t·(1/T): at t = 3T, T = 30, that is 3.0000002 and its ceiling 4; the
            # products k·T are exact, so one step back corrects it
            cycles = ops.ceil(step / steps)
            cycles = ops.where((cycles - 1.0) * steps >= step, cycles - 1.0, cycles)
            period = steps * ops.maximum(cycles, 1.0)
        else:
            period = steps
            step = ops.minimum(step, steps)
        # (T − t)/T rather than 1 − t/T: XLA multiplies by 1/T, which leaves 1 − t/T a few ulp
        # off 0 at t = T (and 0.1·(6e-8)^0.7 is 3e-7, not 0); T − t is exact in float32
        remaining = (period - step) / period
        # XLA computes 0^power (power < 1) as NaN; Keras's own class returns NaN there under XLA
        positive = remaining > 0
        factor = ops.where(positive, ops.power(ops.where(positive, remaining, 1.0), self.power), 0.0)
        return (self.initial_learning_rate - self.end_learning_rate) * factor + self.end_learning_rate

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="lab")
class LinearDecay(PolynomialDecay):
    """A straight line from ``initial_learning_rate`` to ``end_learning_rate`` over T steps, then flat.

        lr(t) = lr0 + (end − lr0) · min(t, T) / T

    :class:`PolynomialDecay` with ``power=1`` and no cycle, with a floor of 0 by default.

    Args:
        initial_learning_rate: lr0, float >= 0.
        decay_steps: T, integer >= 1.
        end_learning_rate: float >= 0 (default ``0.0``).
        name: optional name; defaults to ``"LinearDecay"``.

    Reference: PyTorch ``LinearLR(start_factor=1, end_factor=end/lr0, total_iters=T)``.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__(initial_learning_rate, decay_steps, end_learning_rate, 1.0, False, name or "LinearDecay")

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "name": self.name,
        }
