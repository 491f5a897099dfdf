"""The fair protocol's trials as vectorised groups: runs that differ in every hyperparameter their
search space samples (``experiments.vectorized.train_runs`` with ``per_run``), against each run
trained alone by ``experiments.training.train_run``.

For every optimiser of ``lab.registry``, the first three points of its search space's Sobol plan
(``experiments.tuning.studies.plan``, the points ``--tune 3`` trains) train as one group in both
modes, ``map`` and ``vmap``, on an MNIST subset; every row's loss, accuracy and validation numbers
must be within ``RELATIVE`` of the run alone. Not bit for bit: in the group a hyperparameter is a
float32 variable, so ``1 - beta`` is computed in float32 from the rounded ``beta``, where the
optimiser alone folds the Python float's ``1 - beta`` into its program (one rounding against two);
``vmap`` also sums the batched matrix products in another order. The worst difference measured
is about 2e-5 over these tests; ``RELATIVE`` leaves a margin.
JAX only: the tests skip elsewhere.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from experiments import vectorized
from experiments.training import train_run
from experiments.tuning.studies import plan
from experiments.tuning.trials import hyperparameters
from lab import datasets, models, registry
from lab.search_spaces import space_for

pytestmark = [
    pytest.mark.backend_agnostic,
    pytest.mark.skipif(keras.backend.backend() != "jax", reason="vectorised training is JAX only"),
]

RELATIVE = 1e-4
NUMBERS = ["loss", "accuracy", "val_loss", "val_accuracy"]
TRIALS = 3
# optimisers whose update reads a sampled hyperparameter as a Python number: their trials train alone
ALONE = {"radam": "its rectification's constants are float64 functions of beta_2"}


@pytest.fixture(scope="module")
def mnist_small() -> datasets.Split:
    # 256 training images (4 steps of 64), 64 validation images
    return datasets.mnist_arrays(subset=320).hold_out_last(64)


def trial_arguments(name: str) -> list[dict[str, float]]:
    space = space_for(name)
    return [hyperparameters(space, point) for point in plan(space, TRIALS)]


def per_run_of(name: str) -> list[str]:
    return [d.name for d in space_for(name) if d.name != "learning_rate"]


def train_group(name, arguments, data, mode):
    keras.backend.clear_session()
    return vectorized.train_runs(
        [models.mnist_mlp(0) for _ in arguments], [registry.build_optimizer(name, **a) for a in arguments], data,
        epochs=2, batch_size=64, seeds=[0] * len(arguments), steps_per_execution=2, per_run=per_run_of(name),
        mode=mode)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(registry.OPTIMIZERS) - set(ALONE)))
def test_trials_of_every_optimizer_train_as_one_group_within_the_tolerance(name, mnist_small):
    arguments = trial_arguments(name)
    alone = []
    for a in arguments:
        keras.backend.clear_session()
        alone.append(train_run(models.mnist_mlp(0), registry.build_optimizer(name, **a), mnist_small, epochs=2,
                               batch_size=64, seed=0, steps_per_execution=2))
    for mode in vectorized.MODES:
        for grouped, single in zip(train_group(name, arguments, mnist_small, mode), alone):
            assert grouped["status"].tolist() == single["status"].tolist(), mode
            finite = single["status"].eq("ok").to_numpy()
            for column in NUMBERS:
                np.testing.assert_allclose(grouped[column][finite], single[column][finite], rtol=RELATIVE,
                                           err_msg=f"{mode} {column}")
    # the trials differ: the hyperparameters reached the program
    assert len({frame["loss"].iloc[-1] for frame in alone}) == TRIALS


@pytest.mark.parametrize("name", sorted(ALONE))
def test_an_optimizer_that_cannot_hold_its_hyperparameters_per_run_is_refused(name, mnist_small):
    with pytest.raises(vectorized.IncompatibleRuns, match="cannot hold"):
        train_group(name, trial_arguments(name), mnist_small, "map")


def test_without_per_run_hyperparameters_runs_differing_in_them_do_not_share_a_program(mnist_small):
    adam = [registry.build_optimizer("adam", **a) for a in trial_arguments("adam")]
    with pytest.raises(vectorized.IncompatibleRuns, match="differ in more than learning_rate"):
        vectorized.train_runs([models.mnist_mlp(0) for _ in adam], adam, mnist_small, epochs=1, batch_size=64,
                              seeds=[0] * len(adam))
    momentum = [registry.build_optimizer("momentum", momentum=m) for m in (0.0, 0.9)]
    # a momentum of 0 builds no velocity slots: only runs of one sign share a program
    assert (vectorized.optimizer_signature(momentum[0], ["momentum"])
            != vectorized.optimizer_signature(momentum[1], ["momentum"]))
