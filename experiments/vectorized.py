"""Many compatible runs trained side by side as one compiled program (JAX): ``train_runs``.

Runs that share a problem, a model architecture, an optimiser class with its arguments other than
the learning rate, the epochs and the batch size differ only in their seed (the initial weights),
their learning rate and their data order. ``train_runs`` trains them together: the runs' weights,
optimiser state (the learning rate is one of the optimiser's variables, so it is per run) and
metric state are stacked along a leading run axis, and one compiled program trains an epoch of
every run: ``jax.lax.map`` over the runs of a ``jax.lax.scan`` over the run's steps, each step
Keras's own stateless train step (``model.train_step``: ``stateless_call``, the compiled loss and
metrics, then ``optimizer.stateless_apply`` of the lab's optimiser classes). ``lax.map``, not
``vmap``: a run's steps are then exactly those of a single run (vmap batches the matrix products,
whose float32 sums differ in the last bits and drift apart over the steps), and a step touches
only its own run's state. Validation, the untrained loss and the metrics' results are programs of
their own, shared by every group of one architecture, loss and metrics (the optimisers of a
comparison), so each is compiled once per process. Each run gets exactly the rows
``experiments.training.train_run`` gives it::

    epoch  loss  <metrics>  val_loss  val_<metrics>  learning_rate  seconds  status

- the same initial weights (each run's own model, built and seeded by the caller), the same
  batches: epoch ``e`` of a run visits the examples in the order ``epoch_permutation(n, seed, e)``
  in batches of ``batch_size``, the last partial batch included, as ``fit`` does;
- the same loss and metrics: a ``fit`` epoch's running means (Keras's ``Mean``, weighted by the
  batch size), validated at every epoch's end on the validation data at batch
  ``max(batch_size, 1024)``, as ``train_run``'s ``evaluate`` does;
- learning-rate schedules: a run whose optimiser has a ``LearningRateSchedule`` gets the
  schedule's value at its step written into its learning-rate variable before each update, so
  runs with different schedules (a different base rate, say) still train together;
- the same divergence rule: the running loss is checked every ``steps_per_execution`` steps and
  at the epoch's end (where ``fit`` calls ``on_train_batch_end``) against NaN/inf and
  ``divergence_factor`` times the untrained model's loss on the first 1024 examples. A run that
  blows up is frozen there (its state no longer changes), validated on its weights at that step,
  marked ``diverged`` at that epoch and gives no further rows; its neighbours are untouched, since
  the runs of a program never mix;
- ``seconds``: the program's cumulative wall time divided by the number of runs in it (each run's
  share of the machine).

**Checkpoints.** Each run checkpoints into its own folder in ``train_run``'s format
(``experiments.training.save_checkpoint``: the model's weights then the optimiser's variables,
and the rows, behind ``state.json``), at epoch boundaries and at most every ``checkpoint_seconds``
(moons' epochs take well under a millisecond; writing a dozen checkpoints after each would cost
more than the training), and when a run diverges or the group ends. Calling again with the same
folders continues every run after its last saved epoch and gives the rows of an uninterrupted run;
a run checkpointed here can also be resumed by ``train_run`` and the other way round.

At the end every model holds its run's final weights and is compiled with its own optimiser, which
holds the run's final state, as after ``train_run``.

``optimizer_signature`` says whether an optimiser can be trained here and with which others
(``None``: not here); ``IncompatibleRuns`` is raised, before anything is trained, for runs that
cannot share a program. JAX backend only.
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

from experiments import training
from experiments.training import (
    DEFAULT_DIVERGENCE_FACTOR,
    DEFAULT_STEPS_PER_EXECUTION,
    STATUS_DIVERGED,
    STATUS_OK,
    epoch_permutation,
)
from lab import internals

DEFAULT_CHECKPOINT_SECONDS = 2.0
# the grid vectorises a group only when its epochs have at most this many steps: the longest
# measured, MNIST's 1875 steps at batch 32, where a group of 3 runs is 1.1x faster than the fit
# path (fewer compilations, the steps themselves as fast; benchmarks.vectorized)
MAX_STEPS_PER_EPOCH = 2048
DEFAULT_MEMORY_BYTES = 2 * 1024**3
# how a program steps its runs: "map", each run's steps in turn (bit-exact to a single run), or
# "vmap", the runs batched into each operation (the parallel form)
MODES = ("map", "vmap")
# the command line's --vectorize: a mode, "auto" (the grid's rule) or "off" (every run alone)
VECTORIZE_CHOICES = ("auto", *MODES, "off")
# float arguments that are not hyperparameters of the update (or that Keras reads outside the
# compiled step): never per-run values
_NOT_PER_RUN = frozenset({"ema_momentum", "clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor"})
_VALIDATION_BATCH = 1024
_FLOAT_BYTES = 4


class IncompatibleRuns(ValueError):
    """The runs cannot share one program (another architecture, optimiser, backend...)."""


def per_run_names(config: dict[str, Any], names: Sequence[str]) -> list[str]:
    """Those of ``names`` that a program can hold per run, as optimiser state: the float
    hyperparameters of the optimiser's ``config`` (momentum, rho, the betas, epsilon, weight
    decay, ...), not its step counts, switches and clipping thresholds, nor the learning rate
    (always per run)."""
    return sorted(name for name in set(names)
                  if isinstance(config.get(name), float) and name not in _NOT_PER_RUN and name != "learning_rate")


def optimizer_signature(optimizer: keras.optimizers.Optimizer, per_run: Sequence[str] = ()) -> str | None:
    """What must be equal for two optimisers to train in one program: the class and every
    constructor argument but the learning rate and the hyperparameters ``per_run`` names (of
    which only the sign must agree: a momentum of 0 builds no slots); ``None`` when this one
    cannot train here (not one of the lab's classes, a callable learning rate that is not a
    schedule, weight averaging)."""
    cls = type(optimizer)
    if not cls.__module__.startswith("lab.optimizers") or optimizer.use_ema:
        return None
    rate = internals.learning_rate_or_schedule(optimizer)
    if callable(rate) and not isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return None
    with internals.tensorflow_hidden():
        config = dict(optimizer.get_config())
    config.pop("learning_rate", None)
    config.pop("name", None)
    for name in per_run_names(config, per_run):
        config[name] = f"per run, sign {int(np.sign(config[name]))}"
    return f"{cls.__module__}.{cls.__qualname__}:" + json.dumps(config, sort_keys=True, default=repr)


def builds_seeded_models(build: Callable[[int], keras.Model], seed: int) -> bool:
    """Whether ``build(seed)`` gives the same variables whatever Keras's global random state is
    (every ``lab.models`` builder does): only then are a run's initial weights its own. Asked once
    per builder and seed in a process (a grid asks for every group of a comparison)."""
    key = (build, int(seed))
    try:
        return _SEEDED_BUILDERS[key]
    except (KeyError, TypeError):  # not asked yet, or an unhashable builder (asked every time)
        pass
    values = []
    for global_seed in (1, 2):
        if keras.backend.backend() == "jax":
            internals.set_global_seed_without_tensorflow(global_seed)
        else:
            keras.utils.set_random_seed(global_seed)
        model = build(seed)
        values.append([keras.ops.convert_to_numpy(v) for v in model.weights])
    seeded = len(values[0]) == len(values[1]) and all(np.array_equal(a, b) for a, b in zip(*values))
    try:
        _SEEDED_BUILDERS[key] = seeded
    except TypeError:
        pass
    return seeded


_SEEDED_BUILDERS: dict[tuple, bool] = {}


def _all_layers(layer) -> list:
    inner = getattr(layer, "layers", None) or []  # a model holds layers, which may be models
    return [layer, *(found for child in inner for found in _all_layers(child))]


def gains_from_a_group(build: Callable[[int], keras.Model], seed: int) -> bool:
    """Whether runs of ``build(seed)``'s model train faster as a vectorised group here than one by
    one on the fit path: not a model with convolutions on a CPU, whose convolutions run several
    times slower inside a group's program than on the fit path (measured on JAX 0.10.2, 2 cores:
    ``photo_tiles_resnet`` 147 s against 17 s for 2 epochs of one run, the quick ``mnist_cnn`` 21 s
    against 12 s). Asked once per builder in a process."""
    import jax

    if jax.default_backend() != "cpu":
        return True
    try:
        return _GAINS[build]
    except (KeyError, TypeError):  # not asked yet, or an unhashable builder (asked every time)
        pass
    gains = not any(isinstance(layer, CONVOLUTIONS) for layer in _all_layers(build(seed)))
    try:
        _GAINS[build] = gains
    except TypeError:
        pass
    return gains


CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv1D,
                keras.layers.DepthwiseConv2D, keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_GAINS: dict = {}


def group_structure(model: keras.Model) -> str:
    """The architecture: the model's config without names, initialisers and seeds. A functional
    model's config wires its layers by their names (``inbound_nodes``, ``keras_history``), which
    Keras numbers per process (``dense``, ``dense_4``, ...): each is replaced by its layer's
    position, so two builds of one architecture compare equal."""
    positions = {layer.name: f"layer {index}" for index, layer in enumerate(model.layers)}

    def strip(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: strip(v) for k, v in item.items() if k not in ("name", "seed") and not k.endswith("initializer")}
        if isinstance(item, (list, tuple)):
            return [strip(v) for v in item]
        if isinstance(item, str):
            return positions.get(item, item)
        return item

    try:
        with internals.tensorflow_hidden():
            config = strip(model.get_config())
    except NotImplementedError:
        config = type(model).__qualname__
    shapes = [(tuple(v.shape), str(v.dtype), v.trainable) for v in model.weights]
    return json.dumps([config, shapes], sort_keys=True, default=repr)


def run_bytes(model: keras.Model, optimizer_slots: int, batch_size: int) -> int:
    """A generous estimate of one run's memory in the program: its variables (weights, optimiser
    slots, gradients and the copies a step makes) and its activations (training batch, forward and
    backward; validation batch)."""
    parameters = sum(math.prod(v.shape) for v in model.weights)
    activations = 0
    for layer in model.layers:
        try:
            activations += math.prod(d for d in layer.output.shape[1:] if d is not None)
        except (AttributeError, ValueError, TypeError):
            pass
    activations += math.prod(d for d in model.inputs[0].shape[1:] if d is not None) if model.inputs else 0
    steps = 3 * batch_size + max(batch_size, _VALIDATION_BATCH)
    return _FLOAT_BYTES * (parameters * (4 + optimizer_slots) + activations * steps)


def train_runs(
    models: Sequence[keras.Model],
    optimizers: Sequence[keras.optimizers.Optimizer],
    data,
    *,
    epochs: int,
    batch_size: int,
    seeds: Sequence[int],
    loss: Any = "sparse_categorical_crossentropy",
    metrics: Sequence[str] = ("accuracy",),
    validate: bool = True,
    checkpoint_dirs: Sequence[str | Path | None] | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    steps_per_execution: int = DEFAULT_STEPS_PER_EXECUTION,
    divergence_factor: float | None = DEFAULT_DIVERGENCE_FACTOR,
    checkpoint_seconds: float | None = None,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    per_run: Sequence[str] = (),
    mode: str = "map",
    should_stop: Callable[[int, dict], bool] | None = None,
) -> list[pd.DataFrame]:
    """Train run ``k`` (``models[k]`` with ``optimizers[k]``, data order ``seeds[k]``) for every
    ``k`` side by side; one ``train_run`` frame per run, in order.

    Args:
        models: built, uncompiled, seeded models of one architecture, one per run.
        optimizers: fresh optimisers of one ``optimizer_signature``, one per run.
        data, epochs, batch_size, loss, metrics, validate, steps_per_execution,
            divergence_factor: as for ``train_run`` (the same for every run).
        seeds: each run's seed (its data order).
        checkpoint_dirs: each run's checkpoint folder (or ``None``); see the module docstring.
        on_epoch: called with ``(k, row)`` for each new row of run ``k``.
        checkpoint_seconds: save checkpoints at an epoch boundary when this many seconds have
            passed since the last save, >= 0 (0: every epoch; ``None``: ``DEFAULT_CHECKPOINT_SECONDS``).
        memory_bytes: runs are trained in chunks whose estimated memory (``run_bytes``) stays
            under this, >= 1 (at least one run per chunk).
        per_run: float hyperparameters (``per_run_names``) in which the runs' optimisers may
            differ: each becomes a float32 variable of the program's optimiser, one value per
            run, in every run (so a run's numbers do not depend on its neighbours). Not
            bit-exact to a run alone: the program computes ``1 - beta`` from the float32
            ``beta``, where the optimiser alone computes it from the Python float and rounds the
            result (see the README's "Vectorised trials").
        mode: ``"map"`` (each run's steps exactly a single run's) or ``"vmap"`` (the runs batched
            into each matrix product: the parallel form; float32 sums in another order, so
            within a tolerance of a single run, not bit-exact).
        should_stop: called with ``(k, row)`` after each new row of run ``k``; ``True`` stops that
            run there (pruning): its state is kept as it is after that epoch and it gives no further
            rows, as ``model.stop_training`` after the epoch on the ``fit`` path.

    Raises:
        IncompatibleRuns: before any training, when the runs cannot share a program.
    """
    count = len(models)
    if count == 0:
        return []
    if not (len(optimizers) == len(seeds) == count):
        raise ValueError(f"models, optimizers and seeds must have one entry per run, got {count}, "
                         f"{len(optimizers)} and {len(seeds)}")
    if int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if int(steps_per_execution) < 1:
        raise ValueError(f"steps_per_execution must be >= 1, got {steps_per_execution}")
    if checkpoint_seconds is None:
        checkpoint_seconds = DEFAULT_CHECKPOINT_SECONDS
    if not checkpoint_seconds >= 0:
        raise ValueError(f"checkpoint_seconds must be >= 0, got {checkpoint_seconds}")
    if int(memory_bytes) < 1:
        raise ValueError(f"memory_bytes must be >= 1, got {memory_bytes}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if keras.backend.backend() != "jax":
        raise IncompatibleRuns(f"vectorised training needs the JAX backend, not {keras.backend.backend()}")
    per_run = tuple(per_run)
    signatures = {optimizer_signature(optimizer, per_run) for optimizer in optimizers}
    if None in signatures or len(signatures) > 1:
        held = ", ".join(("learning_rate", *per_run))
        raise IncompatibleRuns(f"the optimisers differ in more than {held}, or one cannot be vectorised")
    if len({group_structure(model) for model in models}) > 1:
        raise IncompatibleRuns("the models have different architectures")
    folders = [Path(f) if f is not None else None for f in (checkpoint_dirs or [None] * count)]
    if len(folders) != count:
        raise ValueError(f"checkpoint_dirs must have one entry per run, got {len(folders)} for {count} runs")

    runs = [_Run(k, model, optimizer, int(seed), folder, loss, metrics)
            for k, (model, optimizer, seed, folder) in enumerate(zip(models, optimizers, seeds, folders))]
    arrays = _Arrays(data, validate)
    settings = dict(epochs=int(epochs), batch_size=int(batch_size), steps_per_execution=int(steps_per_execution),
                    divergence_factor=divergence_factor, checkpoint_seconds=float(checkpoint_seconds),
                    on_epoch=on_epoch, mode=mode, should_stop=should_stop, per_run=per_run)
    pending = [run for run in runs if not run.finished(int(epochs))]
    # runs resumed at different epochs (a kill while a group was saving) train in separate programs
    for start in sorted({run.start_epoch for run in pending}):
        together = [run for run in pending if run.start_epoch == start]
        per_chunk = max(1, int(memory_bytes) // max(1, together[0].bytes(int(batch_size))))
        chunks = math.ceil(len(together) / per_chunk)
        size = math.ceil(len(together) / chunks)
        for first in range(0, len(together), size):
            _Program(together[first:first + size], arrays, loss, metrics, **settings).train()
    for run in runs:
        run.finish()
    return [training.rows_frame(run.rows) for run in runs]


class _Arrays:
    """The training and validation arrays, on the device once."""

    def __init__(self, data, validate: bool) -> None:
        import jax.numpy as jnp

        self.x_numpy, self.y_numpy = np.asarray(data.x_train), np.asarray(data.y_train)
        self.x, self.y = jnp.asarray(self.x_numpy), jnp.asarray(self.y_numpy)
        self.count = len(self.x_numpy)
        self.validate = validate
        if validate:
            x_val, y_val = (data.x_test, data.y_test) if data.x_val is None else (data.x_val, data.y_val)
            self.x_val, self.y_val = jnp.asarray(np.asarray(x_val)), jnp.asarray(np.asarray(y_val))


class _Run:
    """One run: its own model and optimiser, its rows, its checkpoint."""

    def __init__(self, index, model, optimizer, seed, folder, loss, metrics) -> None:
        self.index, self.model, self.optimizer, self.seed, self.folder = index, model, optimizer, seed, folder
        rate = internals.learning_rate_or_schedule(optimizer)
        self.schedule = rate if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule) else None
        model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics))
        optimizer.build(model.trainable_variables)
        self.state = training.load_checkpoint_state(folder) if folder is not None else None
        self.rows: list[dict] = list(self.state["rows"]) if self.state else []
        if self.state and self.state.get("weights"):
            training.restore_checkpoint(model, folder / self.state["weights"])
        self.initial_loss = self.state.get("initial_loss") if self.state else None
        self.diverged = bool(self.rows) and self.rows[-1]["status"] == STATUS_DIVERGED
        self.stopped = False  # by should_stop

    @property
    def start_epoch(self) -> int:
        return len(self.rows)

    @property
    def prior_seconds(self) -> float:
        return float(self.rows[-1]["seconds"]) if self.rows else 0.0

    def finished(self, epochs: int) -> bool:
        return (bool(self.state and self.state.get("finished")) or self.diverged or self.stopped
                or len(self.rows) >= epochs)

    def bytes(self, batch_size: int) -> int:
        slots = max(0, len(self.optimizer.variables) - 2) // max(1, len(self.model.trainable_variables))
        return run_bytes(self.model, slots, batch_size)

    def optimizer_values(self, learning_rate_index: int) -> list:
        """The optimiser's variables in the program's layout (a schedule's run has no rate variable)."""
        values = [v.value for v in self.optimizer.variables]
        if self.schedule is not None:
            values.insert(learning_rate_index, np.float32(0.0))
        return values

    def take(self, trainable, non_trainable, optimizer_values, learning_rate_index: int) -> None:
        """Put the program's values of this run into its model and optimiser."""
        for variable, value in zip(self.model.trainable_variables, trainable):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, non_trainable):
            variable.assign(value)
        optimizer_values = list(optimizer_values)
        if self.schedule is not None:
            del optimizer_values[learning_rate_index]
        for variable, value in zip(self.optimizer.variables, optimizer_values):
            variable.assign(value)

    def save(self) -> None:
        if self.folder is not None:
            training.save_checkpoint(self.folder, self.model, self.rows, finished=self.diverged or self.stopped,
                                     initial_loss=self.initial_loss)

    def finish(self) -> None:
        if self.folder is not None:
            training.mark_finished(self.folder, self.rows)


def _float32_limit(limit: float) -> np.float32:
    """The largest float32 <= ``limit``: for a float32 loss, ``loss > it`` iff ``loss > limit``,
    the comparison ``train_run`` makes in float64."""
    bound = np.float32(limit)
    if math.isfinite(limit) and float(bound) > limit:
        bound = np.nextafter(bound, np.float32(-np.inf))
    return bound


def _blown_up(loss: float, limit: float) -> bool:
    return not math.isfinite(float(loss)) or float(loss) > limit


class _Evaluation:
    """The programs that do not depend on the optimiser: the runs' losses and metrics on some data
    (validation, the untrained loss) and the metrics' results. Groups of one architecture, loss and
    metrics (the optimisers of a comparison, say) share them, so each is compiled once."""

    def __init__(self, template: keras.Model, mode: str = "map") -> None:
        import jax
        import jax.numpy as jnp

        self.template = template  # kept: the functions below close over its loss and metrics
        metrics_initial = [v.value for v in template.metrics_variables]
        self.metrics_initial = metrics_initial

        def fresh_metrics(lanes):
            return [jnp.broadcast_to(v, (lanes, *jnp.shape(v))) for v in metrics_initial]

        def test_step(state, x, y):
            if mode == "vmap":
                return jax.vmap(lambda lane: template.test_step(lane, (x, y)))(state)
            return jax.lax.map(lambda lane: template.test_step(lane, (x, y)), state)

        def evaluate(trainable, non_trainable, x, y, batch):
            metric_values = fresh_metrics(trainable[0].shape[0])
            full, rest = divmod(x.shape[0], batch)
            if full == 1 and not rest:
                _, (_, _, metric_values) = test_step((trainable, non_trainable, metric_values), x, y)
            elif full:
                def body(metric_values, i):
                    xb = jax.lax.dynamic_slice_in_dim(x, i * batch, batch)
                    yb = jax.lax.dynamic_slice_in_dim(y, i * batch, batch)
                    _, (_, _, metric_values) = test_step((trainable, non_trainable, metric_values), xb, yb)
                    return metric_values, None
                metric_values, _ = jax.lax.scan(body, metric_values, jnp.arange(full))
            if rest:
                _, (_, _, metric_values) = test_step(
                    (trainable, non_trainable, metric_values), x[full * batch:], y[full * batch:])
            return metric_values

        def results(metric_values):
            mapping = list(zip(template.metrics_variables, metric_values))
            with keras.StatelessScope(state_mapping=mapping):
                return template.get_metrics_result()

        self.fresh_metrics = fresh_metrics
        self.evaluate = jax.jit(evaluate, static_argnames="batch")
        # a program of its own: fit and evaluate report the results computed from the metrics'
        # variables after the step, which the step's own logs, fused with the update, may round
        # differently in the last bit
        self.results = jax.jit(jax.vmap(results))


_EVALUATIONS: dict[tuple, _Evaluation] = {}
_EVALUATIONS_KEPT = 4


def _shared_evaluation(model: keras.Model, template: keras.Model, loss, metrics, mode: str) -> _Evaluation:
    """The ``_Evaluation`` of ``model``'s architecture with ``loss`` and ``metrics``, made from
    ``template`` the first time (the few most recent ones are kept)."""
    try:
        key = (group_structure(model), loss, tuple(metrics), mode)
        hash(key)
    except TypeError:  # an unhashable loss or metric: not shared
        return _Evaluation(template, mode)
    if key not in _EVALUATIONS:
        while len(_EVALUATIONS) >= _EVALUATIONS_KEPT:
            del _EVALUATIONS[next(iter(_EVALUATIONS))]
        _EVALUATIONS[key] = _Evaluation(template, mode)
    return _EVALUATIONS[key]


class _Program:
    """Runs of one start epoch, trained as one compiled program."""

    def __init__(self, runs, arrays: _Arrays, loss, metrics, *, epochs, batch_size, steps_per_execution,
                 divergence_factor, checkpoint_seconds, on_epoch, mode, should_stop, per_run) -> None:
        self.runs, self.arrays, self.mode, self.should_stop = runs, arrays, mode, should_stop
        self.epochs, self.batch_size, self.steps_per_execution = epochs, batch_size, steps_per_execution
        self.divergence_factor, self.checkpoint_seconds, self.on_epoch = divergence_factor, checkpoint_seconds, on_epoch
        first = runs[0]
        # the template: run 0's model compiled with an optimiser of the group's class whose rate is
        # a variable, so that every run's rate can be one lane of it
        with internals.tensorflow_hidden():
            config = {**first.optimizer.get_config(), "learning_rate": 0.0}
            self.template_optimizer = type(first.optimizer).from_config(config)
        try:
            with internals.tensorflow_hidden():
                template = keras.models.clone_model(first.model)
        except Exception as error:  # a subclassed model without from_config, say
            raise IncompatibleRuns(f"the model cannot be cloned as the group's template: {error}") from None
        template.compile(optimizer=self.template_optimizer, loss=loss, metrics=list(metrics), jit_compile=True)
        internals.symbolic_build(template, (arrays.x_numpy[:batch_size], arrays.y_numpy[:batch_size]))
        self.template = template
        template_rate = internals.learning_rate_or_schedule(self.template_optimizer)
        self.rate_index = internals.position_of(self.template_optimizer, template_rate)
        self.iterations_index = internals.position_of(self.template_optimizer, self.template_optimizer.iterations)
        self._hold_hyperparameters_per_run(per_run)
        expected = len(self.template_optimizer.variables)
        for run in runs:
            if len(self._program_values(run)) != expected:
                raise IncompatibleRuns("an optimiser's variables do not match the group's")
        self.evaluation = _shared_evaluation(first.model, template, loss, metrics, mode)
        self._build_functions()

    # --- hyperparameters per run -------------------------------------------------------------------

    def _hold_hyperparameters_per_run(self, names: Sequence[str]) -> None:
        """Each float hyperparameter ``names`` lists becomes a float32 variable of the template's
        optimiser (appended to its variables), one lane per run, as the learning rate is: optax's
        ``inject_hyperparams``. One that the update reads as a Python number (in an ``if``, say)
        cannot be traced as a value: ``IncompatibleRuns`` then."""
        import jax

        with internals.tensorflow_hidden():
            configs = [run.optimizer.get_config() for run in self.runs]
        self.per_run = per_run_names(configs[0], names)
        self.per_run_values = [[np.float32(config[name]) for name in self.per_run] for config in configs]
        optimizer = self.template_optimizer
        for name, value in zip(self.per_run, self.per_run_values[0]):
            setattr(optimizer, name, keras.Variable(value, dtype="float32", trainable=False, name=name))
        if not self.per_run:
            return
        values = [v.value for v in optimizer.variables]
        trainable = [v.value for v in self.template.trainable_variables]
        try:
            jax.eval_shape(lambda o, g, t: optimizer.stateless_apply(o, g, t), values, trainable, trainable)
        except Exception as error:  # a tracer in a Python conditional, math.sqrt of one, ...
            raise IncompatibleRuns(f"{type(optimizer).__name__} cannot hold {', '.join(self.per_run)} per run "
                                   f"({type(error).__name__}): its runs train alone") from None

    def _program_values(self, run: _Run) -> list:
        """A run's optimiser variables in the program's layout: its own (a schedule's run has no rate
        variable: a placeholder is inserted), then its per-run hyperparameters."""
        return run.optimizer_values(self.rate_index) + list(self.per_run_values[self.runs.index(run)])

    def _run_values(self, program_values: list) -> list:
        """The inverse: the run's own optimiser variables from its lane of the program's."""
        return list(program_values[:len(program_values) - len(self.per_run)])

    # --- the compiled functions ------------------------------------------------------------------

    def _build_functions(self) -> None:
        import jax
        import jax.numpy as jnp

        template = self.template
        schedules = [run.schedule for run in self.runs]
        rate_index, iterations_index, mode = self.rate_index, self.iterations_index, self.mode
        fresh_metrics = self.evaluation.fresh_metrics
        # the distinct schedules, and which one each run follows (-1: none, its own rate)
        distinct = list({id(s): s for s in schedules if s is not None}.values())
        branch = np.array([-1 if s is None else next(i for i, d in enumerate(distinct) if d is s)
                           for s in schedules], dtype=np.int32)

        def with_rate(optimizer_values, lane):
            # a schedule's value at the run's step, written into the run's rate variable
            if not distinct:
                return optimizer_values
            values = list(optimizer_values)
            iterations, rate = values[iterations_index], values[rate_index]
            branches = [lambda: rate] + [lambda s=s: jnp.asarray(s(iterations), rate.dtype) for s in distinct]
            values[rate_index] = jax.lax.switch(jnp.asarray(branch)[lane] + 1, branches)
            return values

        def rates_used(optimizer_values):
            # the rate of each run's most recent step, as train_run's learning_rate column
            iterations, rates = optimizer_values[iterations_index], optimizer_values[rate_index]
            return jnp.stack([
                rates[k] if schedule is None
                else jnp.asarray(schedule(jnp.maximum(iterations[k] - 1, 0)), rates.dtype)
                for k, schedule in enumerate(schedules)
            ])

        def epoch(state, active, limits, full_indices, checks, rest_indices, x, y, freeze):
            # jax.lax.map over the runs, each run's whole epoch in turn: a run's steps are those of
            # a single run (vmap would batch the matrix products, whose float32 sums then differ in
            # the last bits and drift apart over the steps), and a step touches only its run's state
            # (no slicing of every run's stacked state at every step)
            def step(carry, indices, check, lane, limit):
                state, active = carry
                trainable, non_trainable, optimizer_values, metric_values = state
                logs, stepped = template.train_step(
                    (trainable, non_trainable, with_rate(optimizer_values, lane), metric_values),
                    (jnp.take(x, indices, axis=0), jnp.take(y, indices, axis=0)))
                # freezing costs a copy of the run's state per step: only the epoch in which a run
                # blows up is run again with it (see train)
                state = jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), stepped, state) if freeze \
                    else stepped
                blown = ~jnp.isfinite(logs["loss"]) | (logs["loss"] > limit)
                return state, active & ~(check & blown)

            def train_epoch(lane, state, active, limit, full, rest):
                carry = (state, active)
                if full is not None and full.shape[0] == 1:  # full batch: no loop
                    carry = step(carry, full[0], checks[0], lane, limit)
                elif full is not None:
                    def body(carry, inputs):
                        return step(carry, *inputs, lane, limit), None
                    carry, _ = jax.lax.scan(body, carry, (full, checks))
                if rest is not None:
                    carry = step(carry, rest, jnp.asarray(True), lane, limit)
                return carry

            def run_epoch(inputs):
                if mode == "vmap":  # a condition under vmap computes both branches: nothing to skip
                    return train_epoch(*inputs)
                # a run that diverged or was stopped in an earlier epoch is skipped, not trained on
                # unseen: its rows and checkpoint ended where it stopped, and the group's time is
                # then the running members' alone (a tuning budget's diverged trials cost nothing)
                _, state, active = inputs[:3]
                return jax.lax.cond(active, lambda: train_epoch(*inputs), lambda: (state, active))

            trainable, non_trainable, optimizer_values, _ = state
            lanes = active.shape[0]
            inputs = (jnp.arange(lanes), (trainable, non_trainable, optimizer_values, fresh_metrics(lanes)), active,
                      limits, full_indices, rest_indices)
            state, active = jax.vmap(run_epoch)(inputs) if mode == "vmap" else jax.lax.map(run_epoch, inputs)
            return state, active, rates_used(state[2])

        self.epoch_function = jax.jit(epoch, static_argnames="freeze")

    # --- the loop --------------------------------------------------------------------------------

    def _stacked_state(self):
        import jax.numpy as jnp

        def stack(per_run):
            # stacked on the host and put on the device once: jnp.stack would compile a program for
            # every shape of variable
            return [jnp.asarray(np.stack([np.asarray(values[j]) for values in per_run]))
                    for j in range(len(per_run[0]))]

        runs = self.runs
        trainable = stack([[v.value for v in run.model.trainable_variables] for run in runs])
        non_trainable = (stack([[v.value for v in run.model.non_trainable_variables] for run in runs])
                         if runs[0].model.non_trainable_variables else [])
        optimizer_values = stack([self._program_values(run) for run in runs])
        return (trainable, non_trainable, optimizer_values, self.evaluation.fresh_metrics(len(runs)))

    def train(self) -> None:
        import jax

        runs, arrays, evaluation = self.runs, self.arrays, self.evaluation
        start_time = time.perf_counter()
        prior_seconds = [run.prior_seconds for run in runs]
        state = self._stacked_state()
        missing = [k for k, run in enumerate(runs) if run.initial_loss is None]
        if missing:
            count = min(arrays.count, training.INITIAL_LOSS_EXAMPLES)
            losses = np.asarray(evaluation.results(evaluation.evaluate(
                state[0], state[1], arrays.x[:count], arrays.y[:count], batch=count))["loss"])
            for k in missing:
                runs[k].initial_loss = float(losses[k])
        factor = self.divergence_factor
        self.loss_limits = [math.inf if factor is None else float(factor) * run.initial_loss for run in runs]
        limits = np.array([_float32_limit(limit) for limit in self.loss_limits], dtype=np.float32)
        active = np.ones(len(runs), dtype=bool)
        full, rest = divmod(arrays.count, self.batch_size)
        steps = full + (1 if rest else 0)
        # fit calls on_train_batch_end, where train_run checks the loss, after every
        # steps_per_execution steps and after the epoch's last step
        checks = np.array([(j + 1) % self.steps_per_execution == 0 or j == steps - 1 for j in range(full)])
        validation_batch = max(self.batch_size, _VALIDATION_BATCH)
        last_save = time.perf_counter()
        for epoch in range(runs[0].start_epoch, self.epochs):
            order = np.stack([epoch_permutation(arrays.count, run.seed, epoch) for run in runs]).astype(np.int32)
            inputs = (state, active, limits,
                      order[:, :full * self.batch_size].reshape(len(runs), full, self.batch_size) if full else None,
                      checks if full else None, order[:, full * self.batch_size:] if rest else None,
                      arrays.x, arrays.y)
            outputs = self.epoch_function(*inputs, freeze=False)
            if (active & ~np.asarray(jax.device_get(outputs[1]), dtype=bool)).any():
                # a run blew up in this epoch: again, with every run frozen where it stopped
                outputs = self.epoch_function(*inputs, freeze=True)
            state = outputs[0]
            logs = jax.device_get(evaluation.results(state[3]))
            validation = None
            if arrays.validate:
                validation = jax.device_get(evaluation.results(evaluation.evaluate(
                    state[0], state[1], arrays.x_val, arrays.y_val, batch=validation_batch)))
            still, rates = jax.device_get((outputs[1], outputs[2]))
            # train_run's check of the epoch's loss, which fit reports from the metric itself
            still = np.asarray(still, dtype=bool) & ~np.array([_blown_up(value, limit) for value, limit in
                                                               zip(np.asarray(logs["loss"]), self.loss_limits)])
            share = (time.perf_counter() - start_time) / len(runs)
            for k, run in enumerate(runs):
                if not active[k]:
                    continue
                row: dict[str, Any] = {"epoch": epoch + 1}
                row.update({name: float(np.asarray(value[k])) for name, value in logs.items()})
                if validation is not None:
                    row.update({f"val_{name}": float(np.asarray(value[k])) for name, value in validation.items()})
                # the rate is a float32 variable: keep the digits it holds, as train_run does
                row["learning_rate"] = float(f"{float(rates[k]):.7g}")
                row["seconds"] = prior_seconds[k] + share
                run.diverged = not still[k]
                row["status"] = STATUS_DIVERGED if run.diverged else STATUS_OK
                run.rows.append(row)
                if self.on_epoch is not None:
                    self.on_epoch(run.index, dict(row))
                if still[k] and self.should_stop is not None and self.should_stop(run.index, dict(row)):
                    run.stopped, still[k] = True, False
            trained, newly_stopped = active.copy(), bool((active & ~still).any())
            active = still.copy()
            last = epoch + 1 == self.epochs or not active.any()
            if last or newly_stopped or time.perf_counter() - last_save >= self.checkpoint_seconds:
                self._save(state, trained)
                last_save = time.perf_counter()
            if not active.any():
                break

    def _save(self, state, trained: np.ndarray) -> None:
        """Checkpoint the runs that trained in this epoch (a run that stopped earlier keeps the
        state it stopped with; under ``vmap`` its lane in ``state`` has gone on without it)."""
        import jax

        trainable, non_trainable, optimizer_values, _ = jax.device_get(state[:3]) + (None,)
        for k, run in enumerate(self.runs):
            if not trained[k]:
                continue
            run.take([v[k] for v in trainable], [v[k] for v in non_trainable],
                     self._run_values([v[k] for v in optimizer_values]), self.rate_index)
            run.save()


def write_tensorboard(rows: pd.DataFrame, log_dir: str | Path) -> None:
    """The epoch scalars ``keras.callbacks.TensorBoard`` writes, from a run's rows: ``train/``
    (``epoch_loss``, ``epoch_<metric>``, ``epoch_learning_rate``) and ``validation/``
    (``epoch_loss``, ``epoch_<metric>``), at steps 0, 1, ...; a previous log in ``log_dir`` is
    replaced. Without TensorFlow, ``lab.tensorboard_logs.TensorBoardUnavailableError``, as on
    the ``fit`` path."""
    import shutil

    from lab.tensorboard_logs import tensorflow_summary

    summary = tensorflow_summary("TensorBoard logging (keras.callbacks.TensorBoard)")

    log_dir = Path(log_dir)
    shutil.rmtree(log_dir, ignore_errors=True)
    skip = {"epoch", "seconds", "status"}
    train = [c for c in rows.columns if c not in skip and not c.startswith("val_")]
    validation = [c for c in rows.columns if c.startswith("val_")]
    for sub, columns, strip in (("train", train, 0), ("validation", validation, 4)):
        writer = summary.create_file_writer(str(log_dir / sub))
        with writer.as_default():
            for _, row in rows.iterrows():
                for column in columns:
                    summary.scalar(f"epoch_{column[strip:]}", float(row[column]), step=int(row["epoch"]) - 1)
        writer.close()
