"""The one runner of the lab's training studies: trials in, tidy rows out.

A study declares its trials as data and hands them to ``run_grid``::

    trials = [Trial(problem=resolve("moons"), optimizer="adam", seed=s, labels=(("problem", "moons"),
              ("optimizer", "adam"), ("seed", s))) for s in range(3)]
    grid = run_grid(trials, out, jobs=2)
    grid.results        # one row per trial and epoch: the labels, then train_run's columns

For every trial ``run_grid`` clears the Keras session, builds the optimiser (its spec, the
problem's learning rate unless the spec sets one, then the trial's own arguments) and the seeded
model, and trains it with ``experiments.training.train_run`` under the trial's protocol
(``lab.problems.protocol_view``), with TensorBoard logs in ``out/tensorboard/<folder>`` and a
checkpoint every epoch in ``out/checkpoints/<folder>``. After every trial the rows are written to
``out/results.csv`` in trial order, whatever order the trials finish in; a trial already there is
not trained again, so a killed grid resumed on the same folder gives the rows of an uninterrupted
one. Each problem's data are loaded once per process.

**Vectorised groups.** On the JAX backend, with ``jobs=1`` and no strategy, pending trials of short
epochs (``experiments.vectorized.MAX_STEPS_PER_EPOCH`` steps at most) that share a problem, a
model, a protocol, the epochs, the batch size, ``steps_per_execution`` and an optimiser class with
its arguments other than the learning rate, and have no callbacks and no averaged iterate, train
together as one compiled program (``experiments.vectorized``), with the rows, checkpoints and
TensorBoard runs (written from the rows) of one run per trial. ``vectorize`` (``--vectorize``)
chooses how: ``"map"`` (each run's steps exactly a lone run's, so the rows are bit for bit those of
``train_run``), ``"vmap"`` (the runs batched into each matrix product; within float32 rounding of a
lone run), ``"auto"`` (``auto_mode``: map for these groups, whose rows are promised bit for bit)
or ``"off"`` (every trial alone with ``train_run``). Everything else takes that path.
``train_group`` trains any list of compatible trials this way (the fair protocol's trials, which
differ in more than the learning rate, with ``per_run``).

**Averaged iterates.** A trial whose optimiser is evaluated at an averaged iterate of its own
(schedule-free AdamW and SGD: ``evaluation_weights``) is validated there, through
``lab.callbacks.AveragedWeights`` (on the ``fit`` path); ``after`` gets the model at its trained
weights, and scores it where it is evaluated inside
``lab.callbacks.averaged_weights.evaluated_weights_in(model)``.

``jobs > 1`` trains that many trials at a time in spawned processes (the numbers are those of
``jobs=1``: trials are independent and seeded). ``distributed`` (``lab.distribution``) trains each
trial on all devices instead; on a multi-worker cluster only the chief keeps the outputs.
``after(trial, model, data)`` may return further tables of a trained trial (by file name, e.g.
``{"boundaries.csv": frame}``, each named in ``extra_files``); they are labelled and stored the
same way.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.cli import UsageError, write_csv_atomic
from lab.problems import PROTOCOLS, Problem, protocol_view

RESULTS_FILE = "results.csv"
TENSORBOARD = "tensorboard"
CHECKPOINTS = "checkpoints"
DEFAULT_STEPS_PER_EXECUTION = 32

After = Callable[["Trial", Any, Any], Mapping[str, pd.DataFrame] | None]


@dataclass(frozen=True)
class Trial:
    """One training run of a study.

    Args:
        problem: what is trained (``lab.problems.Problem``).
        optimizer: an optimiser spec (``lab.registry.parse_spec``), e.g. ``"adam:beta_1=0.8"``.
        seed: seeds the model's weights and the data order.
        labels: ``(column, value)`` pairs that lead every row of the trial and identify it
            (unique within a grid).
        epochs, batch_size: ``None``: the problem's (a batch size of ``None`` there is full batch).
        protocol: ``"notebook"`` or ``"held_out"`` (see ``lab.problems``).
        optimizer_arguments: constructor arguments that win over the spec and the problem's rate
            (e.g. ``learning_rate=<a schedule>``).
        model: builds the model from the seed instead of ``problem.model``.
        callbacks: returns fresh Keras callbacks for the run.
        steps_per_execution, jit_compile: as for ``train_run``.
    """

    problem: Problem
    optimizer: str
    seed: int = 0
    labels: tuple[tuple[str, Any], ...] = ()
    epochs: int | None = None
    batch_size: int | None = None
    protocol: str = "notebook"
    optimizer_arguments: Mapping[str, Any] = field(default_factory=dict)
    model: Callable[[int], Any] | None = None
    callbacks: Callable[[], Sequence[Any]] | None = None
    steps_per_execution: int = DEFAULT_STEPS_PER_EXECUTION
    jit_compile: bool | str = "auto"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")

    @property
    def key(self) -> tuple[str, ...]:
        """What identifies the trial among the rows: its label values, as text."""
        return tuple(str(value) for _, value in self.labels)

    @property
    def folder(self) -> Path:
        """``<value>/<value>/...`` of its labels (numbers as ``<column><value>``, e.g. ``seed0``)."""
        parts = [value if isinstance(value, str) else f"{column}{value}" for column, value in self.labels]
        return Path(*(_safe(part) for part in parts)) if parts else Path("trial")

    @property
    def epochs_to_run(self) -> int:
        return self.epochs if self.epochs is not None else self.problem.epochs

    @property
    def description(self) -> str:
        return " ".join(f"{value}" if isinstance(value, str) else f"{column} {value}" for column, value in self.labels)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text)


def _optimizer_arguments(trial: Trial, parsed) -> dict[str, Any]:
    """Spec (``parsed``), then the problem's rate unless the spec sets one, then ``optimizer_arguments``."""
    arguments: dict[str, Any] = dict(parsed.arguments())
    if trial.problem.learning_rate is not None and "learning_rate" not in parsed.overrides:
        arguments["learning_rate"] = trial.problem.learning_rate
    arguments.update(trial.optimizer_arguments)
    return arguments


def chosen_learning_rate(trial: Trial):
    """The rate the trial chooses (``_optimizer_arguments``): with a problem's schedule shape,
    its peak; ``None`` where nothing sets one (the optimiser's own default)."""
    from lab.registry import parse_spec

    return _optimizer_arguments(trial, parse_spec(trial.optimizer)).get("learning_rate")


def run_steps(trial: Trial, data) -> int:
    """The steps the trial trains for on ``data`` (its protocol's view): epochs x batches."""
    examples = len(data.x_train)
    batch_size = trial.batch_size or trial.problem.batch_size or examples
    return trial.epochs_to_run * -(-examples // batch_size)


def build_optimizer(trial: Trial, steps: int | None = None):
    """The trial's optimiser: spec, then the problem's rate unless the spec sets one, then the
    trial's ``optimizer_arguments``.

    ``steps``: the run's number of steps (``run_steps``), given where the optimiser trains. Where
    the problem has a schedule shape, the rate so chosen is then the peak of the problem's
    schedule over those steps (``Problem.schedule``), unless the optimiser is schedule-free.
    Without ``steps`` (a range test, which sets the rate itself; a report) the rate stays as
    chosen."""
    from lab.registry import optimizer_class, parse_spec

    parsed = parse_spec(trial.optimizer)
    arguments = _optimizer_arguments(trial, parsed)
    rate = arguments.get("learning_rate")
    # schedule-free optimisers keep an averaged iterate (``evaluation_weights``): their rate stays constant
    schedule_free = hasattr(optimizer_class(parsed.name), "evaluation_weights")
    shaped = steps is not None and trial.problem.schedule is not None and isinstance(rate, (int, float))
    if shaped and not schedule_free:
        arguments["learning_rate"] = trial.problem.schedule(float(rate), steps)
    return parsed.build(**arguments)


class DataCache:
    """Each problem's split, loaded once per process (keyed by its data callable)."""

    def __init__(self) -> None:
        self._splits: dict[str, Any] = {}

    def __call__(self, problem: Problem):
        from lab.datasets import DatasetChecksumError, DatasetNotFoundError

        key = repr(problem.data)
        if key not in self._splits:
            try:
                self._splits[key] = problem.split()
            except (DatasetChecksumError, DatasetNotFoundError) as error:
                raise UsageError(f"cannot load the data of problem {problem.name!r}: {error}") from None
        return self._splits[key]


def train_trial(trial: Trial, split, out: Path, *, tensorboard: bool = True, on_epoch=None, after: After | None = None,
                distributed=None) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Train one trial (resuming its checkpoint if there is one): its labelled rows and extras."""
    import keras

    from experiments.training import train_run
    from lab.callbacks.averaged_weights import AveragedWeights, keeps_averaged_iterate
    from lab.distribution import make_strategy

    keras.backend.clear_session()
    distributed = distributed or make_strategy("none")
    data = protocol_view(split, trial.protocol)
    with distributed.scope():
        optimizer = build_optimizer(trial, run_steps(trial, data))
        model = (trial.model or trial.problem.model)(trial.seed)
        batch_size = trial.batch_size or trial.problem.batch_size or len(data.x_train)
        callbacks = list(trial.callbacks()) if trial.callbacks is not None else []
        if keeps_averaged_iterate(optimizer) and not any(isinstance(c, AveragedWeights) for c in callbacks):
            callbacks.append(AveragedWeights())  # validated where it is evaluated: its averaged iterate
        rows = train_run(
            model,
            optimizer,
            data,
            epochs=trial.epochs_to_run,
            batch_size=batch_size,
            seed=trial.seed,
            loss=trial.problem.loss,
            metrics=trial.problem.metrics,
            tensorboard_dir=Path(out, TENSORBOARD, trial.folder) if tensorboard else None,
            checkpoint_dir=Path(out, CHECKPOINTS, trial.folder),
            callbacks=callbacks,
            on_epoch=on_epoch,
            steps_per_execution=distributed.steps_per_execution(trial.steps_per_execution),
            jit_compile=trial.jit_compile,
        )
        # the trained model, also when train_run only reloaded a run that finished before a kill
        extras = dict(after(trial, model, data) or {}) if after is not None else {}
    return _labelled(rows, trial), {name: _labelled(frame, trial) for name, frame in extras.items()}


def _labelled(frame: pd.DataFrame, trial: Trial) -> pd.DataFrame:
    frame = frame.copy()
    for position, (column, value) in enumerate(trial.labels):
        frame.insert(position, column, value)
    return frame


_TAIL = ("learning_rate", "seconds", "status")


def ordered_columns(frame: pd.DataFrame, labels: Sequence[str]) -> list[str]:
    """Labels, epoch, loss, metrics, val_loss, val_metrics, learning_rate, seconds, status, rest."""
    known = [c for c in labels if c in frame]
    columns = [c for c in frame.columns if c not in known]
    if "epoch" not in columns:
        return known + columns
    metrics = sorted(c for c in columns if c not in ("epoch", "loss", "val_loss", *_TAIL) and not c.startswith("val_"))
    validation = sorted(c for c in columns if c.startswith("val_") and c != "val_loss")
    head = ["epoch"] + [c for c in ("loss",) if c in columns] + metrics
    head += [c for c in ("val_loss",) if c in columns] + validation + [c for c in _TAIL if c in columns]
    return known + head + [c for c in columns if c not in head]


class _Store:
    """``results.csv`` and the extras of ``out``, rewritten in trial order after every trial."""

    def __init__(self, out: Path, trials: Sequence[Trial], results_file: str, extra_files: Sequence[str]) -> None:
        self.out = out
        self.labels = list(dict.fromkeys(column for trial in trials for column, _ in trial.labels))
        self.order = {trial.key: index for index, trial in enumerate(trials)}
        if len(self.order) != len(trials):
            raise ValueError("two trials of the grid have the same labels")
        self.frames: dict[str, pd.DataFrame] = {}
        self.results_file = results_file
        for name in [results_file, *extra_files]:
            if (out / name).is_file():
                self.frames[name] = pd.read_csv(out / name)

    def done(self) -> set[tuple[str, ...]]:
        results = self.frames.get(self.results_file)
        if results is None or results.empty:
            return set()
        return set(self._keys(results))

    def _keys(self, frame: pd.DataFrame) -> list[tuple[str, ...]]:
        columns = [frame[c].astype(str) for c in self.labels]
        return list(zip(*columns)) if columns else [()] * len(frame)

    def add(self, trial: Trial, rows: pd.DataFrame, extras: Mapping[str, pd.DataFrame]) -> None:
        self.add_all([(trial, rows, extras)])

    def add_all(self, finished: Sequence[tuple[Trial, pd.DataFrame, Mapping[str, pd.DataFrame]]]) -> None:
        """The rows and extras of trials that finished together (a vectorised group), each file
        written once."""
        keys = {trial.key for trial, _, _ in finished}
        names = list(dict.fromkeys(name for _, _, extras in finished for name in extras))
        # extras first: the results file is what marks a trial done
        for name in [*names, self.results_file]:
            frames = [rows if name == self.results_file else extras[name]
                      for _, rows, extras in finished if name == self.results_file or name in extras]
            previous = self.frames.get(name)
            if previous is not None and not previous.empty:  # drop what a killed earlier attempt wrote
                previous = previous[[key not in keys for key in self._keys(previous)]]
                if not previous.empty:
                    frames.insert(0, previous)
            self.frames[name] = self._in_trial_order(pd.concat(frames, ignore_index=True))
            write_csv_atomic(self.out / name, self.frames[name])
        for trial, _, _ in finished:
            shutil.rmtree(self.out / CHECKPOINTS / trial.folder, ignore_errors=True)

    def _in_trial_order(self, frame: pd.DataFrame) -> pd.DataFrame:
        # a stable sort by trial: rows of one trial keep their order
        position = pd.Series([self.order.get(key, len(self.order)) for key in self._keys(frame)], index=frame.index)
        frame = frame.loc[position.sort_values(kind="stable").index].reset_index(drop=True)
        return frame[ordered_columns(frame, self.labels)]


@dataclass
class GridResult:
    """What a grid wrote: ``results`` (every trial's rows) and the extras by file name."""

    results: pd.DataFrame
    extras: dict[str, pd.DataFrame]


def run_grid(
    trials: Sequence[Trial],
    out: Path,
    *,
    jobs: int = 1,
    distributed=None,
    progress: bool = True,
    tensorboard: bool = True,
    after: After | None = None,
    extra_files: Sequence[str] = (),
    results_file: str = RESULTS_FILE,
    vectorize: str | bool = "auto",
) -> GridResult:
    """Train every trial not yet in ``out/<results_file>``; see the module docstring.

    ``extra_files`` names every table ``after`` can return (read back on resume); ``vectorize``
    (one of ``experiments.vectorized.VECTORIZE_CHOICES``; ``True`` is ``"auto"``, ``False``
    ``"off"``) lets compatible trials train together (JAX; see the module docstring).
    """
    vectorize = vectorize_choice(vectorize)
    out = Path(out)
    if distributed is not None and distributed.num_workers > 1 and not distributed.is_chief:
        # every worker trains the same trials in step; only the chief keeps the outputs
        with tempfile.TemporaryDirectory(prefix=f"grid-worker{distributed.worker_index}-") as scratch:
            _run(trials, Path(scratch), 1, distributed, False, tensorboard, after, extra_files, results_file,
                 vectorize)
        return GridResult(pd.DataFrame(), {})
    return _run(trials, out, jobs, distributed, progress, tensorboard, after, extra_files, results_file, vectorize)


def vectorize_choice(vectorize: str | bool) -> str:
    """``vectorize`` as one of ``VECTORIZE_CHOICES`` (``True`` is ``"auto"``, ``False`` ``"off"``)."""
    from experiments.vectorized import VECTORIZE_CHOICES

    choice = {True: "auto", False: "off"}.get(vectorize, vectorize) if isinstance(vectorize, bool) else vectorize
    if choice not in VECTORIZE_CHOICES:
        raise ValueError(f"vectorize must be one of {', '.join(VECTORIZE_CHOICES)}, got {vectorize!r}")
    return choice


def auto_mode(per_run: Sequence[str]) -> str:
    """``--vectorize auto``'s mode for a group: ``"map"`` where the group's rows are promised bit
    for bit equal to lone runs' (no ``per_run`` hyperparameters: a comparison's seeds) and on a
    CPU, where the two modes cost the same on the lab's problems (``python -m
    benchmarks.tuning_cost --vectorize map vmap``: see the README's "Vectorised trials"); ``"vmap"`` for the
    fair protocol's groups on a GPU or TPU, whose parallel form it is."""
    import jax

    return "vmap" if per_run and jax.default_backend() in ("gpu", "tpu") else "map"


def _run(trials, out, jobs, distributed, progress, tensorboard, after, extra_files, results_file,
         vectorize="off") -> GridResult:
    store = _Store(out, trials, results_file, extra_files)
    done = store.done()
    pending = []
    for index, trial in enumerate(trials, start=1):
        if trial.key in done:  # finished before an interruption: a leftover checkpoint is stale
            shutil.rmtree(out / CHECKPOINTS / trial.folder, ignore_errors=True)
        else:
            pending.append((index, trial))
    if jobs > 1 and len(pending) > 1:
        _run_in_processes(pending, out, store, jobs, progress, tensorboard, after)
    else:
        _run_in_sequence(pending, len(trials), out, store, progress, tensorboard, after, distributed, vectorize)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    results = store.frames.get(results_file, pd.DataFrame())
    return GridResult(results, {name: frame for name, frame in store.frames.items() if name != results_file})


def _postfix(row: Mapping[str, Any], problem: Problem) -> dict[str, str]:
    postfix = {"loss": f"{row['loss']:.4f}"}
    monitor = f"val_{problem.monitor}"
    if monitor in row:
        postfix[monitor] = f"{row[monitor]:.4f}"
    postfix["status"] = str(row["status"])
    return postfix


def _run_in_sequence(pending, total, out, store, progress, tensorboard, after, distributed, vectorize="off") -> None:
    from tqdm import tqdm

    data = DataCache()
    groups = _vectorized_groups(pending, distributed, data) if vectorize != "off" else {}
    finished: set[tuple[str, ...]] = set()
    for index, trial in pending:
        if trial.key in finished:  # trained with its group
            continue
        group = groups.get(trial.key)
        if group is not None:
            for _, member in group:  # trained now, or alone when its turn comes
                groups.pop(member.key)
            label = f"[{group[0][0]}/{total}] {trial.description}"
            mode = auto_mode(()) if vectorize == "auto" else vectorize
            trained = train_group([member for _, member in group], data, out, label=label, progress=progress,
                                  tensorboard=tensorboard, after=after, mode=mode)
            if trained is not None:
                store.add_all([(member, rows, extras) for (_, member), (rows, extras) in zip(group, trained)])
                finished.update(member.key for _, member in group)
                continue
        label = f"[{index}/{total}] {trial.description}"
        with tqdm(total=trial.epochs_to_run, desc=label, unit="epoch", disable=not progress, file=sys.stderr) as bar:

            def on_epoch(row: dict, bar=bar, trial=trial) -> None:
                bar.n = int(row["epoch"])
                bar.set_postfix(_postfix(row, trial.problem), refresh=False)
                bar.refresh()

            rows, extras = train_trial(trial, data(trial.problem), out, tensorboard=tensorboard, on_epoch=on_epoch,
                                       after=after, distributed=distributed)
        store.add(trial, rows, extras)


def group_key(trial: Trial, data: DataCache, per_run: Sequence[str] = ()) -> tuple | None:
    """What trials must share to train in one vectorised program (``train_group``), hyperparameters
    ``per_run`` aside; ``None`` for a trial that cannot join one (callbacks, no JIT, an
    optimiser the program cannot hold, an averaged iterate) or would not gain from it (epochs of
    more than ``MAX_STEPS_PER_EPOCH`` steps, a model with convolutions on a CPU:
    ``experiments.vectorized.gains_from_a_group``)."""
    from experiments.vectorized import MAX_STEPS_PER_EPOCH, optimizer_signature
    from lab.callbacks.averaged_weights import keeps_averaged_iterate

    if trial.callbacks is not None or trial.jit_compile not in (True, "auto"):
        return None
    batch_size = trial.batch_size or trial.problem.batch_size
    if batch_size is not None:
        examples = len(protocol_view(data(trial.problem), trial.protocol).x_train)
        if -(-examples // batch_size) > MAX_STEPS_PER_EPOCH:
            return None
    if not trains_in_groups(trial.problem, trial.model, trial.seed):
        return None
    optimizer = build_optimizer(trial)  # unshaped: the signature leaves the rate out
    signature = optimizer_signature(optimizer, per_run)
    # the program validates the weights trained; an averaged iterate is validated on the fit path
    if signature is None or keeps_averaged_iterate(optimizer):
        return None
    try:
        problem = hash(trial.problem) and trial.problem
    except TypeError:  # a problem holding an unhashable loss, say
        problem = id(trial.problem)
    return (problem, trial.model or trial.problem.model, trial.protocol, trial.epochs_to_run,
            trial.batch_size or trial.problem.batch_size, trial.steps_per_execution, signature)


def trains_in_groups(problem: Problem, model: Callable | None = None, seed: int = 0) -> bool:
    """Whether runs of ``problem`` (with ``model`` in place of its own) gain from vectorised
    groups here (``experiments.vectorized.gains_from_a_group``); when not, it is said on stderr
    once per model in a process."""
    from experiments.vectorized import gains_from_a_group

    build = model or problem.model
    if gains_from_a_group(build, seed):
        return True
    if build not in _SAID_ALONE:
        _SAID_ALONE.append(build)
        print(f"note: {problem.name}: a model with convolutions trains several times faster alone than in a "
              "vectorised group on a CPU, so its runs train one by one", file=sys.stderr)
    return False


# the builders whose fall-back to the fit path has been said (once per process)
_SAID_ALONE: list = []


def can_vectorize(distributed=None) -> bool:
    """Whether vectorised groups can train here: the JAX backend, no distribution strategy."""
    import keras

    return keras.backend.backend() == "jax" and (distributed is None or distributed.strategy is None)


def _vectorized_groups(pending, distributed, data) -> dict[tuple[str, ...], list]:
    """Trial key -> the ``(index, trial)`` pairs of its vectorised group (``experiments.vectorized``),
    for the pending trials that can join one (and whose epochs are short enough to gain from it)."""
    if not can_vectorize(distributed):
        return {}
    groups: dict[tuple, list] = {}
    for index, trial in pending:
        key = group_key(trial, data)
        if key is not None:
            groups.setdefault(key, []).append((index, trial))
    return {trial.key: members for members in groups.values() for _, trial in members}


def train_group(trials: Sequence[Trial], data: DataCache, out: Path, *, label: str, progress: bool = True,
                tensorboard: bool = True, after: After | None = None, mode: str = "map",
                per_run: Sequence[str] = (), should_stop: Callable[[int, dict], bool] | None = None):
    """Train trials of one ``group_key`` as one vectorised program (``experiments.vectorized.train_runs``
    with ``mode``, ``per_run`` and ``should_stop``): each trial's labelled rows and extras, in
    order; ``None`` when they cannot share a program after all (an unseeded model builder, an
    optimiser whose update reads a ``per_run`` hyperparameter as a Python number, ...), before
    anything is trained."""
    import keras
    from tqdm import tqdm

    from experiments.vectorized import IncompatibleRuns, builds_seeded_models, train_runs, write_tensorboard

    first = trials[0]
    if tensorboard:  # no TensorFlow, no logs: say so before training, as the fit path does
        from lab.tensorboard_logs import tensorflow_summary

        tensorflow_summary("TensorBoard logging (keras.callbacks.TensorBoard)")
    build = first.model or first.problem.model
    keras.backend.clear_session()
    if not builds_seeded_models(build, first.seed) or not trains_in_groups(first.problem, first.model, first.seed):
        return None
    split = protocol_view(data(first.problem), first.protocol)
    models = [build(trial.seed) for trial in trials]
    label += f" +{len(trials) - 1} together" if len(trials) > 1 else ""
    with tqdm(total=first.epochs_to_run, desc=label, unit="epoch", disable=not progress, file=sys.stderr) as bar:

        def on_epoch(member: int, row: dict) -> None:
            if member == 0 or int(row["epoch"]) > bar.n:
                bar.n = int(row["epoch"])
                bar.set_postfix(_postfix(row, first.problem), refresh=False)
                bar.refresh()

        try:
            optimizers = [build_optimizer(trial, run_steps(trial, split)) for trial in trials]
            frames = train_runs(
                models, optimizers, split, epochs=first.epochs_to_run,
                batch_size=first.batch_size or first.problem.batch_size or len(split.x_train),
                seeds=[trial.seed for trial in trials], loss=first.problem.loss, metrics=first.problem.metrics,
                checkpoint_dirs=[Path(out, CHECKPOINTS, trial.folder) for trial in trials], on_epoch=on_epoch,
                steps_per_execution=first.steps_per_execution, mode=mode, per_run=per_run, should_stop=should_stop,
            )
        except IncompatibleRuns:
            return None
    results = []
    for trial, model, rows in zip(trials, models, frames):
        if tensorboard:
            write_tensorboard(rows, Path(out, TENSORBOARD, trial.folder))
        extras = dict(after(trial, model, split) or {}) if after is not None else {}
        results.append((_labelled(rows, trial), {name: _labelled(frame, trial) for name, frame in extras.items()}))
    return results


def _run_in_processes(pending, out, store, jobs, progress, tensorboard, after) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    # spawn, not fork: a forked copy of an initialised TensorFlow or JAX runtime is not safe
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=exit_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_train_in_worker, trial, out, tensorboard, after): trial for _, trial in pending}
        with tqdm(total=len(futures), desc=f"trials, {jobs} at a time", unit="trial", disable=not progress,
                  file=sys.stderr) as bar:
            for future in as_completed(futures):
                trial = futures[future]
                rows, extras = future.result()
                store.add(trial, rows, extras)
                postfix = _postfix(rows.iloc[-1].to_dict(), trial.problem)
                bar.set_postfix_str(f"{trial.description}: " + ", ".join(f"{k} {v}" for k, v in postfix.items()),
                                    refresh=False)
                bar.update()


_worker_data: DataCache | None = None


def exit_with_parent(parent: int) -> None:
    """In each worker process: exit when the parent dies (a killed grid must not leave workers
    writing checkpoints that a resume is about to read)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _train_in_worker(trial: Trial, out: Path, tensorboard: bool, after):
    global _worker_data
    if _worker_data is None:
        _worker_data = DataCache()  # each problem's data, loaded once per worker
    return train_trial(trial, _worker_data(trial.problem), out, tensorboard=tensorboard, after=after)
