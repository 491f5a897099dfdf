"""One training run, the way every training experiment of the lab does it: ``train_run``.

``train_run(model, optimizer, data, epochs=..., batch_size=..., seed=...)`` compiles ``model``
with ``optimizer``, trains it with ``model.fit`` and returns one tidy row per epoch::

    epoch  loss  accuracy  val_loss  val_accuracy  learning_rate  seconds  status
    1      ...                                     0.001          2.1      ok

- ``epoch`` counts from 1; ``learning_rate`` is the rate the optimiser used in the epoch's last
  step (a schedule is evaluated there, a callback's change at the end of the epoch shows in the
  next row); ``seconds`` is cumulative wall time of the run (training and validation, summed over
  resumed sessions); ``status`` is ``ok``, or ``diverged`` on the epoch whose loss became NaN or
  infinite or above ``divergence_factor`` (4) times the untrained model's loss -- the run stops
  there and the rows are returned, nothing is raised. The factor, not NaN alone, is what gives
  one verdict on every backend: on TensorFlow Keras takes a softmax output's cross-entropy from
  the logits the softmax was given, so a blown-up classifier's loss grows without bound, while
  on JAX and PyTorch it takes it from the probabilities clipped to ``[ε, 1 − ε]`` (ε = 1e-7), so
  each example's loss is at most ``−log ε ≈ 16.1`` and a classifier driven off by a huge rate
  shows a finite loss stuck at (the share of examples it saturates on wrongly) × 16.1, its
  gradient zero. 4 (fastai's LR-finder rule, and ``lab.callbacks.LRFinder``'s) flags a two-class
  problem (untrained loss ≈ log 2) once about a sixth of its examples are saturated wrongly:
  ``lr_sensitivity``'s SGD at rate 10⁴ on moons is 4.35 times its untrained loss on JAX, 2·10⁸
  on TensorFlow, and diverged on both.
- **Determinism.** ``keras.utils.set_random_seed(seed)`` at the start, and the examples of epoch
  ``e`` are visited in the order ``numpy.random.default_rng([seed, e]).permutation(n)``: a pure
  function of the seed and the epoch, the same on every backend and after a resume. Same seed,
  same backend -> the same numbers (``seconds`` aside).
- **Resume.** With ``checkpoint_dir`` the run saves, at the end of every epoch, the model's and
  the optimiser's variables (what ``keras.callbacks.BackupAndRestore`` saves, in a NumPy archive:
  see ``save_checkpoint``) and the rows so far, atomically: the weights go to a new file, then
  ``state.json`` -- written through a temporary file and renamed -- points at it. A kill at any moment leaves the previous
  consistent checkpoint. Calling ``train_run`` again with the same folder (and a freshly built
  model and optimiser) continues after the last finished epoch and gives the rows an
  uninterrupted run gives. ``BackupAndRestore`` itself is not used because it rewrites its only
  checkpoint in place and keeps no rows. A finished run is marked ``finished`` in ``state.json``;
  calling again returns its rows without training and leaves ``model`` compiled with its final
  weights and optimiser state. Delete the folder when the rows are stored.
  Stateful callbacks passed in ``callbacks`` (plateau counters, early stopping) are not part of the
  checkpoint; the columns they add to the rows (see ``callbacks``) are.
- **Speed.** Data stay in memory; ``steps_per_execution`` (default 32) runs several steps per call
  into the backend (one on PyTorch, whose trainer takes no more); ``jit_compile="auto"`` lets
  Keras compile where it can.
- ``tensorboard_dir`` adds ``keras.callbacks.TensorBoard`` (epoch scalars: loss, accuracy,
  learning rate; train/ and validation/ sub-folders); without TensorFlow, which writes them,
  ``lab.tensorboard_logs.TensorBoardUnavailableError`` says so before training starts.

Use it from any experiment::

    from experiments.training import train_run
    rows = train_run(models.moons_net(seed), build_optimizer("adam"), load_moons(),
                     epochs=200, batch_size=800, seed=seed)
    rows.insert(0, "optimizer", "adam")

Regression problems pass ``loss="mean_squared_error", metrics=()``; the ``accuracy`` columns are
then absent.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from experiments.atomic_files import write_json_atomic
from lab import internals
from lab.callbacks.conflicts import check_callbacks
from lab.tensorboard_logs import tensorboard_callback

STATUS_OK = "ok"
STATUS_DIVERGED = "diverged"
DEFAULT_STEPS_PER_EXECUTION = 32
DEFAULT_DIVERGENCE_FACTOR = 4.0
INITIAL_LOSS_EXAMPLES = 1024
_STATE_FILE = "state.json"
_FIXED_COLUMNS = ("epoch", "loss", "val_loss", "learning_rate", "seconds", "status")


def epoch_permutation(n_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which epoch ``epoch`` (0-based) of a run with ``seed`` visits the examples."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n_examples)


class _EpochOrder:
    """The permutation of the current epoch; ``_EpochOrderCallback`` moves it on."""

    def __init__(self, n_examples: int, seed: int, epoch: int = 0) -> None:
        self.n_examples = n_examples
        self.seed = seed
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.indices = epoch_permutation(self.n_examples, self.seed, epoch)


class _EpochOrderCallback(keras.callbacks.Callback):
    def __init__(self, order: _EpochOrder) -> None:
        super().__init__()
        self.order = order

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.order.set_epoch(epoch)


class _ShuffledArrays(keras.utils.PyDataset):
    """Batches of in-memory arrays in the epoch's order (the JAX and PyTorch backends)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, order: _EpochOrder) -> None:
        super().__init__()
        self.x, self.y, self.batch_size, self.order = x, y, batch_size, order

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self.order.indices[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[batch], self.y[batch]


def _tf_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, order: _EpochOrder):
    """The same batches as ``_ShuffledArrays`` as a ``tf.data`` pipeline (the TensorFlow backend).

    The permutation is read when an epoch's iterator starts, after ``on_epoch_begin``; the
    batches are gathered from tensors held once in memory.
    """
    import tensorflow as tf

    n_batches = math.ceil(len(x) / batch_size)

    def permutation(_):
        indices = tf.numpy_function(lambda: order.indices.astype(np.int64), [], tf.int64, stateful=True)
        indices.set_shape([len(x)])
        return indices

    batches = tf.data.Dataset.range(1).map(permutation).unbatch().batch(batch_size)
    arrays = tf.data.Dataset.from_tensors((x, y)).repeat()

    def gather(indices, data):
        return tf.gather(data[0], indices), tf.gather(data[1], indices)

    dataset = tf.data.Dataset.zip(batches, arrays).map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.deterministic = True
    dataset = dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
    return dataset.apply(tf.data.experimental.assert_cardinality(n_batches))


def _learning_rate_now(optimizer: keras.optimizers.Optimizer) -> float:
    """The rate used by the optimiser's most recent step."""
    rate = internals.learning_rate_or_schedule(optimizer)  # the variable, or the schedule as given
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        step = max(int(keras.ops.convert_to_numpy(optimizer.iterations)) - 1, 0)
        return float(keras.ops.convert_to_numpy(rate(step)))
    if callable(rate):
        return float(keras.ops.convert_to_numpy(rate()))
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _finite(value: Any) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))
    except (TypeError, ValueError):
        return True


class _Recorder(keras.callbacks.Callback):
    """Turns each epoch into a row; stops the run, marked diverged, when the loss blows up."""

    def __init__(
        self,
        rows: list[dict],
        prior_seconds: float,
        on_epoch: Callable[[dict], None] | None,
        loss_limit: float,
    ) -> None:
        super().__init__()
        self.rows = rows
        self.prior_seconds = prior_seconds
        self.on_epoch = on_epoch
        self.loss_limit = loss_limit
        self.diverged = False
        self._start = time.perf_counter()
        self._epoch_logs: dict = {}
        self._logged: set[str] = set()

    def _blown_up(self, loss: Any) -> bool:
        return not _finite(loss) or float(np.asarray(loss)) > self.loss_limit

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if logs and "loss" in logs and self._blown_up(logs["loss"]):
            self.diverged = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs_seen = logs if logs is not None else {}
        logs = dict(logs_seen)
        logs.pop("learning_rate", None)
        if "loss" in logs and self._blown_up(logs["loss"]):
            self.diverged = True
        if self.diverged:
            self.model.stop_training = True
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update({k: float(np.asarray(v)) for k, v in logs.items()})
        # the rate is a float32 variable: keep the digits it holds, not its binary expansion
        row["learning_rate"] = float(f"{_learning_rate_now(self.model.optimizer):.7g}")
        row["seconds"] = self.prior_seconds + time.perf_counter() - self._start
        row["status"] = STATUS_DIVERGED if self.diverged else STATUS_OK
        self.rows.append(row)
        self._epoch_logs, self._logged = logs_seen, set(logs_seen)

    def finish_row(self) -> None:
        """After the caller's callbacks: scalars they wrote into the epoch's logs (Keras's
        convention, e.g. ``logs["w"] = ...`` in ``on_epoch_end``) join the row as columns."""
        row = self.rows[-1]
        for key, value in self._epoch_logs.items():
            if key not in self._logged and key not in row and not key.startswith("learning_rate") and np.ndim(value) == 0:
                row[key] = float(np.asarray(value))
        if self.on_epoch is not None:
            self.on_epoch(dict(row))


class _FinishRow(keras.callbacks.Callback):
    def __init__(self, recorder: _Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.recorder.finish_row()


class _Checkpoint(keras.callbacks.Callback):
    """Saves weights + optimiser state + rows after every epoch; see the module docstring."""

    def __init__(self, folder: Path, rows: list[dict], recorder: _Recorder, initial_loss: float) -> None:
        super().__init__()
        self.folder = folder
        self.rows = rows
        self.recorder = recorder
        self.initial_loss = initial_loss

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        save_checkpoint(
            self.folder, self.model, self.rows, finished=self.recorder.diverged, initial_loss=self.initial_loss
        )


def _checkpointed_variables(model: keras.Model) -> list:
    """The model's weights, then every variable of its optimiser (iterations, rate, slots)."""
    return [*model.weights, *model.optimizer.variables]


def save_checkpoint(
    folder: Path, model: keras.Model, rows: list[dict], *, finished: bool, initial_loss: float | None = None
) -> None:
    """Write ``epoch-NNNN.weights.npz`` then point ``state.json`` at it; remove older weights.

    The variables go to a NumPy archive, in the order of ``_checkpointed_variables``, rather
    than through ``model.save_weights``: on the lab's small models an HDF5 file costs about 6 ms
    an epoch and the archive under 1 ms, which matters on moons' 200 one-step epochs. Neither
    file is fsynced: the renames make a checkpoint survive a killed process, which is what
    ``--resume`` is for.
    """
    folder.mkdir(parents=True, exist_ok=True)
    epoch = len(rows)
    weights = f"epoch-{epoch:04d}.weights.npz"
    np.savez(folder / weights, *(keras.ops.convert_to_numpy(v) for v in _checkpointed_variables(model)))
    state = {"epoch": epoch, "weights": weights, "rows": rows, "finished": finished, "initial_loss": initial_loss}
    write_json_atomic(folder / _STATE_FILE, state, sync=False)
    for stale in folder.glob("epoch-*.weights.npz"):
        if stale.name != weights:
            stale.unlink(missing_ok=True)


def restore_checkpoint(model: keras.Model, path: Path) -> None:
    """Load what ``save_checkpoint`` wrote into a compiled ``model`` and its built optimiser."""
    variables = _checkpointed_variables(model)
    with np.load(path) as saved:
        arrays = [saved[f"arr_{index}"] for index in range(len(saved.files))]
    if len(arrays) != len(variables):
        raise ValueError(
            f"{path} holds {len(arrays)} arrays but the model and its optimiser have {len(variables)} "
            "variables: it is the checkpoint of another model or optimiser"
        )
    for variable, array in zip(variables, arrays):
        variable.assign(array)


def load_checkpoint_state(folder: Path) -> dict | None:
    """The last consistent checkpoint of a run (``state.json``), or ``None``."""
    path = Path(folder) / _STATE_FILE
    if not path.is_file():
        return None
    with open(path) as handle:
        return json.load(handle)


def mark_finished(folder: Path, rows: list[dict]) -> None:
    state = load_checkpoint_state(folder) or {"epoch": len(rows), "weights": None}
    state.update(rows=rows, finished=True, epoch=len(rows))
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / _STATE_FILE, state)


def _initial_loss(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """The untrained model's loss on the first training examples: the scale of "blown up"."""
    count = min(len(x), INITIAL_LOSS_EXAMPLES)
    results = model.evaluate(x[:count], y[:count], batch_size=count, verbose=0, return_dict=True)
    return float(results["loss"])


def train_run(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    data,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    loss: str | keras.losses.Loss = "sparse_categorical_crossentropy",
    metrics: Sequence[str] = ("accuracy",),
    validate: bool = True,
    tensorboard_dir: str | Path | None = None,
    checkpoint_dir: str | Path | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    on_epoch: Callable[[dict], None] | None = None,
    steps_per_execution: int = DEFAULT_STEPS_PER_EXECUTION,
    jit_compile: bool | str = "auto",
    divergence_factor: float | None = DEFAULT_DIVERGENCE_FACTOR,
) -> pd.DataFrame:
    """Train ``model`` with ``optimizer`` on ``data`` and return one row per epoch.

    Args:
        model: a built, uncompiled Keras model (e.g. from ``lab.models``), seeded by the caller.
        optimizer: a fresh optimiser (``lab.registry.build_optimizer(...)``).
        data: a ``lab.datasets.Split``: trains on ``x_train, y_train``, validates on
            ``x_val, y_val`` (on ``x_test, y_test`` when the split has no validation part, as
            the notebooks' splits do; ``lab.problems.protocol_view`` chooses for a protocol).
        epochs: total number of epochs, >= 1 (a resumed run continues up to it).
        batch_size: examples per step, >= 1 (``len(x_train)`` for full batch).
        seed: seeds Keras's global random state and the per-epoch order of the examples.
        loss, metrics: as for ``model.compile``.
        validate: evaluate on the validation data after every epoch (``val_*`` columns).
        tensorboard_dir: if given, write TensorBoard epoch scalars there.
        checkpoint_dir: if given, checkpoint every epoch there and resume from it (see module).
        callbacks: extra Keras callbacks (after the lab's own, so a learning-rate change they
            make at the end of an epoch shows from the next row on); a scalar one writes into
            the epoch's ``logs`` in ``on_epoch_end`` becomes a column of the row.
        on_epoch: called with each new row (a dict) -- for progress reporting.
        steps_per_execution: training steps per call into the backend, >= 1.
        jit_compile: passed to ``model.compile``.
        divergence_factor: the run is ``diverged`` when its training loss exceeds this many
            times the untrained model's loss (or is NaN/inf); ``None``: only NaN/inf.

    Returns:
        A DataFrame with ``epoch, loss, <metrics>, val_loss, val_<metrics>, learning_rate,
        seconds, status`` (``status`` is ``ok`` or ``diverged``).
    """
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if int(steps_per_execution) < 1:
        raise ValueError(f"steps_per_execution must be >= 1, got {steps_per_execution}")
    # made first: without TensorFlow it fails before any work
    board = None if tensorboard_dir is None else tensorboard_callback(
        tensorboard_dir, write_graph=False, profile_batch=0, update_freq="epoch"
    )
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    state = load_checkpoint_state(folder) if folder is not None else None
    rows: list[dict] = list(state["rows"]) if state else []

    keras.utils.set_random_seed(int(seed))
    x_train, y_train = np.asarray(data.x_train), np.asarray(data.y_train)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        metrics=list(metrics),
        # Keras's PyTorch trainer runs one step per call and refuses more; the numbers are the same
        steps_per_execution=1 if keras.backend.backend() == "torch" else int(steps_per_execution),
        jit_compile=jit_compile,
    )
    initial_epoch = 0
    if state and state.get("weights"):
        optimizer.build(model.trainable_variables)
        restore_checkpoint(model, folder / state["weights"])
        initial_epoch = len(rows)
    if state and (state.get("finished") or len(rows) >= epochs):
        return rows_frame(rows)  # a finished run: its rows, and the model as it ended

    order = _EpochOrder(len(x_train), int(seed), initial_epoch)
    if keras.backend.backend() == "tensorflow":
        train_data = _tf_dataset(x_train, y_train, int(batch_size), order)
    else:
        train_data = _ShuffledArrays(x_train, y_train, int(batch_size), order)

    if state and state.get("initial_loss") is not None:
        initial_loss = float(state["initial_loss"])
    else:
        initial_loss = _initial_loss(model, x_train, y_train)
    loss_limit = math.inf if divergence_factor is None else float(divergence_factor) * initial_loss
    prior_seconds = float(rows[-1]["seconds"]) if rows else 0.0
    recorder = _Recorder(rows, prior_seconds, on_epoch, loss_limit)
    run_callbacks: list[keras.callbacks.Callback] = [_EpochOrderCallback(order), recorder]
    if board is not None:
        run_callbacks.append(board)
    check_callbacks(callbacks)  # warns when two of them set the learning rate
    run_callbacks.extend(callbacks)
    run_callbacks.append(_FinishRow(recorder))
    if folder is not None:
        run_callbacks.append(_Checkpoint(folder, rows, recorder, initial_loss))

    validation = None
    if validate:
        x_val, y_val = (data.x_test, data.y_test) if data.x_val is None else (data.x_val, data.y_val)
        validation = (np.asarray(x_val), np.asarray(y_val))
    model.fit(
        train_data,
        epochs=int(epochs),
        initial_epoch=initial_epoch,
        validation_data=validation,
        validation_batch_size=max(int(batch_size), 1024),
        callbacks=run_callbacks,
        shuffle=False,  # the order is the epoch's permutation, see above
        verbose=0,
    )
    if folder is not None:
        mark_finished(folder, rows)
    return rows_frame(rows)


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows in the documented column order (a checkpoint's JSON does not keep key order)."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    metrics = [c for c in frame.columns if c not in _FIXED_COLUMNS and not c.startswith("val_")]
    valid = [c for c in frame.columns if c.startswith("val_") and c != "val_loss"]
    head = ["epoch"] + (["loss"] if "loss" in frame else []) + sorted(metrics)
    head += (["val_loss"] if "val_loss" in frame else []) + sorted(valid)
    frame = frame[head + ["learning_rate", "seconds", "status"]]
    return frame.astype({"epoch": int})
