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

import importlib

# Where each public name lives. The command (``run``, ``replot``) imports Keras and the training
# code; it is loaded on first use, so a process that only claims trials or reads a storage
# (``experiments.tuning.studies``) starts without Keras.
_PUBLIC = {"add_arguments": "settings", "requested": "settings", "replot": "command", "run": "command"}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
