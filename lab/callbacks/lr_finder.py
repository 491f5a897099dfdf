"""The learning-rate range test: a callback, ``find_lr`` and the result with its suggestions."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from lab.callbacks.conflicts import warn_on_conflicts
from lab.callbacks.learning_rate import (
    base_optimizer,
    learning_rate_schedule,
    model_optimizers,
    retrace_train_function,
    sync_training_state,
)
from lab.checks import (
    check_choice,
    check_in_range,
    check_positive,
    check_positive_int,
)

# ---------------------------------------------------------------------------------------------
# Suggestions: plain functions of (learning_rates, losses) -> learning rate.


def _trim(learning_rates: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop non-finite losses, the first 10% of points and the last 5 (the divergence)."""
    keep = np.isfinite(losses)
    learning_rates, losses = learning_rates[keep], losses[keep]
    count = len(losses)
    start, end = count // 10, count - min(5, count // 5)
    if end - start < 3:
        start, end = 0, count
    if count < 2:
        raise ValueError("The range test recorded fewer than 2 finite losses; nothing to suggest.")
    return learning_rates[start:end], losses[start:end]


def steepest(learning_rates: np.ndarray, losses: np.ndarray) -> float:
    """The rate where the loss falls fastest against log(rate): argmin of d loss / d log lr."""
    learning_rates, losses = _trim(np.asarray(learning_rates), np.asarray(losses))
    slopes = np.gradient(losses, np.log(learning_rates))
    return float(learning_rates[int(np.argmin(slopes))])


def valley(learning_rates: np.ndarray, losses: np.ndarray) -> float:
    """fastai's "valley": two thirds down the longest decreasing run of the loss curve.

    The longest strictly decreasing subsequence of the losses is found (O(n^2)); the suggestion
    lies at ``start + (end - start) / 2``, counted in thirds as fastai does.
    """
    learning_rates, losses = _trim(np.asarray(learning_rates), np.asarray(losses))
    count = len(losses)
    lengths = [1] * count
    best_start, best_end = 0, 0
    for i in range(1, count):
        for j in range(i):
            if losses[i] < losses[j] and lengths[i] < lengths[j] + 1:
                lengths[i] = lengths[j] + 1
        if lengths[best_end] < lengths[i]:
            best_end = i
            best_start = best_end - lengths[best_end]
    sections = (best_end - best_start) / 3
    index = best_start + int(sections) + int(sections / 2)
    return float(learning_rates[min(max(index, 0), count - 1)])


def minimum_tenth(learning_rates: np.ndarray, losses: np.ndarray) -> float:
    """A tenth of the rate at the lowest loss (the classic rule of thumb)."""
    learning_rates, losses = _trim(np.asarray(learning_rates), np.asarray(losses))
    return float(learning_rates[int(np.argmin(losses))] / 10.0)


SUGGESTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "steepest": steepest,
    "valley": valley,
    "minimum/10": minimum_tenth,
}


@dataclass(frozen=True)
class LRFinderResult:
    """What a range test recorded: one row per training step.

    Attributes:
        learning_rates: the rate of each step.
        losses: the training loss of each step's batch.
        smoothed_losses: the bias-corrected exponential moving average of ``losses``.
        diverged: whether the test stopped early because the smoothed loss diverged (or was NaN).
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    diverged: bool = False

    def to_frame(self) -> pd.DataFrame:
        """A tidy table: step, learning_rate, loss, smoothed_loss."""
        return pd.DataFrame(
            {
                "step": np.arange(len(self.learning_rates)),
                "learning_rate": self.learning_rates,
                "loss": self.losses,
                "smoothed_loss": self.smoothed_losses,
            }
        )

    def suggest(self, method: str = "steepest") -> float:
        """A learning rate from the smoothed curve: "steepest", "valley" or "minimum/10"."""
        check_choice("method", method, SUGGESTIONS)
        return SUGGESTIONS[method](self.learning_rates, self.smoothed_losses)

    @property
    def suggestion(self) -> float:
        """The default suggestion: the steepest descent of the smoothed loss."""
        return self.suggest("steepest")

    def plot(self, path: str | Path | None = None, method: str = "steepest"):
        """Smoothed (and raw) loss against the learning rate on a log axis, the suggestion marked.

        Returns the matplotlib ``Figure``; with ``path`` it is also saved there (PNG by the
        file's suffix). Uses matplotlib's object API with the Agg canvas, so no display is needed
        and pyplot's global state is left alone.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6, 4))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.plot(self.learning_rates, self.losses, color="0.75", linewidth=1, label="loss")
        axes.plot(self.learning_rates, self.smoothed_losses, linewidth=2, label="smoothed loss")
        suggestion = self.suggest(method)
        at = np.interp(np.log(suggestion), np.log(self.learning_rates), self.smoothed_losses)
        axes.plot([suggestion], [at], "o", color="tab:red", label=f"{method}: {suggestion:.2e}")
        axes.set_xscale("log")
        axes.set_xlabel("learning rate")
        axes.set_ylabel("training loss")
        axes.set_title("Learning-rate range test")
        finite = self.smoothed_losses[np.isfinite(self.smoothed_losses)]
        if len(finite):
            axes.set_ylim(top=float(np.max(finite[: max(1, len(finite) - 1)])) * 1.1 + 1e-12)
        axes.legend()
        figure.tight_layout()
        if path is not None:
            figure.savefig(path)
        return figure


# ---------------------------------------------------------------------------------------------
# The callback.


def sweep_learning_rates(start_lr: float, end_lr: float, num_steps: int, mode: str) -> np.ndarray:
    """The rate of each step: geometric (``"exponential"``) or arithmetic from start to end."""
    fraction = np.arange(num_steps) / max(num_steps - 1, 1)
    if mode == "exponential":
        return start_lr * (end_lr / start_lr) ** fraction
    return start_lr + (end_lr - start_lr) * fraction


@keras.saving.register_keras_serializable(package="lab")
class LRFinder(keras.callbacks.Callback):
    """Leslie Smith's learning-rate range test, as a callback.

    Step i (0-based) of the next ``fit`` trains with

        lr_i = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))      mode="exponential"
        lr_i = start_lr + (end_lr - start_lr) * i / (num_steps - 1)         mode="linear"

    and records the batch's loss L_i with its bias-corrected exponential average

        a_i = beta * a_{i-1} + (1 - beta) * L_i,    s_i = a_i / (1 - beta ** (i + 1))

    Training stops after ``num_steps`` steps, or as soon as s_i > divergence_factor * min(s) or
    s_i is NaN. With ``restore=True`` (default) the model's weights, the optimizer's variables
    (moments, iteration count, learning rate) and its learning rate or schedule are put back
    exactly as they were at the start, from copies held in memory.

    It works with any optimizer. A float learning rate is a variable and is assigned each step; a
    ``LearningRateSchedule`` is swapped for a variable during the test (tracked by the optimizer so
    that a jitted JAX train step takes it as an argument) and put back afterwards. The metrics are
    reset before every step, so the logged ``loss`` is the step's own, not the running mean of the
    epoch. On JAX the training state is synced back into the variables after every step so that
    the assignments take effect. The result is in ``result`` after training.

    Args:
        start_lr: float > 0, the first rate (default 1e-7).
        end_lr: float > start_lr, the last rate (default 10).
        num_steps: int >= 2, the length of the sweep in steps (default 100).
        mode: ``"exponential"`` (default) or ``"linear"``.
        smoothing: beta in [0, 1), the weight of the moving average (default 0.98).
        divergence_factor: float > 1, stop once the smoothed loss exceeds this times its minimum
            (default 4); ``None`` never stops early.
        restore: put the model and optimizer back at the end of training (default True).

    Reference: L. N. Smith, "Cyclical Learning Rates for Training Neural Networks" (WACV 2017),
    section 3.3; fastai's ``LRFinder``.
    """

    sets_learning_rate = True
    checks_learning_rate_conflicts = True

    def __init__(
        self,
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        num_steps: int = 100,
        mode: str = "exponential",
        smoothing: float = 0.98,
        divergence_factor: float | None = 4.0,
        restore: bool = True,
    ) -> None:
        super().__init__()
        self.start_lr = check_positive("start_lr", start_lr)
        self.end_lr = check_in_range("end_lr", end_lr, self.start_lr, None, low_inclusive=False)
        self.num_steps = check_positive_int("num_steps", num_steps)
        if self.num_steps < 2:
            raise ValueError(f"`num_steps` must be >= 2, got {num_steps!r}.")
        self.mode = check_choice("mode", mode, ("exponential", "linear"))
        self.smoothing = check_in_range("smoothing", smoothing, 0.0, 1.0, high_inclusive=False)
        self.divergence_factor = (
            None
            if divergence_factor is None
            else check_in_range("divergence_factor", divergence_factor, 1.0, None,
                                low_inclusive=False)
        )
        self.restore = bool(restore)
        self.sweep = sweep_learning_rates(self.start_lr, self.end_lr, self.num_steps, self.mode)
        self.result: LRFinderResult | None = None

    # -- state -------------------------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        warn_on_conflicts(self)
        model = self.model
        if getattr(model, "steps_per_execution", 1) != 1:
            raise ValueError("LRFinder needs `steps_per_execution=1` to set the rate every step.")
        self._optimizers = model_optimizers(model)
        for optimizer in self._optimizers:
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
        self._saved_weights = [_copy(v) for v in model.weights]
        self._saved_optimizer = [[_copy(v) for v in o.variables] for o in self._optimizers]
        # A schedule is swapped for a variable for the duration of the test.
        self._swapped: list[tuple[Any, Any, Any]] = []
        for optimizer in self._optimizers:
            owner = base_optimizer(optimizer)
            schedule = learning_rate_schedule(optimizer)
            if schedule is not None:
                variable = keras.Variable(
                    self.start_lr, dtype=keras.backend.floatx(), trainable=False,
                    name="range_test_learning_rate",
                )
                owner._learning_rate = variable  # the optimizer tracks it as one of its variables
                self._swapped.append((owner, schedule, variable))
        if self._swapped:
            retrace_train_function(model)
        self._step = 0
        self._average = 0.0
        self._best = math.inf
        self._diverged = False
        self._learning_rates: list[float] = []
        self._losses: list[float] = []
        self._smoothed: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        rate = float(self.sweep[min(self._step, self.num_steps - 1)])
        for optimizer in self._optimizers:
            base_optimizer(optimizer)._learning_rate.assign(rate)
        self.model.reset_metrics()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = float(np.asarray(keras.ops.convert_to_numpy((logs or {})["loss"])))
        beta = self.smoothing
        self._average = beta * self._average + (1.0 - beta) * loss
        smoothed = self._average / (1.0 - beta ** (self._step + 1))
        self._learning_rates.append(float(self.sweep[self._step]))
        self._losses.append(loss)
        self._smoothed.append(smoothed)
        self._best = min(self._best, smoothed)
        self._step += 1
        if math.isnan(smoothed) or (
            self.divergence_factor is not None and smoothed > self.divergence_factor * self._best
        ):
            self._diverged = True
            self.model.stop_training = True
        elif self._step >= self.num_steps:
            self.model.stop_training = True
        else:
            sync_training_state(self.model)  # JAX: the next step reads the new rate

    def on_train_end(self, logs: dict | None = None) -> None:
        self.result = LRFinderResult(
            learning_rates=np.asarray(self._learning_rates),
            losses=np.asarray(self._losses),
            smoothed_losses=np.asarray(self._smoothed),
            diverged=self._diverged,
        )
        if self.restore:
            self.restore_state()

    def restore_state(self) -> None:
        """Put back the schedules, the weights and the optimizer variables saved at the start."""
        for owner, schedule, variable in self._swapped:
            owner._learning_rate = schedule
            owner._untrack_variable(variable)
        for variable, value in zip(self.model.weights, self._saved_weights):
            variable.assign(value)
        for optimizer, values in zip(self._optimizers, self._saved_optimizer):
            for variable, value in zip(optimizer.variables, values):
                variable.assign(value)
        if self._swapped:
            retrace_train_function(self.model)  # the traced step would keep the variable
        self._swapped = []

    def get_config(self) -> dict[str, Any]:
        return {
            "start_lr": self.start_lr,
            "end_lr": self.end_lr,
            "num_steps": self.num_steps,
            "mode": self.mode,
            "smoothing": self.smoothing,
            "divergence_factor": self.divergence_factor,
            "restore": self.restore,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "LRFinder":
        return cls(**config)


def _copy(variable: Any) -> np.ndarray:
    return np.array(keras.ops.convert_to_numpy(variable.value), copy=True)


def find_lr(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int | None = 32,
    mode: str = "exponential",
    smoothing: float = 0.98,
    divergence_factor: float | None = 4.0,
    callbacks: list[keras.callbacks.Callback] | None = None,
    **fit_kwargs: Any,
) -> LRFinderResult:
    """Run the range test on a compiled ``model`` and return the result; the model is unchanged.

    ``x``/``y`` are whatever ``model.fit`` accepts: NumPy arrays (batched by ``batch_size``,
    shuffled) or a batched ``tf.data.Dataset`` (``y=None``; ``batch_size`` is ignored). The data
    is repeated over as many epochs as the sweep needs. The remaining keyword arguments go to
    ``model.fit`` (``verbose`` defaults to 0). Nothing is written to disk.
    """
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise ValueError("find_lr needs a compiled model (model.compile(optimizer, loss)).")
    if "epochs" in fit_kwargs:
        raise ValueError("find_lr runs as many epochs as the sweep needs: set `num_steps`, not `epochs`.")
    finder = LRFinder(
        start_lr=start_lr,
        end_lr=end_lr,
        num_steps=num_steps,
        mode=mode,
        smoothing=smoothing,
        divergence_factor=divergence_factor,
        restore=True,
    )
    if _is_dataset(x):
        batch_size = None
        fit_kwargs.setdefault("shuffle", False)  # a dataset is shuffled (or not) by its own ops
    fit_kwargs.setdefault("verbose", 0)
    # Each epoch has at least one step, so num_steps epochs always cover the sweep; the finder
    # stops training when the sweep is done.
    model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=finder.num_steps,
        callbacks=[finder, *(callbacks or [])],
        **fit_kwargs,
    )
    return finder.result


def _is_dataset(x: Any) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")
