"""lab.distribution: training under a strategy gives the weights of the undistributed run.

The multi-device and multi-worker tests train in real subprocesses (``train_worker.py``): a
strategy fixes a process's devices at start-up, so it cannot be switched inside the test process.
Every subprocess has a bounded timeout and is killed when the test ends, whatever happens.

Tolerance: final weights agree to ``rtol=1e-5, atol=1e-6`` (``numpy.testing.assert_allclose``).
A distributed step sums the per-replica gradients in a different order than one device does, so
bit equality is not expected; float32 round-off over a few steps is ~1e-7 relative. Each test
also checks that training moved every weight array by far more than the tolerance, that the
strategy really had 2 replicas and that exactly ``STEPS`` optimiser steps ran, so a run that
silently trained on one device, on half the data or on twice the steps would fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from lab.distribution import (
    STRATEGY_NAMES,
    configure_logical_cpus,
    distribution_scope,
    make_strategy,
    parse_tf_config,
)
from tests.distribution.train_worker import NAMES
from tests.optimizers.test_serialization import CONFIGURED

REPOSITORY = Path(__file__).resolve().parents[2]
# every lab optimiser, configured as the serialization tests configure it (train_worker.NAMES)
ALL_OPTIMIZERS = NAMES
# The multi-process runs use three of them, to keep the suite fast: a momentum state (SGD with
# momentum), two bias-corrected moments (Adam) and a sign update, the most sensitive to round-off
# (Lion). MirroredStrategy covers them all.
SUBSET = ("SGD", "Adam", "Lion")
STEPS = 5
GLOBAL_BATCH = 64
RTOL, ATOL = 1e-5, 1e-6
WORKER_TIMEOUT_S = 240


def lab_optimizers(names: tuple[str, ...]) -> list[str]:
    """``names``, after checking that lab.optimizers has every one of them."""
    from lab import optimizers

    missing = [name for name in names if not hasattr(optimizers, name)]
    assert not missing, f"lab.optimizers lacks {missing}"
    return list(names)


def worker_environment(backend: str, **extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("TF_CONFIG", "XLA_FLAGS")}
    environment.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu", **extra)
    return environment


def worker_command(strategy: str, out: Path, names: tuple[str, ...], *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tests.distribution.train_worker",
        "--strategy", strategy,
        "--optimizers", ",".join(lab_optimizers(names)),
        "--steps", str(STEPS),
        "--batch-size", str(GLOBAL_BATCH),
        "--out", str(out),
        *extra,
    ]  # fmt: skip


def run_concurrently(jobs: list[tuple[list[str], dict[str, str]]], log_dir: Path) -> None:
    """Start every job at once, wait for all within the timeout; kill whatever is left."""
    processes = []
    try:
        for index, (command, environment) in enumerate(jobs):
            log = open(log_dir / f"job{index}.log", "wb")
            processes.append(
                (subprocess.Popen(command, cwd=REPOSITORY, env=environment, stdout=log, stderr=subprocess.STDOUT), log)
            )
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        for process, _ in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    for index, (process, _) in enumerate(processes):
        if process.returncode != 0:
            tail = (log_dir / f"job{index}.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"{' '.join(jobs[index][0])} exited {process.returncode}:\n{tail}")


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def weight_count(run: dict[str, np.ndarray]) -> int:
    return sum(1 for key in run if key.startswith("initial/"))


def assert_matches_baseline(
    run: dict[str, np.ndarray], baseline: dict[str, np.ndarray], name: str, baseline_key: str | None = None
) -> None:
    """``run``'s weights after training with ``name`` equal the baseline's within the tolerance."""
    key = baseline_key or name
    assert int(run[f"{name}/iterations"]) == STEPS == int(baseline[f"{key}/iterations"])
    count = weight_count(baseline)
    assert count == weight_count(run) == 6
    for index in range(count):
        np.testing.assert_array_equal(run[f"initial/{index}"], baseline[f"initial/{index}"])
        moved = np.abs(baseline[f"{key}/{index}"] - baseline[f"initial/{index}"]).max()
        assert moved > 1e3 * ATOL, f"{name}: weight {index} barely trained ({moved:.2e}); the comparison would be void"
        np.testing.assert_allclose(
            run[f"{name}/{index}"], baseline[f"{key}/{index}"], rtol=RTOL, atol=ATOL, err_msg=f"{name} weight {index}"
        )


def assert_each(names: tuple[str, ...], check) -> None:
    """Run ``check(name)`` for every optimiser; report every one that fails, not just the first.

    One test per strategy (rather than one per optimiser) keeps each strategy's subprocesses in
    one pytest worker under xdist, so they are started once.
    """
    failures = []
    for name in names:
        try:
            check(name)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n\n".join(failures)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# TensorFlow: one undistributed baseline, then MirroredStrategy and MultiWorkerMirroredStrategy.


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory) -> dict[str, np.ndarray]:
    """MirroredStrategy over 2 logical CPUs, and the same training on one device (baseline/...)."""
    folder = tmp_path_factory.mktemp("mirrored")
    command = worker_command("mirrored", folder / "run.npz", ALL_OPTIMIZERS, "--logical-cpus", "2", "--with-baseline")
    run_concurrently([(command, worker_environment("tensorflow"))], folder)
    return load(folder / "run.npz")


@pytest.fixture(scope="module")
def multiworker_runs(tmp_path_factory) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Two MultiWorkerMirroredStrategy workers on loopback, and a plain single-process run."""
    folder = tmp_path_factory.mktemp("multiworker")
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    jobs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        command = worker_command("multiworker", folder / f"worker{index}.npz", SUBSET)
        jobs.append((command, worker_environment("tensorflow", TF_CONFIG=tf_config)))
    jobs.append((worker_command("none", folder / "single.npz", SUBSET), worker_environment("tensorflow")))
    run_concurrently(jobs, folder)
    return [load(folder / f"worker{index}.npz") for index in range(2)], load(folder / "single.npz")


def test_the_mirrored_run_trains_every_lab_optimizer():
    assert sorted(ALL_OPTIMIZERS) == sorted(CONFIGURED)


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_matches_single_device(mirrored_run):
    assert int(mirrored_run["num_replicas"]) == 2
    assert_each(ALL_OPTIMIZERS, lambda name: assert_matches_baseline(mirrored_run, mirrored_run, name, f"baseline/{name}"))


@pytest.mark.slow
def test_two_workers_on_loopback_match_single_process(multiworker_runs):
    workers, single = multiworker_runs
    assert int(single["num_replicas"]) == 1
    for index, run in enumerate(workers):
        assert int(run["num_workers"]) == 2 and int(run["worker_index"]) == index
        assert int(run["num_replicas"]) == 2

    def check(name: str) -> None:
        for run in workers:
            assert_matches_baseline(run, single, name)
        # synchronous training: both workers hold the very same weights
        for index in range(weight_count(workers[0])):
            np.testing.assert_array_equal(workers[0][f"{name}/{index}"], workers[1][f"{name}/{index}"])

    assert_each(SUBSET, check)


# ---------------------------------------------------------------------------------------------
# JAX: keras.distribution.DataParallel over 2 CPU devices against the plain run.


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory) -> dict[str, np.ndarray]:
    """DataParallel over 2 JAX CPU devices, and the same training with no distribution (baseline/...)."""
    folder = tmp_path_factory.mktemp("jax")
    command = worker_command("data_parallel", folder / "run.npz", SUBSET, "--logical-cpus", "2", "--with-baseline")
    run_concurrently([(command, worker_environment("jax"))], folder)
    return load(folder / "run.npz")


@pytest.mark.slow
def test_jax_data_parallel_over_two_cpu_devices_matches_plain_run(jax_run):
    assert int(jax_run["num_replicas"]) == 2
    assert_each(SUBSET, lambda name: assert_matches_baseline(jax_run, jax_run, name, f"baseline/{name}"))


# ---------------------------------------------------------------------------------------------
# The entry point's contract: names, TF_CONFIG and logical-device errors (in process, fast).


@pytest.mark.backend_agnostic
def test_unknown_strategy_lists_the_valid_names():
    with pytest.raises(ValueError, match="strategy") as error:
        make_strategy("mirored")
    for name in STRATEGY_NAMES:
        assert repr(name) in str(error.value)


@pytest.mark.backend_agnostic
def test_none_scope_is_one_replica_and_trains():
    with distribution_scope("none") as distributed:
        assert (distributed.num_replicas, distributed.num_workers, distributed.is_chief) == (1, 1, True)
        model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        history = model.fit(np.ones((8, 1)), np.ones((8,)), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.backend_agnostic
def test_steps_per_execution_is_kept_without_a_strategy():
    assert make_strategy("none").steps_per_execution(32) == 32
    with pytest.raises(ValueError, match="steps_per_execution"):
        make_strategy("none").steps_per_execution(0)


@pytest.mark.backend_agnostic
def test_logical_cpus_only_apply_to_mirrored():
    with pytest.raises(ValueError, match="logical_cpus"):
        make_strategy("none", logical_cpus=2)


@pytest.mark.backend_agnostic
@pytest.mark.skipif(keras.backend.backend() == "torch", reason="keras.distribution lists no devices on PyTorch, "
                    "and the lab's strategies (so its logical CPUs) are TensorFlow's and JAX's")
def test_logical_cpus_after_initialisation_is_a_clear_error():
    # the test process has already run operations, so its devices are fixed
    have = len(keras.distribution.list_devices("cpu"))
    with pytest.raises(RuntimeError, match="too late"):
        configure_logical_cpus(have + 1)
    configure_logical_cpus(have)  # asking for what is already there is fine


@pytest.mark.backend_agnostic
def test_multiworker_needs_tf_config_and_tensorflow(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    expected = {"tensorflow": "TF_CONFIG environment variable", "jax": "KERAS_BACKEND=tensorflow",
                "torch": "supported on the tensorflow and jax backends, not 'torch'"}[keras.backend.backend()]
    with pytest.raises(ValueError, match=expected):
        make_strategy("multiworker")


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "TF_CONFIG environment variable"),
        ("{cluster", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"task": {"type": "worker", "index": 0}}', "cluster.worker"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "cluster.worker"),
        ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}', "ps"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}}', "task.type and task.index"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "chief", "index": 0}}', "not a job"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', r"\[0, 2\)"),
        ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": "1"}}', r"\[0, 2\)"),
    ],
)
def test_malformed_tf_config_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_tf_config(text)


@pytest.mark.backend_agnostic
def test_tf_config_is_parsed():
    text = json.dumps({"cluster": {"worker": ["127.0.0.1:2000", "127.0.0.1:2001"]}, "task": {"type": "worker", "index": 1}})
    config = parse_tf_config(text)
    assert config.workers == ("127.0.0.1:2000", "127.0.0.1:2001")
    assert (config.task_type, config.task_index) == ("worker", 1)
