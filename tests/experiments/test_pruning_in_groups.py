"""``--prune halving`` inside vectorised tuning groups: the members report their epochs in
lockstep and a pruned member stops there, so the pruner's decisions are the ones it makes when the
same trials train one after another on the ``fit`` path (``--vectorize off``)."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from tests.experiments.processes import run_compare_here

pytestmark = [
    pytest.mark.backend_agnostic,
    pytest.mark.skipif(keras.backend.backend() != "jax", reason="vectorised groups are JAX only"),
    pytest.mark.slow,
]

# moons, 8 trials of SGD with momentum of 12 full-batch epochs: successive halving's rungs at
# epochs 1 and 4 (reduction factor 4) prune most of them
ARGUMENTS = ["--problems", "moons", "--optimizers", "momentum", "--epochs", "12", "--seeds", "1", "--tune", "8",
             "--prune", "halving", "--no-progress", "--no-tensorboard"]  # fmt: skip
RELATIVE = 1e-4  # the group's tolerance against lone runs (tests/experiments/test_vectorized_trials.py)


def _tuning(out, vectorize: str) -> pd.DataFrame:
    run_compare_here(*ARGUMENTS, "--vectorize", vectorize, "--out", out)
    return pd.read_csv(out / "tuning.csv")


def test_halving_prunes_the_members_of_a_group_as_it_prunes_lone_trials(tmp_path):
    grouped, alone = _tuning(tmp_path / "map", "map"), _tuning(tmp_path / "off", "off")
    assert grouped["trial"].tolist() == alone["trial"].tolist() == list(range(8))
    # the same decisions: which trials were pruned, and at which epoch each stopped
    assert grouped["status"].tolist() == alone["status"].tolist()
    assert grouped["epochs"].tolist() == alone["epochs"].tolist()
    assert (grouped["status"] == "pruned").sum() >= 2 and (grouped["status"] == "ok").any()
    assert set(grouped.loc[grouped["status"] == "pruned", "epochs"]) <= {1, 4}  # the rungs
    np.testing.assert_allclose(grouped["val_accuracy"], alone["val_accuracy"], rtol=RELATIVE)
