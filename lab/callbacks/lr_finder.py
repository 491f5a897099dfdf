"""The learning-rate range test: a callback, ``find_lr``, the result and all its suggestions."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np
import pandas as pd

from lab.callbacks.conflicts import check_callbacks
from lab.callbacks.learning_rate import (
    base_optimizer,
    learning_rate_schedule,
    model_optimizers,
    sync_training_state,
)
from lab.checks import check_choice, check_in_range, check_positive, check_positive_int

# ---------------------------------------------------------------------------------------------
# Suggestions: plain functions of (learning_rates, losses) -> learning rate, fastai's rules.


def _trim(learning_rates: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop non-finite losses, the first 10% of points and the last 5 (the divergence)."""
    keep = np.isfinite(losses)
    learning_rates, losses = np.asarray(learning_rates)[keep], np.asarray(losses)[keep]
    count = len(losses)
    if count < 2:
        raise ValueError("The range test recorded fewer than 2 finite losses; nothing to suggest.")
    start, end = count // 10, count - min(5, count // 5)
    if end - start < 3:
        start, end = 0, count
    return learning_rates[start:end], losses[start:end]


def steep(learning_rates: np.ndarray, losses: np.ndarray) -> float:
    """Where the loss falls fastest against log(rate): argmin of d loss / d log lr."""
    learning_rates, losses = _trim(learning_rates, losses)
    return float(learning_rates[int(np.argmin(np.gradient(losses, np.log(learning_rates))))])


def valley(learning_rates: np.ndarray, losses: np.ndarray) -> float:
    """fastai's "valley": about half-way down the longest decreasing run of the loss (O(n^2))."""
    learning_rates, losses = _trim(learning_rates, losses)
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


def slide(learning_rates: np.ndarray, losses: np.ndarray, window: int = 15,
          threshold: float = 0.005) -> float:
    """fastai's "slide": walking left from the end, the first rate where the loss's slope over a
    ``window``-point interval changes by less than ``threshold`` (the end of the flat region)."""
    learning_rates, losses = _trim(learning_rates, losses)
    gradient = np.gradient(losses)
    right = len(losses) - 1
    left = right - window
    suggestion = learning_rates[max(left, 0)]
    while left >= 0 and abs(gradient[right] - gradient[left]) > threshold:
        suggestion = learning_rates[left]
        right, left = right - 1, left - 1
    return float(suggestion)


def minimum(learning_rates: np.ndarray, losses: np.ndarray) -> float:
    """A tenth of the rate at the lowest loss (the classic rule of thumb; fastai's "minimum")."""
    learning_rates, losses = _trim(learning_rates, losses)
    return float(learning_rates[int(np.argmin(losses))] / 10.0)


SUGGESTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "valley": valley,
    "slide": slide,
    "minimum": minimum,
    "steep": steep,
}


class Suggestions(NamedTuple):
    """Every suggestion of one range test (as fastai's ``SuggestedLRs``); ``verified`` is the
    candidate that trained best in ``find_lr``'s short verification, ``None`` without one."""

    valley: float
    slide: float
    minimum: float
    steep: float
    verified: float | None = None


@dataclass(frozen=True)
class LRFinderResult:
    """What a range test recorded, one row per training step, and what it suggests.

    Attributes:
        learning_rates: the rate of each step.
        losses: the training loss of each step's batch.
        smoothed_losses: the bias-corrected exponential moving average of ``losses``.
        diverged: whether the test stopped early because the smoothed loss diverged (or was NaN).
        verified: the candidate that trained best in ``find_lr``'s verification, or ``None``.
        verification: ``{candidate rate: training loss after the verification steps}``.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    diverged: bool = False
    verified: float | None = None
    verification: dict[float, float] | None = None

    def to_frame(self) -> pd.DataFrame:
        """A tidy table: step, learning_rate, loss, smoothed_loss."""
        return pd.DataFrame({
            "step": np.arange(len(self.learning_rates)),
            "learning_rate": self.learning_rates,
            "loss": self.losses,
            "smoothed_loss": self.smoothed_losses,
        })

    def suggest(self, method: str) -> float:
        """One rule's suggestion from the smoothed curve: "valley", "slide", "minimum", "steep"."""
        check_choice("method", method, SUGGESTIONS)
        return SUGGESTIONS[method](self.learning_rates, self.smoothed_losses)

    @property
    def suggestions(self) -> Suggestions:
        """Every rule's suggestion at once, plus the verified one."""
        return Suggestions(*(self.suggest(method) for method in SUGGESTIONS), self.verified)

    @property
    def suggestion(self) -> float:
        """The default: the verified candidate; without a verification, "minimum" (of the single
        rules, the one whose worst cell is best on the panel, ``benchmarks/lr_finder_panel.py``)."""
        return self.verified if self.verified is not None else self.suggest("minimum")

    def plot(self, path: str | Path | None = None):
        """Smoothed (and raw) loss against the rate on a log axis, every suggestion marked.

        Returns the matplotlib ``Figure`` (object API on the Agg canvas: no display needed,
        pyplot's global state untouched); with ``path`` it is also saved there.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6, 4))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.plot(self.learning_rates, self.losses, color="0.75", linewidth=1, label="loss")
        axes.plot(self.learning_rates, self.smoothed_losses, linewidth=2, label="smoothed loss")
        log_rates = np.log(self.learning_rates)
        markers = dict(zip(Suggestions._fields, "osv^*"))
        for name, rate in self.suggestions._asdict().items():
            if rate is not None:
                at = np.interp(np.log(rate), log_rates, self.smoothed_losses)
                axes.plot([rate], [at], markers[name], markersize=9 if name == "verified" else 6,
                          label=f"{name}: {rate:.2e}")
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
    s_i is NaN. The rate is the optimizer's float learning-rate variable, assigned before each
    step; being one of the optimizer's variables, the compiled train step takes it as an argument
    on every backend (nothing is traced again). An optimizer whose rate is a schedule is refused:
    :func:`find_lr` runs the test on a twin of the model with a float rate, for any optimizer. The
    metrics are reset before every step, so the logged ``loss`` is the step's own; on JAX the
    state is synced after every step so that the assignment takes effect. With ``restore=True``
    the weights and the optimizer's variables are put back at the end, from copies in memory.

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
    section 3.3; fastai's ``LRFinder`` and ``SuggestedLRs``.
    """

    sets_learning_rate = True

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
        self.divergence_factor = None if divergence_factor is None else check_in_range(
            "divergence_factor", divergence_factor, 1.0, None, low_inclusive=False)
        self.restore = bool(restore)
        self.sweep = sweep_learning_rates(self.start_lr, self.end_lr, self.num_steps, self.mode)
        self.result: LRFinderResult | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if getattr(self.model, "steps_per_execution", 1) != 1:
            raise ValueError("LRFinder needs `steps_per_execution=1` to set the rate every step.")
        self._optimizers = model_optimizers(self.model)
        if any(learning_rate_schedule(optimizer) is not None for optimizer in self._optimizers):
            raise ValueError(
                "LRFinder sets a float learning rate; this optimizer's rate is a schedule. Use "
                "find_lr, which runs the range test on a twin of the model with a float rate."
            )
        for optimizer in self._optimizers:
            if not optimizer.built:
                optimizer.build(self.model.trainable_variables)
        self._saved = [(v, _copy(v)) for v in self._state_variables()] if self.restore else []
        self._step, self._average, self._best, self._diverged = 0, 0.0, math.inf, False
        self._learning_rates, self._losses, self._smoothed = [], [], []

    def _state_variables(self) -> list:
        return [*self.model.weights, *(v for o in self._optimizers for v in o.variables)]

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        rate = float(self.sweep[min(self._step, self.num_steps - 1)])
        for optimizer in self._optimizers:
            base_optimizer(optimizer).learning_rate = rate
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
        for variable, value in self._saved:
            variable.assign(value)

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


# ---------------------------------------------------------------------------------------------
# find_lr: the test on a twin of the model, then a short verification of the candidates.


def _twin(model: keras.Model, learning_rate: float) -> keras.Model:
    """A copy of ``model`` (same architecture and weights) compiled with the same loss and a fresh
    optimizer of the same class and arguments, except a float ``learning_rate``."""
    optimizers = model_optimizers(model)
    if len(optimizers) != 1:
        raise ValueError("find_lr supports a model with one optimizer.")
    optimizer = base_optimizer(optimizers[0])
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    config = {**optimizer.get_config(), "learning_rate": float(learning_rate)}
    twin.compile(
        optimizer=type(optimizer).from_config(config),
        loss=model.loss,
        loss_weights=getattr(model, "loss_weights", None),
        jit_compile=getattr(model, "jit_compile", "auto"),
    )
    twin.optimizer.build(twin.trainable_variables)
    return twin


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
    verify_steps: int = 100,
    callbacks: list[keras.callbacks.Callback] | None = None,
    **fit_kwargs: Any,
) -> LRFinderResult:
    """Run the range test for a compiled ``model`` and return every suggestion; ``model`` itself
    is never trained, so its weights, optimizer and compiled train function stay as they are.

    The test runs on a twin (``keras.models.clone_model``, the same weights, a fresh optimizer of
    the same class and arguments with a float rate, the same loss). Then each distinct rule's
    suggestion (valley, slide, minimum, steep) trains the twin from the same starting weights and
    a fresh optimizer state for ``verify_steps`` steps; the one with the lowest training loss over
    the second half of those steps is ``result.verified``, the default ``result.suggestion``
    (``verify_steps=0`` skips this; the default is then "minimum"). Why verify: on the benchmark
    panel no single rule reaches 95% of the best rate's training accuracy in every cell ("steep"
    falls to 0.5 on RMSprop and under momentum, "valley" to 0.82 and "minimum" to 0.89 with plain
    SGD at batch 128), the verified choice does (``benchmarks/lr_finder_panel.py``, the table in
    the README).

    ``x``/``y`` are whatever ``model.fit`` accepts: NumPy arrays (batched by ``batch_size``,
    shuffled) or a batched ``tf.data.Dataset`` (``y=None``; ``batch_size`` is ignored); the data
    is repeated as needed. Other keyword arguments go to ``fit`` (``verbose`` defaults to 0);
    ``callbacks`` are checked for conflicts (:func:`check_callbacks`) and run on the twin.
    """
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise ValueError("find_lr needs a compiled model (model.compile(optimizer, loss)).")
    if "epochs" in fit_kwargs:
        raise ValueError("find_lr runs as many epochs as the sweep needs: set `num_steps`, not `epochs`.")
    verify_steps = int(check_in_range("verify_steps", verify_steps, 0, None))
    finder = LRFinder(start_lr=start_lr, end_lr=end_lr, num_steps=num_steps, mode=mode,
                      smoothing=smoothing, divergence_factor=divergence_factor, restore=False)
    check_callbacks([finder, *(callbacks or [])])
    if _is_dataset(x):
        batch_size = None
        fit_kwargs.setdefault("shuffle", False)  # a dataset is shuffled (or not) by its own ops
    fit_kwargs.setdefault("verbose", 0)
    twin = _twin(model, start_lr)
    start = [(v, _copy(v)) for v in [*twin.weights, *twin.optimizer.variables]]

    def run(test: LRFinder, extra: list) -> LRFinderResult:
        for variable, value in start:
            variable.assign(value)
        # Each epoch has at least one step, so num_steps epochs cover the test; it stops itself.
        twin.fit(x, y, batch_size=batch_size, epochs=test.num_steps, callbacks=[test, *extra],
                 **fit_kwargs)
        return test.result

    result = run(finder, list(callbacks or []))
    if verify_steps < 2:
        return result
    scores = {}
    for rate in sorted(set(result.suggestions[:4])):
        # a flat "sweep": the candidate rate for verify_steps steps, the losses of each step
        flat = LRFinder(rate, rate * (1 + 1e-9), verify_steps, divergence_factor=None,
                        restore=False)
        losses = run(flat, []).losses
        score = float(np.mean(losses[len(losses) // 2:]))
        scores[rate] = score if math.isfinite(score) else math.inf
    verified = min(scores, key=scores.get)
    return LRFinderResult(result.learning_rates, result.losses, result.smoothed_losses,
                          result.diverged, verified, scores)


def _is_dataset(x: Any) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "element_spec")
