"""Drop-in Keras callbacks for training with the lab's optimizers and schedules (or Keras's).

    ReduceLROnPlateau     Keras's, plus threshold_mode and support for LearningRateSchedules
    EarlyStopping         Keras's, optionally restoring the optimizer state too
    LRFinder, find_lr     the learning-rate range test, its result and all its Suggestions
    TrainingDiagnostics   per-step learning rate, gradient norm and update ratios for TensorBoard
    AveragedWeights       evaluate and save the optimizer's averaged weights (EMA, schedule-free)
    check_callbacks       warn when callbacks of one fit fight over the learning rate

Import them as ``from lab.callbacks import ...``, which no module of a user's project can shadow;
the top-level ``callbacks`` package re-exports the same names under the short path.
"""

from lab.callbacks.averaged_weights import AveragedWeights
from lab.callbacks.conflicts import LearningRateConflictWarning, check_callbacks, learning_rate_conflicts
from lab.callbacks.diagnostics import TrainingDiagnostics
from lab.callbacks.early_stopping import EarlyStopping
from lab.callbacks.lr_finder import LRFinder, LRFinderResult, Suggestions, find_lr
from lab.callbacks.plateau import LearningRateChange, ReduceLROnPlateau

__all__ = [
    "AveragedWeights",
    "EarlyStopping",
    "LearningRateChange",
    "LearningRateConflictWarning",
    "LRFinder",
    "LRFinderResult",
    "ReduceLROnPlateau",
    "Suggestions",
    "TrainingDiagnostics",
    "check_callbacks",
    "find_lr",
    "learning_rate_conflicts",
]
