"""Optimisers written from first principles as ``keras.optimizers.Optimizer`` subclasses.

Each is a drop-in replacement for the Keras built-in of the same name (same constructor
arguments and defaults, same trajectory), with the variants the notebooks use as explicit
arguments: ``SGD(momentum_style=...)`` and ``Adam(epsilon_placement=...)``.
"""

from lab.optimizers.adagrad import Adagrad
from lab.optimizers.adam import Adam, AdamW
from lab.optimizers.lion import Lion
from lab.optimizers.nadam import Nadam
from lab.optimizers.rmsprop import RMSprop
from lab.optimizers.sgd import SGD

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Nadam", "Lion"]

# The other Keras built-ins' twins.
from lab.optimizers.adadelta import Adadelta  # noqa: E402
from lab.optimizers.adafactor import Adafactor  # noqa: E402
from lab.optimizers.adamax import Adamax  # noqa: E402
from lab.optimizers.ftrl import Ftrl  # noqa: E402
from lab.optimizers.lamb import Lamb  # noqa: E402
from lab.optimizers.muon import Muon  # noqa: E402
from lab.optimizers.schedule_free_adamw import ScheduleFreeAdamW  # noqa: E402

__all__ += ["Adadelta", "Adamax", "Ftrl", "Lamb", "Adafactor", "Muon", "ScheduleFreeAdamW"]
