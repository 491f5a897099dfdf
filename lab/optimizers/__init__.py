"""Optimisers written from first principles as ``keras.optimizers.Optimizer`` subclasses.

Each Keras built-in's twin is a drop-in replacement for the class of the same name (same
constructor arguments and defaults, same trajectory), with the variants the notebooks use as
explicit arguments: ``SGD(momentum_style=...)`` and ``Adam(epsilon_placement=...)``.

Beyond Keras, each checked against its paper's reference implementation or PyTorch: ``RAdam``
(``torch.optim.RAdam``), ``NAdamW`` (AlgoPerf's baseline; ``torch.optim.NAdam`` with
``decoupled_weight_decay``), ``Prodigy`` (``prodigyopt``) and ``ScheduleFreeSGD``
(``schedulefree``).
"""

from lab.optimizers.adadelta import Adadelta
from lab.optimizers.adafactor import Adafactor
from lab.optimizers.adagrad import Adagrad
from lab.optimizers.adam import Adam, AdamW
from lab.optimizers.adamax import Adamax
from lab.optimizers.ftrl import Ftrl
from lab.optimizers.lamb import Lamb
from lab.optimizers.lion import Lion
from lab.optimizers.muon import Muon
from lab.optimizers.nadam import Nadam
from lab.optimizers.nadamw import NAdamW
from lab.optimizers.prodigy import Prodigy
from lab.optimizers.radam import RAdam
from lab.optimizers.rmsprop import RMSprop
from lab.optimizers.schedule_free import ScheduleFreeSGD
from lab.optimizers.schedule_free_adamw import ScheduleFreeAdamW
from lab.optimizers.sgd import SGD

__all__ = [
    # Keras's built-ins' twins
    "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Nadam", "Lion",
    "Adadelta", "Adamax", "Ftrl", "Lamb", "Adafactor", "Muon", "ScheduleFreeAdamW",
    # beyond Keras
    "RAdam", "NAdamW", "Prodigy", "ScheduleFreeSGD",
]
