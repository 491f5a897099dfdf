"""The lab's Keras callbacks under their short name: ``from callbacks import find_lr``.

The code lives in :mod:`lab.callbacks`; this package re-exports its public names, so both paths
give the same classes. In a project that has a ``callbacks`` module of its own (a common name),
that module shadows this package: import ``from lab.callbacks import ...`` there, as the lab's own
code does.
"""

from lab.callbacks import *  # noqa: F401,F403 -- the public names, listed in lab.callbacks.__all__
from lab.callbacks import __all__  # noqa: F401
