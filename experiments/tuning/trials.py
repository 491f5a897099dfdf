"""The protocol's trials: a queued Optuna trial becomes a grid trial (seed 0, the held-out
protocol), is trained, and its outcome is told to Optuna; ``work`` takes trials until none is
queued: a study's queued trials at once, trained as one vectorised group (``run_group``), where
they can be, else one at a time on the ``fit`` path (``run_trial``)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np

from experiments.grid import CHECKPOINTS, TENSORBOARD, DataCache, Trial, train_trial, trains_in_groups
from experiments.tuning.settings import TRIAL_SEED, Pair, Settings
from experiments.tuning.studies import (
    Heartbeat,
    Studies,
    finished_count,
    pending_count,
    quiet_optuna,
    retry_running_trials,
    space_distributions,
    take_trials,
    trial_id,
)
from lab.search_spaces import SearchSpace


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


def _sampled_arguments(optuna_trial, pair: Pair) -> dict[str, float]:
    """The optimiser's arguments of a queued trial (its enqueued point, suggested again)."""
    sampled = {name: optuna_trial.suggest_float(name, d.low, d.high, log=d.log)
               for name, d in space_distributions(pair.space).items()}
    return hyperparameters(pair.space, sampled)


def run_trial(storage, optuna_trial, pair: Pair, settings: Settings, out: Path, data: DataCache) -> str:
    """Train one tuning trial alone (``train_trial``, the ``fit`` path) and tell Optuna its
    outcome; its status."""
    index = int(optuna_trial.user_attrs["index"])
    arguments = _sampled_arguments(optuna_trial, pair)
    flag = {"pruned": False}
    callbacks = _pruning_callbacks(optuna_trial, pair.monitor, flag) if settings.prune else None
    trial = trial_of(pair, index, arguments, settings, callbacks)
    identifier = trial_id(storage, optuna_trial.study, optuna_trial.number)
    try:
        with Heartbeat(storage, [identifier]):
            rows, _ = train_trial(trial, data(pair.problem), out, tensorboard=settings.tensorboard)
    except BaseException:
        # leave nothing RUNNING behind: the trial is queued again, as a killed one would be
        retry_running_trials(storage, optuna_trial.study, [identifier])
        raise
    return _tell(optuna_trial, pair, settings, out, trial, arguments, rows, flag["pruned"])


def run_group(storage, optuna_trials, pair: Pair, settings: Settings, out: Path, data: DataCache) -> list[str] | None:
    """Train tuning trials of one study as one vectorised program (``experiments.grid.train_group``,
    the sampled hyperparameters held per run) and tell Optuna each outcome; their statuses, or
    ``None`` when they cannot share a program (they are still this process's, untrained).

    With ``--prune halving`` each member reports its epoch and asks the pruner after it, in
    lockstep: member ``k`` at epoch ``e`` then sees exactly what it sees when the trials train one
    after another (the rung's values of the members before it, none after it), so the decisions
    are the same. A pruned member stops there (``train_runs``' ``should_stop``)."""
    from experiments.grid import auto_mode, train_group

    optuna = quiet_optuna()
    study = optuna_trials[0].study
    arguments = [_sampled_arguments(t, pair) for t in optuna_trials]
    trials = [trial_of(pair, int(t.user_attrs["index"]), a, settings) for t, a in zip(optuna_trials, arguments)]
    per_run = [d.name for d in pair.space if d.name != "learning_rate"]
    mode = auto_mode(per_run) if settings.vectorize == "auto" else settings.vectorize
    pruned = [False] * len(trials)

    def should_stop(member: int, row: dict) -> bool:
        value = row.get(pair.monitor)
        if settings.prune is None or value is None or not np.isfinite(value):
            return False
        optuna_trials[member].report(float(value), int(row["epoch"]))
        pruned[member] = optuna_trials[member].should_prune()
        return pruned[member]

    identifiers = [trial_id(storage, study, t.number) for t in optuna_trials]
    label = f"{pair.problem.name} {pair.optimizer}: trials {trials[0].labels[-1][1]}-{trials[-1].labels[-1][1]}"
    try:
        with Heartbeat(storage, identifiers):
            trained = train_group(trials, data, out, label=label, progress=settings.progress,
                                  tensorboard=settings.tensorboard, mode=mode, per_run=per_run, should_stop=should_stop)
    except BaseException:
        retry_running_trials(storage, study, identifiers)
        raise
    if trained is None:
        return None
    return [_tell(optuna_trial, pair, settings, out, trial, a, rows, was_pruned)
            for optuna_trial, trial, a, (rows, _), was_pruned in zip(optuna_trials, trials, arguments, trained, pruned)]


def _tell(optuna_trial, pair: Pair, settings: Settings, out: Path, trial, arguments: dict, rows, pruned: bool) -> str:
    """Record a trained trial's outcome in its user attributes, its TensorBoard session, and tell
    Optuna; its status."""
    optuna = quiet_optuna()
    index = int(optuna_trial.user_attrs["index"])
    last = rows.iloc[-1]
    score = float(last[pair.monitor]) if pair.monitor in rows else float("nan")
    status = "diverged" if last["status"] == "diverged" else ("pruned" if pruned else "ok")
    for key, value in {"status": status, "score": score if np.isfinite(score) else None,
                       "epochs": int(last["epoch"]), "seconds": float(last["seconds"]),
                       "worker": f"{socket.gethostname()}:{os.getpid()}", **{f"value_{k}": v for k, v in arguments.items()}
                       }.items():
        optuna_trial.set_user_attr(key, value)
    if settings.tensorboard:
        from experiments import hparams

        hparams.write_session(out / TENSORBOARD / trial.folder, {"stage": "tuning", "problem": pair.problem.name,
                              "optimizer": pair.optimizer, "trial": index, **arguments})
    study = optuna_trial.study
    if status == "ok" and np.isfinite(score):
        study.tell(optuna_trial, score)
    elif status == "pruned":
        study.tell(optuna_trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(optuna_trial, state=optuna.trial.TrialState.FAIL)
    shutil.rmtree(out / CHECKPOINTS / trial.folder, ignore_errors=True)
    return status


def _groups_allowed(settings: Settings) -> bool:
    """Whether this run's trials may train as vectorised groups: ``--vectorize`` not off, JAX, and
    no median pruner (it compares a trial with the finished ones, and a group's members finish
    together, so in a group it could not decide as it does one trial after another)."""
    from experiments.grid import can_vectorize

    return settings.vectorize != "off" and settings.prune != "median" and can_vectorize()


def work(settings: Settings, studies: Studies, out: Path, *, wait: bool) -> int:
    """Take and run queued trials, study after study, until none is queued (and with ``wait``,
    until no trial of any study is still running elsewhere). Where they can, all the queued
    trials of a study are taken at once and trained as one vectorised group; otherwise (a model
    that trains faster alone, or trials that turn out not to fit one program) one at a time. The
    number this process ran."""
    from tqdm import tqdm

    optuna = quiet_optuna()
    data = DataCache()
    storage = studies.storage
    total = (settings.budget or 0) * len(settings.pairs)
    grouped = _groups_allowed(settings)
    ran = 0
    with tqdm(total=total, desc="tuning trials", unit="trial", disable=not settings.progress, file=sys.stderr) as bar:

        def show(pair: Pair, statuses: list[str]) -> None:
            bar.n = sum(finished_count(studies.studies[p.study_name]) for p in settings.pairs)
            counts = {status: statuses.count(status) for status in dict.fromkeys(statuses)}
            bar.set_postfix_str(f"{pair.problem.name} {pair.optimizer}: "
                                + ", ".join(f"{n} {status}" for status, n in counts.items()))
            bar.refresh()

        while True:
            for pair in settings.pairs:
                study = studies.studies[pair.study_name]
                optuna.storages.fail_stale_trials(study)
                together = grouped and trains_in_groups(pair.problem)
                while taken := take_trials(storage, study, limit=None if together else 1):
                    statuses = run_group(storage, taken, pair, settings, out, data) if together else None
                    if statuses is None:
                        statuses = [run_trial(storage, t, pair, settings, out, data) for t in taken]
                    ran += len(taken)
                    show(pair, statuses)
            if not wait or all(pending_count(studies.studies[p.study_name]) == 0 for p in settings.pairs):
                return ran
            time.sleep(1.0)  # trials of other processes are running; one of them may die
