"""The protocol's Optuna side: the storage, one study per problem x optimiser, the plan of queued
trials, and taking, retrying and counting them.

The plan is the first N points of the seeded, scrambled Sobol sequence, queued in the study when
it is created, so the budget is exact and does not depend on how many processes take trials.
Taking a trial is Optuna's atomic WAITING -> RUNNING transition in the storage; a running trial
beats a heartbeat, and a trial whose process died is queued again under its index."""

from __future__ import annotations

import json
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments import cli
from experiments.tuning.settings import SAMPLER_SEED, Pair, Settings
from lab.search_spaces import SearchSpace

STORAGE_FILE = "tuning.db"
HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 120  # seconds without one before the trial is presumed dead
SCHEMA_RACE_RETRIES = 10  # openings of a new storage that another worker is creating at the same moment
PLAN_TIMEOUT = 600  # seconds a worker waits for the chief to queue the trials
SETTINGS_TIMEOUT = 60  # seconds a process waits for the chief to write a study's settings after creating it


def quiet_optuna():
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
    optuna = quiet_optuna()
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(SCHEMA_RACE_RETRIES + 1):
        try:
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    inherit_intermediate_values=True),
            )
            if url.startswith("sqlite"):
                _begin_sqlite_transactions_immediately(storage.engine)
            return storage
        except Exception as error:  # SQLAlchemy's and Optuna's errors alike: the URL is what is wrong
            if attempt < SCHEMA_RACE_RETRIES and _lost_schema_race(error):
                time.sleep(0.1 * (attempt + 1))
                continue
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise cli.UsageError(f"--storage {url}: cannot open it: {first}") from None


def _begin_sqlite_transactions_immediately(engine) -> None:
    """Make each of ``engine``'s SQLite transactions take the database's write lock when it begins.

    Python's sqlite3 driver begins a transaction only at its first write, so Optuna's claim of a
    queued trial (read the state WAITING, write RUNNING: ``set_trial_state_values``, whose
    ``SELECT ... FOR UPDATE`` SQLite ignores) is not atomic: two processes can both read WAITING
    and both take the trial (measured: three processes claiming 150 queued trials one by one
    took 8 to 10 of them twice; ``tests/experiments/test_claiming_trials.py``). ``BEGIN
    IMMEDIATE`` serialises such read-then-write transactions, as PostgreSQL's row lock does.
    SQLAlchemy's documented recipe for the pysqlite driver ("Serializable isolation / Savepoints /
    Transactional DDL"); the connections opened before it are closed."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy, not the driver, begins transactions

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()


def _lost_schema_race(error: Exception) -> bool:
    """Whether ``error`` says another process created the storage's schema at the same time."""
    from sqlalchemy import exc

    message = str(error).lower()
    if isinstance(error, exc.OperationalError):
        return "already exists" in message
    return isinstance(error, exc.IntegrityError) and ("unique" in message or "duplicate" in message)


def space_distributions(space: SearchSpace) -> dict[str, Any]:
    import optuna

    distributions = {}
    for dimension in space:
        low, high, log = dimension.sampled_range()
        distributions[dimension.sampled_name] = optuna.distributions.FloatDistribution(low, high, log=log)
    return distributions


def make_sampler():
    optuna = quiet_optuna()
    return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=SAMPLER_SEED,
                                      warn_independent_sampling=False)


def plan(space: SearchSpace, budget: int) -> list[dict[str, float]]:
    """The budget's points: the first ``budget`` points of the seeded, scrambled Sobol sequence
    of ``QMCSampler`` over ``space`` (what the sampler draws: ``Dimension.sampled_name``).

    Drawn in an in-memory study. A first finished trial that only declares the search space
    makes the sampler use the sequence from the first point on (without it, Optuna draws the
    first trial at random, since the search space is not known yet)."""
    optuna = quiet_optuna()
    distributions = space_distributions(space)
    study = optuna.create_study(sampler=make_sampler())
    study.add_trial(optuna.trial.create_trial(
        params={name: d.low for name, d in distributions.items()}, distributions=distributions, value=0.0))
    points = []
    for _ in range(budget):
        trial = study.ask(distributions)
        points.append(dict(trial.params))
        study.tell(trial, 0.0)
    return points


def make_pruner(name: str | None, epochs: int):
    """Optuna's pruner of ``--prune``: the median pruner, or successive halving with its first
    rung at ``max(1, epochs // 100)`` epochs. That is the rung ``min_resource="auto"`` settles
    on once a first trial has run all ``epochs``; set up front, it lets the members of a
    vectorised group, which report their epochs in lockstep, get the decisions they get one
    after another (``experiments.tuning.trials``)."""
    optuna = quiet_optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, epochs // 100))
    return optuna.pruners.NopPruner()


def direction(pair: Pair) -> str:
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
    study of this name with other settings.

    The process that creates the first study is the chief and creates the others; a process
    that finds the first one there only loads them, waiting for the chief where it has not
    created or planned one yet. (Were every process to create what it does not find, a joining
    process could create a later study before the chief and leave it without its settings for
    a moment, which the chief would read as other settings.)"""
    optuna = quiet_optuna()
    storage = open_storage(url)
    studies: dict[str, Any] = {}
    chief = resume
    for position, pair in enumerate(settings.pairs):
        arguments = dict(study_name=pair.study_name, storage=storage, sampler=make_sampler(),
                         pruner=make_pruner(settings.prune, settings.epochs or pair.problem.epochs),
                         direction=direction(pair))
        study, created = None, False
        if chief or position == 0:
            try:
                study = optuna.create_study(**arguments, load_if_exists=False)
                created = True
            except optuna.exceptions.DuplicatedStudyError:
                pass
        if study is None:
            study = _load_study(arguments, wait=not chief)
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
                retry_running(storage, study)
        studies[pair.study_name] = study
    if not chief:
        for pair in settings.pairs:
            _wait_for_plan(studies[pair.study_name])
    return Studies(storage, url, studies, chief)


def _load_study(arguments: dict, wait: bool):
    """The study of ``arguments`` (``create_study``'s); with ``wait``, once the chief has created it."""
    optuna = quiet_optuna()
    deadline = time.monotonic() + (PLAN_TIMEOUT if wait else 0)
    while True:
        try:
            return optuna.load_study(study_name=arguments["study_name"], storage=arguments["storage"],
                                     sampler=arguments["sampler"], pruner=arguments["pruner"])
        except KeyError:  # not created yet
            if time.monotonic() > deadline:
                raise cli.UsageError(f"study {arguments['study_name']!r}: the chief has not created it in "
                                     f"{PLAN_TIMEOUT} s") from None
            time.sleep(0.5)


def check_existing_studies(settings: Settings, url: str) -> None:
    """``UsageError`` when the storage cannot be opened or holds one of the run's studies with
    other settings (another budget, another search space...)."""
    optuna = quiet_optuna()
    storage = open_storage(url)
    names = {summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    for pair in settings.pairs:
        if pair.study_name in names:
            study = optuna.load_study(study_name=pair.study_name, storage=storage)
            _check_study(study, settings.study_attributes(pair), url, wait=True)


def _check_study(study, expected: dict, url: str, wait: bool) -> None:
    """``UsageError`` when ``study``'s settings differ from ``expected``. With ``wait``, settings
    not written yet are waited for (a chief that has just created the study is writing them, one
    by one) up to ``SETTINGS_TIMEOUT``; a setting still missing then counts as different."""
    deadline = time.monotonic() + (SETTINGS_TIMEOUT if wait else 0)
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


def trial_id(storage, study, number: int) -> int:
    """The storage's id of trial ``number`` of ``study`` (Optuna's public way to it)."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), number)


def retry_running(storage, study) -> list[int]:
    """Mark every RUNNING trial FAIL and queue its parameters again (same index, same
    intermediate values): what Optuna's heartbeat does to a stale trial, without waiting for the
    grace period. The indices retried."""
    optuna = quiet_optuna()
    retried = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if _fail_and_queue_again(storage, study, trial_id(storage, study, trial.number)):
            retried.append(trial.user_attrs.get("index"))
    return retried


def retry_running_trials(storage, study, trial_ids) -> None:
    """Queue trials this process cannot finish (an exception, Ctrl-C) again, as stale ones."""
    try:
        for identifier in trial_ids:
            _fail_and_queue_again(storage, study, identifier)
    except Exception:  # the storage itself may be what failed; --resume retries RUNNING trials
        pass


def _fail_and_queue_again(storage, study, identifier: int) -> bool:
    import copy

    optuna = quiet_optuna()
    try:
        if not storage.set_trial_state_values(identifier, state=optuna.trial.TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    storage.get_heartbeat_stale_trial_callback()(study, copy.deepcopy(storage.get_trial(identifier)))
    return True


def take_trials(storage, study, limit: int | None = None) -> list:
    """Up to ``limit`` queued trials of ``study``, now RUNNING and this process's, in queue
    order. Each is Optuna's WAITING -> RUNNING transition, atomic on SQLite too (``open_storage``),
    so processes sharing the storage never take one trial twice. Never creates a trial: the
    budget is the queue.

    ``limit=None`` takes a vectorised group: the study's queued trials, whole. A study with a
    trial RUNNING is another process's group (or a dead process's, until it is retried) and is
    left to it; the first queued trial is the claim, and a process that loses it to another
    leaves the study too. So two processes never split a study's trials between them, and a
    group is the same set of trials however many processes share the storage."""
    optuna = quiet_optuna()
    group = limit is None
    states = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING) if group else (
        optuna.trial.TrialState.WAITING,)
    candidates = study.get_trials(deepcopy=False, states=states)
    if group and any(t.state == optuna.trial.TrialState.RUNNING for t in candidates):
        return []
    taken = []
    for frozen in candidates:
        if limit is not None and len(taken) >= limit:
            break
        identifier = trial_id(storage, study, frozen.number)
        try:
            claimed = storage.set_trial_state_values(identifier, state=optuna.trial.TrialState.RUNNING)
        except optuna.exceptions.UpdateFinishedTrialError:
            claimed = False
        if claimed:
            taken.append(optuna.Trial(study, identifier))
        elif group and not taken:  # another process claimed the group first
            return []
    return taken


def take_trial(storage, study):
    """A queued trial of ``study``, now RUNNING and this process's, or ``None`` when none is queued."""
    taken = take_trials(storage, study, limit=1)
    return taken[0] if taken else None


class Heartbeat:
    """Records running trials' heartbeats every ``HEARTBEAT_INTERVAL`` seconds in a thread."""

    def __init__(self, storage, trial_ids) -> None:
        self.storage, self.trial_ids = storage, list(trial_ids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while True:
            for identifier in self.trial_ids:
                self.storage.record_heartbeat(identifier)
            if self._stop.wait(HEARTBEAT_INTERVAL):
                return

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


def pending_count(study) -> int:
    optuna = quiet_optuna()
    states = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def counted_trials(study) -> list:
    """The finished trials that count against the budget, by index: every finished trial with an
    outcome, except an attempt that was queued again (a killed or stale one)."""
    trials = study.get_trials(deepcopy=False)
    retried = {number for trial in trials for number in trial.system_attrs.get("retry_history", [])}
    counted = [t for t in trials if t.state.is_finished() and "status" in t.user_attrs and t.number not in retried]
    return sorted(counted, key=lambda t: (t.user_attrs["index"], t.number))


def finished_count(study) -> int:
    return len(counted_trials(study))
