"""experiments.vectorized.train_runs against experiments.training.train_run, run by run.

Every row of a vectorised group (loss, metrics, validation, learning rate, status) must equal the
row ``train_run`` gives the same run alone to 1e-5 relative; on this backend they agree bit for
bit, the tolerance is what the task allows. Each optimiser's comparison is a group of three runs
(two seeds at one learning rate, a third seed at another) against the same runs trained alone:
every optimiser of ``lab.registry`` on an MNIST subset, and SGD with and without momentum and
Adam on moons, whose paths (full batch, a partial last batch) are the optimisers' same code.
The groups of the schedule, divergence and resume tests are 3 seeds x 2 rates. JAX only: the
tests skip elsewhere.

The module runs with JAX's persistent compilation cache in pytest's cache folder: the six
``train_run`` references of a comparison are one program (the learning rate is a variable),
compiled once and loaded five times, and a later run of the suite loads every program.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from experiments import vectorized
from experiments.grid import Trial, run_grid
from experiments.training import load_checkpoint_state, train_run
from lab import datasets, models, registry, schedules
from lab.optimizers import SGD, Adam, RMSprop
from lab.problems import protocol_view, resolve
from tests.experiments.processes import sigkill_when_written

pytestmark = [
    pytest.mark.backend_agnostic,
    pytest.mark.skipif(keras.backend.backend() != "jax", reason="vectorised training is JAX only"),
]

ROOT = Path(__file__).resolve().parents[2]
RELATIVE = 1e-5
NUMBERS = ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]
SEEDS = (0, 1, 2)
# two learning rates of each optimiser's scale: these, else half its registry default and the default
RATES = {
    "sgd": (0.05, 0.2),
    "momentum": (0.01, 0.05),
    "adagrad": (0.01, 0.1),
    "rmsprop": (0.001, 0.01),
    "adam": (0.001, 0.01),
    "adamw": (0.001, 0.01),
    "nadam": (0.001, 0.01),
    "lion": (0.0003, 0.001),
}


def rates_of(name: str) -> tuple[float, float]:
    if name in RATES:
        return RATES[name]
    default = registry.OPTIMIZERS[name].defaults["learning_rate"]
    return (default / 2, default)


@pytest.fixture(scope="module")
def compilation_cache_dir() -> Path:
    """The test run's folder (tests/conftest.py), shared by its workers and subprocesses."""
    return Path(os.environ["JAX_COMPILATION_CACHE_DIR"])


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(compilation_cache_dir):
    """JAX's persistent compilation cache in the test run's folder, then as it was."""
    import jax
    from jax._src import compilation_cache as cache

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    before = {name: getattr(jax.config, name) for name in names}
    jax.config.update("jax_compilation_cache_dir", str(compilation_cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    cache.reset_cache()
    yield
    for name, value in before.items():
        jax.config.update(name, value)
    cache.reset_cache()


@pytest.fixture(scope="module")
def moons() -> datasets.Split:
    return protocol_view(resolve("moons").split(), "notebook")


@pytest.fixture(scope="module")
def mnist_small() -> datasets.Split:
    # 256 training images (4 steps of 64), 64 validation images
    return datasets.mnist_arrays(subset=320).hold_out_last(64)


def assert_rows_equal(vectorised: pd.DataFrame, alone: pd.DataFrame, columns=NUMBERS) -> None:
    assert list(vectorised.columns) == list(alone.columns)
    assert vectorised["epoch"].tolist() == alone["epoch"].tolist()
    assert vectorised["status"].tolist() == alone["status"].tolist()
    for column in [c for c in columns if c in alone]:
        np.testing.assert_allclose(vectorised[column], alone[column], rtol=RELATIVE, atol=0, err_msg=column)


def _group(make, rates, data, build, *, epochs, batch_size, runs=None, **kwargs):
    """A vectorised group of ``runs`` ((seed, rate) pairs; default every seed at every rate) and
    the same runs trained alone."""
    runs = runs or [(seed, rate) for rate in rates for seed in SEEDS]
    keras.backend.clear_session()
    frames = vectorized.train_runs([build(seed) for seed, _ in runs], [make(rate) for _, rate in runs], data,
                                   epochs=epochs, batch_size=batch_size, seeds=[seed for seed, _ in runs], **kwargs)
    alone = []
    for seed, rate in runs:
        keras.backend.clear_session()
        alone.append(train_run(build(seed), make(rate), data, epochs=epochs, batch_size=batch_size, seed=seed,
                               **{k: v for k, v in kwargs.items() if k != "checkpoint_seconds"}))
    return frames, alone


def _registry_optimizer(name):
    return lambda rate: registry.build_optimizer(name, learning_rate=rate)


def _three_runs(rates) -> list[tuple[int, float]]:
    """Two seeds at the first rate and a third seed at the second: members that differ in each."""
    return [(SEEDS[0], rates[0]), (SEEDS[1], rates[0]), (SEEDS[2], rates[1])]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_a_group_equals_its_runs_alone_on_moons(name, moons):
    # 2 steps of 320 per epoch
    frames, alone = _group(_registry_optimizer(name), rates_of(name), moons, models.moons_net, epochs=3,
                           batch_size=320, runs=_three_runs(rates_of(name)))
    for vectorised, single in zip(frames, alone):
        assert_rows_equal(vectorised, single)
    # the runs differ: a group is not one run repeated
    assert len({frame["loss"].iloc[-1] for frame in frames}) == len(frames)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(registry.OPTIMIZERS))
def test_a_group_equals_its_runs_alone_on_an_mnist_subset(name, mnist_small):
    frames, alone = _group(_registry_optimizer(name), rates_of(name), mnist_small, models.mnist_mlp, epochs=2,
                           batch_size=64, steps_per_execution=2, runs=_three_runs(rates_of(name)))
    for vectorised, single in zip(frames, alone):
        assert_rows_equal(vectorised, single)
    assert len({frame["loss"].iloc[-1] for frame in frames}) == len(frames)


@pytest.mark.slow
def test_schedules_with_a_base_rate_per_run(moons):
    def make(rate):
        return Adam(schedules.WarmupCosine(peak_learning_rate=rate, warmup_steps=2, decay_steps=6,
                                           min_learning_rate=rate / 10))

    frames, alone = _group(make, (0.01, 0.03), moons, models.moons_net, epochs=6, batch_size=400)
    for vectorised, single in zip(frames, alone):
        assert_rows_equal(vectorised, single)
    assert frames[0]["learning_rate"].nunique() > 3  # the schedule moved the rate


@pytest.mark.slow
def test_a_diverging_run_stops_alone_and_leaves_its_neighbours_untouched(moons):
    rates = (0.05, 200.0)  # SGD at 200 blows the loss up within the first epochs
    frames, alone = _group(lambda rate: SGD(rate), rates, moons, models.moons_net, epochs=6, batch_size=200)
    for vectorised, single in zip(frames, alone):
        assert_rows_equal(vectorised, single)
    diverged = [frame for frame in frames if frame["status"].iloc[-1] == "diverged"]
    assert diverged and all(len(frame) < 6 for frame in diverged)
    # the healthy runs are those of a group without the diverging ones
    keras.backend.clear_session()
    healthy = vectorized.train_runs([models.moons_net(seed) for seed in SEEDS], [SGD(0.05) for _ in SEEDS], moons,
                                    epochs=6, batch_size=200, seeds=list(SEEDS))
    for with_neighbours, without in zip(frames[:3], healthy):
        pd.testing.assert_frame_equal(with_neighbours.drop(columns="seconds"), without.drop(columns="seconds"))


@pytest.mark.slow
def test_a_crashed_group_resumes_to_the_uninterrupted_rows(moons, tmp_path):
    folders = [tmp_path / f"run{seed}" for seed in SEEDS]

    def run(**kwargs):
        keras.backend.clear_session()
        return vectorized.train_runs([models.moons_net(seed) for seed in SEEDS],
                                     [RMSprop(0.01) for _ in SEEDS], moons, epochs=8, batch_size=300,
                                     seeds=list(SEEDS), **kwargs)

    def crash(index, row):
        if row["epoch"] == 5 and index == 2:
            raise RuntimeError("simulated crash")

    uninterrupted = run()
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(checkpoint_dirs=folders, checkpoint_seconds=0, on_epoch=crash)
    assert [load_checkpoint_state(folder)["epoch"] for folder in folders] == [4, 4, 4]
    resumed = run(checkpoint_dirs=folders, checkpoint_seconds=0)
    for a, b in zip(uninterrupted, resumed):
        pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    assert all(load_checkpoint_state(folder)["finished"] for folder in folders)
    # the checkpoints are train_run's: train_run reads a finished one back without training
    keras.backend.clear_session()
    again = train_run(models.moons_net(1), RMSprop(0.01), moons, epochs=8, batch_size=300, seed=1,
                      checkpoint_dir=folders[1])
    pd.testing.assert_frame_equal(again, resumed[1])


def test_incompatible_runs_are_refused_before_training(moons):
    with pytest.raises(vectorized.IncompatibleRuns, match="optimisers"):
        vectorized.train_runs([models.moons_net(0), models.moons_net(1)], [Adam(0.01), SGD(0.01)], moons,
                              epochs=1, batch_size=800, seeds=[0, 1])
    with pytest.raises(vectorized.IncompatibleRuns, match="architectures"):
        vectorized.train_runs([models.moons_net(0), models.digits_mlp(0)], [Adam(0.01), Adam(0.02)], moons,
                              epochs=1, batch_size=800, seeds=[0, 1])
    assert vectorized.optimizer_signature(keras.optimizers.Adam()) is None  # not one of the lab's
    assert vectorized.optimizer_signature(Adam(0.01)) == vectorized.optimizer_signature(Adam(0.3))
    assert vectorized.optimizer_signature(Adam(0.01)) != vectorized.optimizer_signature(Adam(0.01, beta_1=0.8))


def test_functional_models_of_one_architecture_share_a_program_whatever_keras_named_their_layers():
    """The transformer is a functional model, wired by layer names Keras numbers per process; two
    builds (other seeds, other names) are one architecture, another width is not."""
    first, second = models.char_transformer(0), models.char_transformer(1)
    assert [layer.name for layer in first.layers] != [layer.name for layer in second.layers]
    assert vectorized.group_structure(first) == vectorized.group_structure(second)
    assert vectorized.group_structure(first) != vectorized.group_structure(models.char_transformer(0, width=32))


def test_a_model_with_convolutions_trains_alone_on_a_cpu_saying_so_once(capsys, tmp_path):
    import jax

    from experiments.grid import DataCache, group_key, train_group

    if jax.default_backend() != "cpu":
        pytest.skip("the rule is a CPU's: on a GPU or TPU every model may join a group")

    assert vectorized.gains_from_a_group(models.mnist_mlp, 0)
    assert not vectorized.gains_from_a_group(models.mnist_cnn, 0)
    nested = keras.Sequential([keras.Input((8, 8, 1)), keras.Sequential([keras.layers.Conv2D(2, 3)])])
    assert not vectorized.gains_from_a_group(lambda seed: nested, 0)
    problem = dataclasses.replace(resolve("moons"), name="convolutional_moons",
                                  model=lambda seed: keras.Sequential([keras.Input((2, 1)), keras.layers.Conv1D(2, 1),
                                                                       keras.layers.Flatten(), keras.layers.Dense(2)]))
    trials = [Trial(problem=problem, optimizer="sgd", seed=seed, epochs=1) for seed in (0, 1)]
    assert [group_key(trial, DataCache()) for trial in trials] == [None, None]
    # the tuning workers hand their trials to train_group directly: it declines before training
    assert train_group(trials, DataCache(), tmp_path, label="convolutional", progress=False, tensorboard=False) is None
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: convolutional_moons:")]
    assert said == ["note: convolutional_moons: a model with convolutions trains several times faster alone than "
                    "in a vectorised group on a CPU, so its runs train one by one"]


@pytest.mark.slow
def test_the_grid_gives_the_same_results_with_and_without_vectorising(tmp_path):
    problem = resolve("moons")
    trials = [Trial(problem=problem, optimizer=optimizer, seed=seed, epochs=5,
                    labels=(("optimizer", optimizer), ("seed", seed)))
              for optimizer in ("sgd", "adam") for seed in (0, 1)]
    plain = run_grid(trials, tmp_path / "plain", progress=False, vectorize=False).results
    together = run_grid(trials, tmp_path / "together", progress=False).results
    assert list(together.columns) == list(plain.columns)
    assert together[["optimizer", "seed", "epoch", "status"]].equals(plain[["optimizer", "seed", "epoch", "status"]])
    for column in NUMBERS:
        np.testing.assert_allclose(together[column], plain[column], rtol=RELATIVE, atol=0)
    # one TensorBoard run per trial, written from the rows
    assert sorted(p.parent.name for p in (tmp_path / "together" / "tensorboard").glob("*/*/train")) == [
        "seed0", "seed0", "seed1", "seed1"]


@pytest.mark.slow
def test_sigkill_of_a_vectorised_group_then_resume_equals_an_uninterrupted_run(tmp_path, compilation_cache_dir):
    arguments = ["--problems", "moons", "--optimizers", "adam", "--seeds", "2", "--epochs", "60",
                 "--no-tensorboard", "--no-progress"]
    # checkpoints at every epoch, so that the kill lands in the middle of the group
    driver = ("import experiments.vectorized as v; v.DEFAULT_CHECKPOINT_SECONDS = 0; "
              "from experiments import compare_optimizers as job; from experiments.cli import run_main; "
              "import sys; run_main(job.main, sys.argv[1:])")
    environment = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT),
                   "JAX_COMPILATION_CACHE_DIR": str(compilation_cache_dir)}

    def start(*extra):
        return subprocess.Popen([sys.executable, "-c", driver, *extra], cwd=ROOT, env=environment,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    killed = tmp_path / "killed"
    process = start(*arguments, "--out", str(killed))
    sigkill_when_written(process, killed / "checkpoints" / "moons" / "adam" / "seed1" / "state.json")
    state = load_checkpoint_state(killed / "checkpoints" / "moons" / "adam" / "seed1")
    assert state is not None and 0 < state["epoch"] < 60 and not (killed / "results.csv").exists()
    assert start("--resume", str(killed)).wait() == 0
    assert start(*arguments, "--out", str(tmp_path / "whole")).wait() == 0
    resumed = pd.read_csv(killed / "results.csv").drop(columns="seconds")
    whole = pd.read_csv(tmp_path / "whole" / "results.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(resumed, whole)
