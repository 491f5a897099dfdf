"""The fair protocol: every optimiser tuned under the same budget, selected on a validation split,
re-trained over seeds and scored once on the test set.

    python -m experiments.compare_optimizers --tune 16                  # 16 trials per problem x optimiser
    python -m experiments.compare_optimizers --tune 16 --problems moons --seeds 5 --prune
    python -m experiments.compare_optimizers --tune 16 --search-space spaces.toml
    python -m experiments.compare_optimizers --tune 16 --jobs 2         # two trials at a time
    python -m experiments.compare_optimizers --tune 16 --storage postgresql://host/db --out /shared/run
                                    # the same command on several machines: they share the trials
    python -m experiments.compare_optimizers --tune-by finder           # the LR range test instead
    python -m experiments.compare_optimizers --resume DIR               # after a kill

For each problem x optimiser (the protocols of DeepOBS, Schmidt et al. 2021 and AlgoPerf's
external tuning):

1. **Sampling.** The N trials are the first N points of a scrambled Sobol sequence over the
   optimiser's search space (``lab.search_spaces``: the learning rate log-uniform over 1e-5..10,
   plus momentum, rho or the betas where the optimiser has them), drawn by Optuna's
   ``QMCSampler(qmc_type="sobol", scramble=True, seed=0)``: the same sampler and the same N for
   every optimiser. The points are drawn when the study is created and queued in it, so the
   budget is exact and the set of trials does not depend on how many processes run them.
2. **Trials.** Each trial is a full training run of the problem (its epochs and batch size, seed
   0) under the ``held_out`` protocol of ``lab.problems``: trained on the training part and
   scored on the validation part, through ``experiments.grid.train_trial``.
3. **Selection.** The best trial has the best validation score ``val_<monitor>`` (the problem's
   target quantity: accuracy, or the loss for a problem without metrics) at its last epoch among
   the trials that finished (status ``ok``: neither diverged nor pruned); a tie goes to the lower
   trial index. When no trial finished, the best finite score of any trial is taken (the report
   says so).
4. **Final runs.** The winner's hyperparameters are re-trained over ``--seeds`` seeds (0..S-1)
   under the same protocol, and so are the registry's defaults (the notebooks' settings, to rank
   side by side); after training, each final model is scored once on the test set
   (``test_<metric>`` columns). Nothing that selects reads the test set.

``--tune-by finder`` replaces steps 1-3 by one ``lab.callbacks.find_lr`` range test per problem x
optimiser (seed 0, on the training part, over the search space's learning-rate range; the rate is
the ``minimum`` suggestion (a tenth of the rate at the lowest smoothed loss), the other hyperparameters stay at their defaults), and records
its cost in steps.

**Optuna holds the studies**: one per problem x optimiser, named ``compare_optimizers:<problem>:
<optimizer>``, with the budget, the search space and the protocol's settings as attributes, the
queued points and the trial records (parameters, validation score, status, seconds). The
storage is the SQLite file ``tuning.db`` of the run folder unless ``--storage URL`` names another
(any URL of ``optuna.storages.RDBStorage``: ``sqlite:///``, ``postgresql://``, ``mysql://``).

- **Sharing.** Processes started with the same command and one storage take queued trials one at
  a time (Optuna's WAITING -> RUNNING transition is atomic in the storage), so each trial runs
  once. The process that creates the studies is the chief: it waits for the last trial, trains
  the final runs and writes the report; the others stop when the queue is empty. A process that
  stops beating its heartbeat (every 10 s, 120 s of grace) is presumed dead and its trial is
  queued again (Optuna's ``RetryHeartbeatStaleTrialCallback``).
- **Resume.** ``--resume DIR`` continues as the chief of the run in DIR: every trial still
  RUNNING in the storage was cut by the kill; it is marked FAIL and its parameters are queued
  again under the same trial index, so it is retried (from its last checkpointed epoch) and not
  counted twice. The final runs resume as any grid does.
- **Pruning** (``--prune median`` or ``--prune halving``, off by default): Optuna's
  ``MedianPruner`` or ``SuccessiveHalvingPruner`` on the validation score of each epoch; a pruned
  trial counts against the budget.

Writes beside ``run.json``: ``tuning.csv`` (one row per trial: problem, optimizer, trial, each
hyperparameter, ``val_<monitor>``, status ok/diverged/pruned, epochs, seconds), ``results.csv``
(the final runs, one row per epoch, ``test_<metric>`` on each run's last row), ``test.csv``,
``summary.csv``, ``summary.md``, ``report.md``, ``plots/`` and ``tensorboard/`` (every trial and
final run is a run with its hyperparameters in the HParams dashboard); ``experiments.tuning_report``
makes the summaries.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments import cli
from experiments.grid import CHECKPOINTS, RESULTS_FILE, TENSORBOARD, DataCache, Trial, run_grid, train_trial
from lab.search_spaces import SearchSpace, load_search_spaces, space_for, space_to_dict

NAME = "compare_optimizers"
TUNING_FILE = "tuning.csv"
TEST_FILE = "test.csv"
STORAGE_FILE = "tuning.db"
METHODS = ("search", "finder")
PRUNERS = ("median", "halving")
SAMPLER_SEED = 0
TRIAL_SEED = 0
FINDER_STEPS = 100
FINDER_SUGGESTION = "minimum"  # a tenth of the rate at the lowest smoothed loss
HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 120  # seconds without one before the trial is presumed dead
SCHEMA_RACE_RETRIES = 10  # openings of a new storage that another worker is creating at the same moment
PLAN_TIMEOUT = 600  # seconds a worker waits for the chief to queue the trials
STATUSES = ("ok", "diverged", "pruned")
SETTINGS = ("tuned", "default")
# settings of a run that do not change its numbers: a process joining the run may differ in them
_HOW_IT_RUNS = ("out", "resume", "no_progress", "jobs", "command_line", "replot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tune N``, ``--tune-by``, ``--search-space``, ``--storage``, ``--prune``."""
    group = parser.add_argument_group("the fair protocol (experiments.tuning)")
    group.add_argument(
        "--tune", type=int, default=None, metavar="N",
        help="tune every optimizer with N trials of the same quasi-random sampler over its search space, each "
        "scored on the validation split; re-train the best over --seeds and score it on the test set",
    )
    group.add_argument(
        "--tune-by", choices=METHODS, default="search",
        help="search: N trials (with --tune N); finder: each optimizer's rate from the LR range test "
        "(lab.callbacks.find_lr), no budget (default: search)",
    )
    group.add_argument(
        "--search-space", type=Path, default=None, metavar="FILE",
        help="a JSON or TOML file of search spaces ({optimizer: {hyperparameter: {low, high, scale}}}) that "
        "replaces the registry's for the optimizers it names (see lab.search_spaces)",
    )
    group.add_argument(
        "--storage", default=None, metavar="URL",
        help="the Optuna storage of the studies (default: sqlite:///<out>/tuning.db); the same command started "
        "by several processes with one storage shares the trials",
    )
    group.add_argument(
        "--prune", nargs="?", const="median", choices=PRUNERS, default=None,
        help="stop hopeless trials early with Optuna's median pruner (or successive halving); a pruned trial "
        "counts against the budget (default: off)",
    )


def requested(args: argparse.Namespace) -> bool:
    """Whether the command line asks for the fair protocol."""
    return getattr(args, "tune", None) is not None or getattr(args, "tune_by", "search") == "finder"


# --- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One problem x optimiser of the protocol, with its search space."""

    problem: Any  # lab.problems.Problem
    optimizer: str
    space: SearchSpace

    @property
    def study_name(self) -> str:
        return f"{NAME}:{self.problem.name}:{self.optimizer}"

    @property
    def monitor(self) -> str:
        return f"val_{self.problem.monitor}"


@dataclass(frozen=True)
class Settings:
    """What the protocol runs: the pairs, the budget and the protocol's settings."""

    pairs: tuple[Pair, ...]
    method: str
    budget: int | None
    seeds: int
    epochs: int | None
    batch_size: int | None
    prune: str | None
    storage: str | None
    tensorboard: bool = True
    progress: bool = True
    jobs: int = 1
    target: float | None = None

    def study_attributes(self, pair: Pair) -> dict[str, Any]:
        """What a study must agree on with every process that joins it."""
        return {"budget": self.budget, "search_space": space_to_dict(pair.space), "epochs": self.epochs,
                "batch_size": self.batch_size, "prune": self.prune, "sampler": sampler_description(),
                "trial_seed": TRIAL_SEED, "protocol": "held_out"}


def sampler_description() -> str:
    return f"QMCSampler(qmc_type='sobol', scramble=True, seed={SAMPLER_SEED})"


def check_settings(args: argparse.Namespace, problems: Sequence, optimizers: Sequence[str], seeds: int) -> Settings:
    """The fair protocol's settings from the command line; ``UsageError`` on bad input."""
    if args.tune_by == "finder":
        if args.tune is not None:
            raise cli.UsageError("--tune-by finder takes no budget: drop --tune (or use --tune-by search)")
        if args.prune is not None:
            raise cli.UsageError("--prune prunes the trials of a search; --tune-by finder has none")
    elif args.tune < 1:
        raise cli.UsageError(f"--tune: the budget must be at least 1 trial per optimizer, got {args.tune}")
    if getattr(args, "strategy", "none") != "none":
        raise cli.UsageError("--tune and --tune-by train every trial on one device; drop --strategy")
    overrides = None
    if args.search_space is not None:
        try:
            overrides = load_search_spaces(args.search_space)
        except ValueError as error:
            raise cli.UsageError(f"--search-space {error}") from None
    pairs = []
    for problem in problems:
        for optimizer in optimizers:
            try:
                space = space_for(optimizer, overrides)
            except ValueError as error:
                raise cli.UsageError(f"--search-space: {error}") from None
            if args.tune_by == "finder" and not any(d.name == "learning_rate" and d.scale == "log" for d in space):
                raise cli.UsageError(f"--tune-by finder: {optimizer} has no log-scale learning_rate in its search space")
            pairs.append(Pair(problem, optimizer, space))
    return Settings(tuple(pairs), args.tune_by, args.tune, seeds, args.epochs, args.batch_size, args.prune,
                    args.storage, not args.no_tensorboard, not args.no_progress, args.jobs, args.target)


# --- Optuna: storage, studies, the plan -----------------------------------------------------------


def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*balance properties of Sobol.*")
    return optuna


def default_storage(out: Path) -> str:
    return f"sqlite:///{(Path(out) / STORAGE_FILE).resolve()}"


def open_storage(url: str):
    """An ``optuna.storages.RDBStorage`` with heartbeats and retries of stale trials;
    ``UsageError`` when it cannot be opened.

    Workers started together on one new storage race to create its schema: Optuna creates the
    tables and stamps the schema version without a lock, so all but one see "table ... already
    exists" or a duplicate version row. The schema is then there, and opening again succeeds;
    only those two errors are retried, so a wrong URL fails at once."""
    optuna = _quiet_optuna()
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(SCHEMA_RACE_RETRIES + 1):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    inherit_intermediate_values=True),
            )
        except Exception as error:  # SQLAlchemy's and Optuna's errors alike: the URL is what is wrong
            if attempt < SCHEMA_RACE_RETRIES and _lost_schema_race(error):
                time.sleep(0.1 * (attempt + 1))
                continue
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise cli.UsageError(f"--storage {url}: cannot open it: {first}") from None


def _lost_schema_race(error: Exception) -> bool:
    """Whether ``error`` says another process created the storage's schema at the same time."""
    from sqlalchemy import exc

    message = str(error).lower()
    if isinstance(error, exc.OperationalError):
        return "already exists" in message
    return isinstance(error, exc.IntegrityError) and ("unique" in message or "duplicate" in message)


def _distributions(space: SearchSpace) -> dict[str, Any]:
    import optuna

    distributions = {}
    for dimension in space:
        low, high, log = dimension.sampled_range()
        distributions[dimension.sampled_name] = optuna.distributions.FloatDistribution(low, high, log=log)
    return distributions


def make_sampler():
    optuna = _quiet_optuna()
    return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=SAMPLER_SEED,
                                      warn_independent_sampling=False)


def plan(space: SearchSpace, budget: int) -> list[dict[str, float]]:
    """The budget's points: the first ``budget`` points of the seeded, scrambled Sobol sequence
    of ``QMCSampler`` over ``space`` (what the sampler draws: ``Dimension.sampled_name``).

    Drawn in an in-memory study. A first finished trial that only declares the search space
    makes the sampler use the sequence from the first point on (without it, Optuna draws the
    first trial at random, since the search space is not known yet)."""
    optuna = _quiet_optuna()
    distributions = _distributions(space)
    study = optuna.create_study(sampler=make_sampler())
    study.add_trial(optuna.trial.create_trial(
        params={name: d.low for name, d in distributions.items()}, distributions=distributions, value=0.0))
    points = []
    for _ in range(budget):
        trial = study.ask(distributions)
        points.append(dict(trial.params))
        study.tell(trial, 0.0)
    return points


def _pruner(name: str | None):
    optuna = _quiet_optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def _direction(pair: Pair) -> str:
    return "maximize" if pair.problem.higher_is_better else "minimize"


@dataclass
class Studies:
    """The run's studies in one storage, and whether this process is the chief."""

    storage: Any
    url: str
    studies: dict[str, Any]  # study name -> optuna.Study
    chief: bool


def open_studies(settings: Settings, url: str, *, resume: bool) -> Studies:
    """Create the studies (this process is then the chief) or join them; queue the plan; on
    ``resume``, retry the trials a kill left RUNNING. ``UsageError`` when the storage holds a
    study of this name with other settings."""
    optuna = _quiet_optuna()
    storage = open_storage(url)
    studies: dict[str, Any] = {}
    chief = resume
    for position, pair in enumerate(settings.pairs):
        arguments = dict(study_name=pair.study_name, storage=storage, sampler=make_sampler(),
                         pruner=_pruner(settings.prune), direction=_direction(pair))
        try:
            study = optuna.create_study(**arguments, load_if_exists=False)
            created = True
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(study_name=pair.study_name, storage=storage, sampler=arguments["sampler"],
                                      pruner=arguments["pruner"])
            created = False
        if position == 0 and created:
            chief = True
        expected = settings.study_attributes(pair)
        if created:
            for key, value in expected.items():
                study.set_user_attr(key, value)
        else:
            _check_study(study, expected, url, wait=not chief)
        if chief:
            _queue_plan(study, pair, settings.budget)
            if resume:
                retry_running(study)
        studies[pair.study_name] = study
    if not chief:
        for pair in settings.pairs:
            _wait_for_plan(studies[pair.study_name])
    return Studies(storage, url, studies, chief)


def check_existing_studies(settings: Settings, url: str) -> None:
    """``UsageError`` when the storage cannot be opened or holds one of the run's studies with
    other settings (another budget, another search space...)."""
    optuna = _quiet_optuna()
    storage = open_storage(url)
    names = {summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    for pair in settings.pairs:
        if pair.study_name in names:
            study = optuna.load_study(study_name=pair.study_name, storage=storage)
            _check_study(study, settings.study_attributes(pair), url, wait=False)


def _check_study(study, expected: dict, url: str, wait: bool) -> None:
    deadline = time.monotonic() + (PLAN_TIMEOUT if wait else 0)
    attributes = study.user_attrs
    while set(expected) - set(attributes) and time.monotonic() < deadline:
        time.sleep(0.5)  # the chief is still writing them
        attributes = study.user_attrs
    for key, value in expected.items():
        found = attributes.get(key)
        if json.dumps(found, sort_keys=True) != json.dumps(value, sort_keys=True):
            shown = {"budget": "budget", "search_space": "search space"}.get(key, key)
            raise cli.UsageError(
                f"storage {url}: study {study.study_name!r} was started with {shown} {found!r}, this run asks for "
                f"{value!r}; use another --storage, or the settings the study was started with"
            )


def _queue_plan(study, pair: Pair, budget: int) -> None:
    """Queue the plan's points not queued yet (all of them, unless a kill cut the queueing)."""
    queued = {trial.user_attrs.get("index") for trial in study.get_trials(deepcopy=False)}
    points = plan(pair.space, budget)
    for index, point in enumerate(points):
        if index not in queued:
            study.enqueue_trial(point, user_attrs={"index": index})
    if not study.user_attrs.get("planned"):
        study.set_user_attr("planned", True)


def _wait_for_plan(study) -> None:
    deadline = time.monotonic() + PLAN_TIMEOUT
    while not study.user_attrs.get("planned"):
        if time.monotonic() > deadline:
            raise cli.UsageError(f"study {study.study_name!r}: the chief has not queued its trials in {PLAN_TIMEOUT} s")
        time.sleep(0.5)


def retry_running(study) -> list[int]:
    """Mark every RUNNING trial FAIL and queue its parameters again (same index, same
    intermediate values): what Optuna's heartbeat does to a stale trial, without waiting for the
    grace period. The indices retried."""
    import copy

    optuna = _quiet_optuna()
    storage = study._storage
    callback = storage.get_heartbeat_stale_trial_callback()
    retried = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        try:
            if not storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        callback(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
        retried.append(trial.user_attrs.get("index"))
    return retried


def take_trial(study):
    """A queued trial of ``study``, now RUNNING and this process's, or ``None`` when none is
    queued. Never creates a trial: the budget is the queue."""
    optuna = _quiet_optuna()
    storage = study._storage
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(frozen._trial_id, state=optuna.trial.TrialState.RUNNING):
                return optuna.Trial(study, frozen._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


class _Heartbeat:
    """Records a running trial's heartbeat every ``HEARTBEAT_INTERVAL`` seconds in a thread."""

    def __init__(self, storage, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            self.storage.record_heartbeat(self.trial_id)
            if self._stop.wait(HEARTBEAT_INTERVAL):
                return

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


def _pending(study) -> int:
    optuna = _quiet_optuna()
    states = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


# --- the trials --------------------------------------------------------------------------------


def hyperparameters(space: SearchSpace, sampled: dict[str, float]) -> dict[str, float]:
    """The optimiser's arguments from what the sampler drew."""
    return {dimension.name: dimension.value(sampled[dimension.sampled_name]) for dimension in space}


def trial_of(pair: Pair, index: int, arguments: dict[str, float], settings: Settings, callbacks=None) -> Trial:
    """The grid trial of tuning trial ``index``: seed 0, the held-out protocol."""
    return Trial(problem=pair.problem, optimizer=pair.optimizer, seed=TRIAL_SEED, epochs=settings.epochs,
                 batch_size=settings.batch_size, protocol="held_out", optimizer_arguments=dict(arguments),
                 callbacks=callbacks,
                 labels=(("stage", "tuning"), ("problem", pair.problem.name), ("optimizer", pair.optimizer),
                         ("trial", index)))


def _pruning_callbacks(optuna_trial, monitor: str, flag: dict):
    import keras

    class Pruning(keras.callbacks.Callback):
        """Reports the epoch's validation score to Optuna; stops the run when it says prune."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = (logs or {}).get(monitor)
            if value is None or not np.isfinite(value):
                return
            optuna_trial.report(float(value), epoch + 1)
            if optuna_trial.should_prune():
                flag["pruned"] = True
                self.model.stop_training = True

    return lambda: [Pruning()]


def run_trial(optuna_trial, pair: Pair, settings: Settings, out: Path, data: DataCache, progress=None) -> str:
    """Train one tuning trial and tell Optuna its outcome; its status."""
    optuna = _quiet_optuna()
    study = optuna_trial.study
    index = int(optuna_trial.user_attrs["index"])
    sampled = {name: optuna_trial.suggest_float(name, d.low, d.high, log=d.log)
               for name, d in _distributions(pair.space).items()}
    arguments = hyperparameters(pair.space, sampled)
    flag = {"pruned": False}
    callbacks = _pruning_callbacks(optuna_trial, pair.monitor, flag) if settings.prune else None
    trial = trial_of(pair, index, arguments, settings, callbacks)
    try:
        with _Heartbeat(study._storage, optuna_trial._trial_id):
            rows, _ = train_trial(trial, data(pair.problem), out, tensorboard=settings.tensorboard,
                                  on_epoch=progress)
    except BaseException:
        # leave nothing RUNNING behind: the trial is queued again, as a killed one would be
        retry_running_trial(study, optuna_trial)
        raise
    last = rows.iloc[-1]
    score = float(last[pair.monitor]) if pair.monitor in rows else float("nan")
    status = "diverged" if last["status"] == "diverged" else ("pruned" if flag["pruned"] else "ok")
    for key, value in {"status": status, "score": score if np.isfinite(score) else None,
                       "epochs": int(last["epoch"]), "seconds": float(last["seconds"]),
                       "worker": f"{socket.gethostname()}:{os.getpid()}", **{f"value_{k}": v for k, v in arguments.items()}
                       }.items():
        optuna_trial.set_user_attr(key, value)
    if settings.tensorboard:
        from experiments import hparams

        hparams.write_session(out / TENSORBOARD / trial.folder, {"stage": "tuning", "problem": pair.problem.name,
                              "optimizer": pair.optimizer, "trial": index, **arguments})
    if status == "ok" and np.isfinite(score):
        study.tell(optuna_trial, score)
    elif status == "pruned":
        study.tell(optuna_trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(optuna_trial, state=optuna.trial.TrialState.FAIL)
    shutil.rmtree(out / CHECKPOINTS / trial.folder, ignore_errors=True)
    return status


def retry_running_trial(study, optuna_trial) -> None:
    """Queue a trial this process cannot finish (an exception, Ctrl-C) again, as a stale one."""
    import copy

    optuna = _quiet_optuna()
    storage = study._storage
    try:
        if storage.set_trial_state_values(optuna_trial._trial_id, state=optuna.trial.TrialState.FAIL):
            storage.get_heartbeat_stale_trial_callback()(study, copy.deepcopy(storage.get_trial(optuna_trial._trial_id)))
    except Exception:  # the storage itself may be what failed; --resume retries RUNNING trials
        pass


def work(settings: Settings, studies: Studies, out: Path, *, wait: bool) -> int:
    """Take and run queued trials, study after study, until none is queued (and with ``wait``,
    until no trial of any study is still running elsewhere). The number this process ran."""
    from tqdm import tqdm

    optuna = _quiet_optuna()
    data = DataCache()
    total = (settings.budget or 0) * len(settings.pairs)
    ran = 0
    with tqdm(total=total, desc="tuning trials", unit="trial", disable=not settings.progress, file=sys.stderr) as bar:
        while True:
            for pair in settings.pairs:
                study = studies.studies[pair.study_name]
                optuna.storages.fail_stale_trials(study)
                while (optuna_trial := take_trial(study)) is not None:
                    bar.set_postfix_str(f"{pair.problem.name} {pair.optimizer} trial {optuna_trial.user_attrs['index']}")
                    status = run_trial(optuna_trial, pair, settings, out, data)
                    ran += 1
                    bar.n = sum(_finished(studies.studies[p.study_name]) for p in settings.pairs)
                    bar.set_postfix_str(f"{pair.problem.name} {pair.optimizer}: {status}")
                    bar.refresh()
            if not wait or all(_pending(studies.studies[p.study_name]) == 0 for p in settings.pairs):
                return ran
            time.sleep(1.0)  # trials of other processes are running; one of them may die


def counted_trials(study) -> list:
    """The finished trials that count against the budget, by index: every finished trial with an
    outcome, except an attempt that was queued again (a killed or stale one)."""
    trials = study.get_trials(deepcopy=False)
    retried = {number for trial in trials for number in trial.system_attrs.get("retry_history", [])}
    counted = [t for t in trials if t.state.is_finished() and "status" in t.user_attrs and t.number not in retried]
    return sorted(counted, key=lambda t: (t.user_attrs["index"], t.number))


def _finished(study) -> int:
    return len(counted_trials(study))


def trial_records(settings: Settings, studies: Studies) -> pd.DataFrame:
    """``tuning.csv``: one row per trial index (a retried trial's killed attempt is not one)."""
    rows = []
    names = list(dict.fromkeys(d.name for pair in settings.pairs for d in pair.space))
    for pair in settings.pairs:
        for trial in counted_trials(studies.studies[pair.study_name]):
            attributes = trial.user_attrs
            row = {"problem": pair.problem.name, "optimizer": pair.optimizer, "trial": int(attributes["index"])}
            row.update({name: attributes.get(f"value_{name}", np.nan) for name in names})
            score = attributes.get("score")
            row[pair.monitor] = np.nan if score is None else float(score)
            row.update(status=attributes["status"], epochs=int(attributes["epochs"]), seconds=float(attributes["seconds"]))
            rows.append(row)
    frame = pd.DataFrame(rows)
    return _tidy_tuning_columns(frame, names)


def _tidy_tuning_columns(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    if frame.empty:
        return frame
    scores = sorted(c for c in frame.columns if c.startswith("val_"))
    head = ["problem", "optimizer", "trial", *[n for n in names if n in frame], *scores]
    return frame[head + [c for c in frame.columns if c not in head]]


# --- selection -------------------------------------------------------------------------------------


def select_best(tuning: pd.DataFrame, pair: Pair) -> tuple[dict[str, float], int, bool]:
    """The best trial's hyperparameters, its index and whether it finished ``ok`` (module rule 3).
    Reads ``tuning.csv``'s rows only: validation scores, never the test set."""
    rows = tuning[(tuning["problem"] == pair.problem.name) & (tuning["optimizer"] == pair.optimizer)]
    rows = rows[np.isfinite(rows[pair.monitor].to_numpy(dtype=float))] if pair.monitor in rows else rows.iloc[:0]
    finished = rows[rows["status"] == "ok"]
    candidates, ok = (finished, True) if len(finished) else (rows, False)
    names = [d.name for d in pair.space if d.name in tuning]  # the range test tunes the rate alone
    if candidates.empty:  # every trial's score is NaN: the first point, stated in the report
        first = tuning[(tuning["problem"] == pair.problem.name) & (tuning["optimizer"] == pair.optimizer)]
        first = first.sort_values("trial").iloc[0]
        return {name: float(first[name]) for name in names}, int(first["trial"]), False
    ascending = not pair.problem.higher_is_better
    best = candidates.sort_values([pair.monitor, "trial"], ascending=[ascending, True], kind="stable").iloc[0]
    return {name: float(best[name]) for name in names}, int(best["trial"]), ok


# --- the range test ------------------------------------------------------------------------------


def run_finder(pair: Pair, settings: Settings, data: DataCache) -> dict[str, Any]:
    """``find_lr`` on a seeded model over the space's learning-rate range: ``tuning.csv``'s row."""
    import keras

    from experiments.grid import build_optimizer
    from lab.callbacks import find_lr
    from lab.problems import protocol_view

    rate = next(d for d in pair.space if d.name == "learning_rate")
    split = protocol_view(data(pair.problem), "held_out")
    trial = trial_of(pair, 0, {}, settings)
    keras.backend.clear_session()
    keras.utils.set_random_seed(TRIAL_SEED)
    model = pair.problem.model(TRIAL_SEED)
    model.compile(optimizer=build_optimizer(trial), loss=pair.problem.loss, steps_per_execution=1, jit_compile=False)
    batch_size = settings.batch_size or pair.problem.batch_size or len(split.x_train)
    start = time.perf_counter()
    result = find_lr(model, split.x_train, split.y_train, start_lr=rate.low, end_lr=rate.high,
                     num_steps=FINDER_STEPS, batch_size=batch_size, verify_steps=0)  # the sweep's cost only
    seconds = time.perf_counter() - start
    return {"problem": pair.problem.name, "optimizer": pair.optimizer, "trial": 0,
            "learning_rate": float(result.suggest(FINDER_SUGGESTION)), pair.monitor: np.nan, "status": "ok",
            "epochs": 0, "steps": int(len(result.learning_rates)), "seconds": seconds}


def finder_records(settings: Settings, out: Path) -> pd.DataFrame:
    """Every pair's range test, written to ``tuning.csv`` after each (a resumed run skips those done)."""
    path = out / TUNING_FILE
    frame = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    data = DataCache()
    for pair in settings.pairs:
        done = not frame.empty and ((frame["problem"] == pair.problem.name) & (frame["optimizer"] == pair.optimizer)).any()
        if done:
            continue
        row = run_finder(pair, settings, data)
        frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
        cli.write_csv_atomic(path, _tidy_tuning_columns(frame, ["learning_rate"]))
    return pd.read_csv(path)


# --- the final runs ------------------------------------------------------------------------------


def final_trials(settings: Settings, tuning: pd.DataFrame) -> list[tuple[Pair, Trial]]:
    """Every pair x (tuned, default) x seed, under the held-out protocol."""
    trials = []
    for pair in settings.pairs:
        tuned, _, _ = select_best(tuning, pair)
        for setting, arguments in (("tuned", tuned), ("default", {})):
            for seed in range(settings.seeds):
                trials.append((pair, Trial(
                    problem=pair.problem, optimizer=pair.optimizer, seed=seed, epochs=settings.epochs,
                    batch_size=settings.batch_size, protocol="held_out", optimizer_arguments=arguments,
                    labels=(("problem", pair.problem.name), ("optimizer", pair.optimizer), ("setting", setting),
                            ("seed", seed)))))
    return trials


def test_scores(trial: Trial, model, data) -> dict[str, pd.DataFrame]:
    """After a final run: its one and only evaluation on the test set (``test_<metric>``)."""
    from lab.callbacks.averaged_weights import evaluated_weights_in

    batch_size = max(trial.batch_size or trial.problem.batch_size or len(data.x_test), 1024)
    with evaluated_weights_in(model):  # a schedule-free optimiser's averaged iterate, as validated
        scores = model.evaluate(data.x_test, data.y_test, batch_size=batch_size, verbose=0, return_dict=True)
    return {TEST_FILE: pd.DataFrame([{f"test_{name}": float(value) for name, value in scores.items()}])}


def merge_test_scores(results: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """``results.csv`` with each run's test scores on its last row, beside its ``val_`` columns."""
    keys = ["problem", "optimizer", "setting", "seed"]
    results = results.drop(columns=[c for c in results.columns if c.startswith("test_")])
    last = results.groupby(keys, sort=False)["epoch"].transform("max") == results["epoch"]
    merged = results.merge(tests, on=keys, how="left")
    test_columns = [c for c in tests.columns if c.startswith("test_")]
    merged.loc[~last.to_numpy(), test_columns] = np.nan
    columns = list(results.columns)
    position = max(i for i, c in enumerate(columns) if c.startswith("val_")) + 1
    return merged[columns[:position] + sorted(test_columns) + columns[position:]]


def run_finals(settings: Settings, tuning: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Train the final runs (a grid: resumable), score them on the test set, write ``results.csv``."""
    pairs_and_trials = final_trials(settings, tuning)
    trials = [trial for _, trial in pairs_and_trials]
    grid = run_grid(trials, out, jobs=settings.jobs, progress=settings.progress, tensorboard=settings.tensorboard,
                    after=test_scores, extra_files=(TEST_FILE,))
    results = merge_test_scores(grid.results, grid.extras[TEST_FILE])
    cli.write_csv_atomic(out / RESULTS_FILE, results)
    if settings.tensorboard:
        from experiments import hparams

        for pair, trial in pairs_and_trials:
            hparams.write_session(out / TENSORBOARD / trial.folder, {
                "stage": dict(trial.labels)["setting"], "problem": trial.problem.name, "optimizer": trial.optimizer,
                "seed": trial.seed, **effective_arguments(trial, pair.space)})
    return results


def effective_arguments(trial: Trial, space: SearchSpace) -> dict[str, float]:
    """The values the trial's optimiser has for the space's hyperparameters (defaults included)."""
    from experiments.grid import build_optimizer

    config = build_optimizer(trial).get_config()
    return {d.name: float(config[d.name]) for d in space if isinstance(config.get(d.name), (int, float))}


# --- the command ---------------------------------------------------------------------------------


def _same_run(args: argparse.Namespace, parser: argparse.ArgumentParser, info: dict) -> bool:
    theirs = vars(parser.parse_args(info.get("arguments", [])))
    ours = vars(args)
    return all(theirs.get(k) == ours.get(k) for k in set(theirs) | set(ours) if k not in _HOW_IT_RUNS)


def open_run_folder(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """``--resume``'s folder; a new one; or, with the same command, the folder of a run in
    progress that this process joins as a worker."""
    if args.resume is not None:
        return cli.open_output(args, NAME)
    out = args.out if args.out is not None else cli.default_output_dir(NAME)
    run_file = out / cli.RUN_FILE
    if run_file.exists():
        info = cli.read_run_info(out, NAME, "--out")
        if not _same_run(args, parser, info) or (out / "report.md").exists():
            raise cli.UsageError(f"{out} already holds a run; use --resume {out} to continue it or choose another --out")
        return out
    return cli.open_output(args, NAME)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser, problems, optimizers: Sequence[str],
        seeds: int) -> int:
    """The fair protocol from the command line (``compare_optimizers --tune N``)."""
    from experiments import tuning_report

    settings = check_settings(args, problems, optimizers, seeds)
    resume = args.resume is not None
    if settings.storage is not None and settings.method == "search":
        check_existing_studies(settings, settings.storage)  # before a run folder is made
    out = open_run_folder(args, parser)
    if settings.tensorboard:
        write_hparams_experiment(settings, out)
    if settings.method == "finder":
        tuning = finder_records(settings, out)
        chief = True
    else:
        url = settings.storage or default_storage(out)
        studies = open_studies(settings, url, resume=resume)
        helpers = _start_local_workers(args.command_line, out, settings.jobs - 1) if studies.chief else []
        ran = work(settings, studies, out, wait=studies.chief)
        for helper in helpers:
            helper.join()
        if not studies.chief:
            print(f"worker: ran {ran} trials of {url}; the chief writes the report")
            return 0
        tuning = trial_records(settings, studies)
        cli.write_csv_atomic(out / TUNING_FILE, tuning)
    run_finals(settings, tuning, out)
    summary_md = tuning_report.make_outputs(out, settings, cli.read_run_info(out, NAME, "--out"))
    print(summary_md)
    print(f"results in {out} (report.md, tuning.csv, results.csv, summary.md, plots/, tensorboard/)")
    return 0


def write_hparams_experiment(settings: Settings, out: Path) -> None:
    """The HParams dashboard's columns: every tuned hyperparameter, the labels, the scores."""
    from experiments import hparams

    names = list(dict.fromkeys(d.name for pair in settings.pairs for d in pair.space))
    monitors = list(dict.fromkeys(pair.problem.monitor for pair in settings.pairs))
    metrics = [("validation", f"epoch_{m}") for m in monitors if m != "loss"]
    metrics += [("validation", "epoch_loss"), ("train", "epoch_loss")]
    hparams.write_experiment(out / TENSORBOARD, [*names, "stage", "problem", "optimizer", "trial", "seed"], metrics)


def _start_local_workers(command_line: Sequence[str], out: Path, count: int) -> list:
    """``--jobs N`` with ``--tune``: N - 1 more processes of the same command, workers of this
    run (same folder, same storage); they exit with this process."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    argv = [*command_line, "--out", str(out), "--jobs", "1", "--no-progress"]
    helpers = []
    for _ in range(max(count, 0)):
        process = context.Process(target=_local_worker, args=(argv, os.getpid()), daemon=True)
        process.start()
        helpers.append(process)
    return helpers


def _local_worker(argv: list[str], parent: int) -> None:
    from experiments import compare_optimizers
    from experiments.grid import _start_worker

    _start_worker(parent)  # a killed chief takes its workers with it
    try:
        compare_optimizers.main(argv)
    except cli.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(cli.EXIT_USAGE)


def replot(args: argparse.Namespace, out: Path, info: dict, problems, optimizers: Sequence[str]) -> int:
    """``--replot DIR`` of a tuning run: its summaries, plots and report from its files."""
    from experiments import tuning_report

    for name in (TUNING_FILE, RESULTS_FILE):
        if not (out / name).is_file():
            raise cli.UsageError(f"--replot {out}: no {name} there yet")
    seeds = int(pd.read_csv(out / RESULTS_FILE)["seed"].nunique())
    settings = check_settings(args, problems, optimizers, seeds)
    print(tuning_report.make_outputs(out, settings, info))
    print(f"re-plotted {out}")
    return 0
