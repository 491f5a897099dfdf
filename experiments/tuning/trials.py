"""The protocol's trials: a queued Optuna trial becomes a grid trial (seed 0, the held-out
protocol), is trained, and its outcome is told to Optuna; ``work`` takes trials until none is
queued."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np

from experiments.grid import CHECKPOINTS, TENSORBOARD, DataCache, Trial, train_trial
from experiments.tuning.settings import TRIAL_SEED, Pair, Settings
from experiments.tuning.studies import (
    Heartbeat,
    Studies,
    finished_count,
    pending_count,
    quiet_optuna,
    retry_running_trial,
    space_distributions,
    take_trial,
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


def run_trial(optuna_trial, pair: Pair, settings: Settings, out: Path, data: DataCache, progress=None) -> str:
    """Train one tuning trial and tell Optuna its outcome; its status."""
    optuna = quiet_optuna()
    study = optuna_trial.study
    index = int(optuna_trial.user_attrs["index"])
    sampled = {name: optuna_trial.suggest_float(name, d.low, d.high, log=d.log)
               for name, d in space_distributions(pair.space).items()}
    arguments = hyperparameters(pair.space, sampled)
    flag = {"pruned": False}
    callbacks = _pruning_callbacks(optuna_trial, pair.monitor, flag) if settings.prune else None
    trial = trial_of(pair, index, arguments, settings, callbacks)
    try:
        with Heartbeat(study._storage, optuna_trial._trial_id):
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


def work(settings: Settings, studies: Studies, out: Path, *, wait: bool) -> int:
    """Take and run queued trials, study after study, until none is queued (and with ``wait``,
    until no trial of any study is still running elsewhere). The number this process ran."""
    from tqdm import tqdm

    optuna = quiet_optuna()
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
                    bar.n = sum(finished_count(studies.studies[p.study_name]) for p in settings.pairs)
                    bar.set_postfix_str(f"{pair.problem.name} {pair.optimizer}: {status}")
                    bar.refresh()
            if not wait or all(pending_count(studies.studies[p.study_name]) == 0 for p in settings.pairs):
                return ran
            time.sleep(1.0)  # trials of other processes are running; one of them may die
