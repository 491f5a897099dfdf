"""Per-step optimiser diagnostics for TensorBoard: learning rate, gradient norm, update ratios."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import keras
import numpy as np

from lab.callbacks.learning_rate import learning_rate_at, model_optimizers, sync_training_state
from lab.checks import check_positive_int
from lab.tensorboard_logs import tensorflow_summary


def probe_gradients(model: keras.Model, x: Any, y: Any, sample_weight: Any = None) -> list:
    """The gradient of the model's compiled loss on one batch, at the current weights.

    Computed statelessly (``stateless_call`` + ``stateless_compute_loss``, ``training=True``):
    no variable of the model, its optimizer or its metrics changes, so it can run between two
    training steps. Differentiated with ``tf.GradientTape`` on TensorFlow, ``jax.grad`` on JAX
    and ``torch.autograd`` on PyTorch. Returns NumPy arrays, one per trainable variable.
    """
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    metrics = [v.value for v in model.metrics_variables]
    x, y = keras.ops.convert_to_tensor(x), (None if y is None else keras.ops.convert_to_tensor(y))

    def loss_of(trainable_values):
        y_pred, updated = model.stateless_call(trainable_values, non_trainable, x, training=True)
        loss, _ = model.stateless_compute_loss(
            trainable_values, updated, metrics, x=x, y=y, y_pred=y_pred,
            sample_weight=sample_weight, training=True,
        )
        return loss

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        gradients = jax.grad(loss_of)(trainable)
    elif backend == "tensorflow":
        import tensorflow as tf

        values = [tf.identity(value) for value in trainable]
        with tf.GradientTape() as tape:
            tape.watch(values)
            loss = loss_of(values)
        gradients = tape.gradient(loss, values)
    elif backend == "torch":
        import torch

        values = [value.detach().clone().requires_grad_(True) for value in trainable]
        gradients = torch.autograd.grad(loss_of(values), values)
    else:
        raise NotImplementedError(f"probe_gradients does not support the {backend!r} backend.")
    return [np.asarray(keras.ops.convert_to_numpy(g)) for g in gradients]


def _layer_of(variable: Any, model_name: str) -> str:
    """The variable's layer path inside the model: ``"moons_net_3/hidden/kernel"`` -> ``"hidden"``.

    The model's own name (auto-numbered by Keras: ``sequential_6``) is dropped, so a layer has
    the same tag in every run.
    """
    path = getattr(variable, "path", variable.name).removeprefix(f"{model_name}/")
    return path.rsplit("/", 1)[0] if "/" in path else path


@keras.saving.register_keras_serializable(package="lab")
class TrainingDiagnostics(keras.callbacks.Callback):
    """Every ``every_n_steps`` optimizer steps, write to TensorBoard, for step t (0-based):

        learning_rate                 the rate update t used (a schedule evaluated at t)
        gradient_norm                 ||g_t||_2 = sqrt(sum over all variables of sum g^2),
                                      g_t = grad L(w_t; probe batch)
        update_ratio/<layer>          ||w_{t+1} - w_t||_2 / ||w_t||_2 over the layer's
                                      trainable variables (<layer>: its path inside the
                                      model, without the model's auto-numbered name)

    Keras's ``TensorBoard`` callback logs the learning rate per epoch only; this logs it per step,
    beside the two quantities that tell whether a rate is sane: how large the gradient is, and how
    far one update moves each layer relative to its size (around 1e-3 is the usual healthy order).

    Where the gradient comes from: a callback never sees the batch ``fit`` trains on, so the
    gradient is measured on ``probe_data``, a small fixed batch from the training data that the
    callback keeps, at the weights w_t the optimizer is about to update (computed statelessly
    just before step t; nothing the training uses changes). Without ``probe_data`` the gradient
    norm is not logged. The update ratio needs no gradient: the weights are copied before step t
    and compared after it.

    The scalars go to ``<log_dir>/<subdir>`` (default ``train``, the run folder in which Keras's
    ``TensorBoard(log_dir)`` writes its training scalars), so TensorBoard shows them with the
    epoch curves. Writing uses ``tf.summary``: TensorFlow is required (the model may train on any
    backend), and without it the constructor raises ``lab.tensorboard_logs.TensorBoardUnavailableError``,
    which names the fix. On JAX, the training state is synced into the variables at the steps it reads.

    Args:
        log_dir: the TensorBoard run folder (the same as Keras's ``TensorBoard``).
        every_n_steps: int >= 1, log at steps 0, n, 2n, ... (default 10).
        probe_data: ``(x, y)`` or ``(x, y, sample_weight)``, a small batch for the gradient, or
            ``None``.
        subdir: sub-folder of ``log_dir`` to write to (default ``"train"``).

    Reference: A. Karpathy, "A Recipe for Training Neural Networks" (2019), update/weight ratio;
    Keras ``TensorBoard``.
    """


    def __init__(
        self,
        log_dir: str | os.PathLike,
        every_n_steps: int = 10,
        probe_data: tuple | None = None,
        subdir: str = "train",
    ) -> None:
        super().__init__()
        tensorflow_summary("TrainingDiagnostics")
        self.log_dir = os.fspath(log_dir)
        self.every_n_steps = check_positive_int("every_n_steps", every_n_steps)
        if probe_data is not None and not (
            isinstance(probe_data, (tuple, list)) and len(probe_data) in (2, 3)
        ):
            raise ValueError("`probe_data` must be (x, y) or (x, y, sample_weight), or None.")
        self.probe_data = None if probe_data is None else tuple(probe_data)
        self.subdir = subdir
        self._writer = None

    @property
    def write_dir(self) -> str:
        return os.path.join(self.log_dir, self.subdir)

    def on_train_begin(self, logs: dict | None = None) -> None:
        if getattr(self.model, "steps_per_execution", 1) != 1:
            # Keras calls back once per execution: the steps inside one are not observable
            raise ValueError(
                "TrainingDiagnostics logs every step and needs `steps_per_execution=1` in "
                f"model.compile (got {self.model.steps_per_execution})."
            )
        self._summary = tensorflow_summary("TrainingDiagnostics")
        self._writer = self._summary.create_file_writer(self.write_dir)
        self._optimizer = model_optimizers(self.model)[0]
        self._step = int(keras.ops.convert_to_numpy(self._optimizer.iterations))
        self._before = None
        self._gradient_norm = None
        if self._step % self.every_n_steps == 0:
            self._prepare()

    def _prepare(self) -> None:
        """Copy w_t and measure the gradient at it, just before step t."""
        sync_training_state(self.model)
        self._before = [
            (variable, np.array(keras.ops.convert_to_numpy(variable.value), copy=True))
            for variable in self.model.trainable_variables
        ]
        self._gradient_norm = None
        if self.probe_data is not None:
            gradients = probe_gradients(self.model, *self.probe_data)
            self._gradient_norm = float(
                np.sqrt(sum(np.sum(np.square(g, dtype=np.float64)) for g in gradients))
            )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = self._step
        self._step += 1
        if self._before is not None and step % self.every_n_steps == 0:
            sync_training_state(self.model)
            self._write(step)
            self._before = None
        if self._step % self.every_n_steps == 0:
            self._prepare()

    def _write(self, step: int) -> None:
        moved: dict[str, float] = defaultdict(float)
        size: dict[str, float] = defaultdict(float)
        for variable, before in self._before:
            after = np.asarray(keras.ops.convert_to_numpy(variable.value))
            layer = _layer_of(variable, self.model.name)
            moved[layer] += float(np.sum(np.square(after - before, dtype=np.float64)))
            size[layer] += float(np.sum(np.square(before, dtype=np.float64)))
        with self._writer.as_default(step=step):
            self._summary.scalar("learning_rate", learning_rate_at(self._optimizer, step))
            if self._gradient_norm is not None:
                self._summary.scalar("gradient_norm", self._gradient_norm)
            for layer in moved:
                ratio = np.sqrt(moved[layer]) / np.sqrt(size[layer]) if size[layer] else np.inf
                self._summary.scalar(f"update_ratio/{layer}", float(ratio))

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None

    def get_config(self) -> dict[str, Any]:
        return {
            "log_dir": self.log_dir,
            "every_n_steps": self.every_n_steps,
            "subdir": self.subdir,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "TrainingDiagnostics":
        return cls(**config)
