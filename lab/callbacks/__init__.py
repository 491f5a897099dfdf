"""Drop-in Keras callbacks for training with the lab's optimizers and schedules (or Keras's).

    ReduceLROnPlateau     Keras's, plus threshold_mode and support for LearningRateSchedules
    EarlyStopping         Keras's, restoring at the last epoch too, optionally the optimizer state
    LRFinder, find_lr     the learning-rate range test and its result (LRFinderResult)
    TrainingDiagnostics   per-step learning rate, gradient norm and update ratios for TensorBoard

Callbacks that would fight over the learning rate are detected at the start of training
(:mod:`lab.callbacks.conflicts`).

Import them as ``from lab.callbacks import ...``, which no module of a user's project can shadow;
the top-level ``callbacks`` package re-exports the same names under the short path.
"""

from lab.callbacks.conflicts import LearningRateConflictWarning, learning_rate_conflicts
from lab.callbacks.diagnostics import TrainingDiagnostics
from lab.callbacks.early_stopping import EarlyStopping
from lab.callbacks.lr_finder import LRFinder, LRFinderResult, find_lr
from lab.callbacks.plateau import LearningRateChange, ReduceLROnPlateau

__all__ = [
    "EarlyStopping",
    "LearningRateChange",
    "LearningRateConflictWarning",
    "LRFinder",
    "LRFinderResult",
    "ReduceLROnPlateau",
    "TrainingDiagnostics",
    "find_lr",
    "learning_rate_conflicts",
]
