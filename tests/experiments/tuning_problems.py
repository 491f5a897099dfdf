"""Problems for the fair protocol's tests, by import path (``--problems tests.experiments.tuning_problems:POISONED``)."""

from __future__ import annotations

import dataclasses

from lab import datasets
from lab.problems import PROBLEMS


def poisoned_moons() -> datasets.Split:
    """moons with every test label flipped: a protocol that selected on the test set would notice."""
    split = PROBLEMS["moons"].split()
    return split._replace(y_test=1 - split.y_test)


# the same name as moons, so the two runs' tuning.csv compare row by row
POISONED = dataclasses.replace(PROBLEMS["moons"], data=poisoned_moons)
