"""experiments.compilation_cache: JAX's persistent compilation cache changes no number.

A command's ``--help`` names the cache's folder, its ``run.json`` records it, and ``LAB_CACHE_DIR``
moves it. A vectorised group and a ``train_run`` trained with an empty cache (every program compiled, run as
without a cache, and written) and then again (every program loaded, none compiled) give the same
rows bit for bit.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import subprocess
import sys

import keras
import pandas as pd
import pytest

from experiments import compilation_cache, vectorized
from experiments.training import train_run
from lab import internals, models
from lab.optimizers import Adam
from lab.problems import protocol_view, resolve

pytestmark = pytest.mark.backend_agnostic

jax_only = pytest.mark.skipif(keras.backend.backend() != "jax", reason="JAX's compilation cache")
SETTINGS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
            "jax_enable_compilation_cache", "jax_compilation_cache_max_size")


@contextlib.contextmanager
def restored_settings():
    """JAX's cache settings as they were, afterwards (``enable`` changes them process-wide)."""
    import jax

    before = {name: getattr(jax.config, name) for name in SETTINGS}
    internals.reset_jax_compilation_cache()
    try:
        yield
    finally:
        for name, value in before.items():
            jax.config.update(name, value)
        internals.reset_jax_compilation_cache()


@contextlib.contextmanager
def cache_events():
    """Counts of JAX's compilation-cache events (``cache_hits``, ``cache_misses``) meanwhile."""
    import jax.monitoring

    counts: collections.Counter = collections.Counter()

    def listener(event: str, **_) -> None:
        if event.startswith("/jax/compilation_cache/"):
            counts[event.rsplit("/", 1)[-1]] += 1

    jax.monitoring.register_event_listener(listener)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_listener(listener)


def test_enable_is_a_no_op_on_other_backends():
    if keras.backend.backend() == "jax":
        pytest.skip("the JAX case is below")
    assert compilation_cache.enable() is None


@jax_only
def test_enable_uses_the_lab_cache_folder_and_caches_every_program(tmp_path, monkeypatch):
    import jax

    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path))
    with restored_settings():
        jax.config.update("jax_compilation_cache_dir", None)
        assert compilation_cache.enable() == tmp_path / compilation_cache.FOLDER_NAME
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / compilation_cache.FOLDER_NAME)
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0
        # JAX's own folder variable wins; its switch turns the cache off
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "own"))
        assert compilation_cache.enable() == tmp_path / "own"
        jax.config.update("jax_enable_compilation_cache", False)
        assert compilation_cache.enable() is None


@jax_only
def test_enable_limits_the_folder_unless_jaxs_own_size_variable_is_set(tmp_path, monkeypatch):
    import jax

    with restored_settings():
        jax.config.update("jax_compilation_cache_dir", str(tmp_path))
        jax.config.update("jax_compilation_cache_max_size", -1)
        monkeypatch.delenv(compilation_cache.MAX_SIZE_ENV_VAR, raising=False)
        compilation_cache.enable()
        assert jax.config.jax_compilation_cache_max_size == compilation_cache.MAX_BYTES  # filelock is installed
        # the variable given (the tests give -1: every process of a run writes without a limit)
        jax.config.update("jax_compilation_cache_max_size", -1)
        monkeypatch.setenv(compilation_cache.MAX_SIZE_ENV_VAR, "-1")
        compilation_cache.enable()
        assert jax.config.jax_compilation_cache_max_size == -1


@jax_only
@pytest.mark.slow
def test_rows_are_the_same_compiled_and_loaded_from_the_cache(tmp_path):
    import jax

    data = protocol_view(resolve("moons").split(), "notebook")
    seeds = (0, 1)

    def train():
        keras.backend.clear_session()
        group = vectorized.train_runs([models.moons_net(seed) for seed in seeds], [Adam(0.01) for _ in seeds], data,
                                      epochs=2, batch_size=320, seeds=list(seeds))
        keras.backend.clear_session()
        alone = train_run(models.moons_net(0), Adam(0.01), data, epochs=2, batch_size=320, seed=0)
        return [frame.drop(columns="seconds") for frame in (*group, alone)]

    with restored_settings():
        jax.config.update("jax_enable_compilation_cache", True)
        jax.config.update("jax_compilation_cache_dir", str(tmp_path))
        compilation_cache.enable()
        internals.reset_jax_compilation_cache()  # JAX decides once whether the cache is on, until reset
        with cache_events() as written:
            compiled = train()
        with cache_events() as read:
            loaded = train()
    assert written["cache_misses"] > 0 and written["cache_hits"] < written["cache_misses"]
    assert read["cache_hits"] > 0 and read["cache_misses"] == 0  # nothing compiled the second time
    assert len(loaded) == 3 and loaded[0]["loss"].iloc[-1] != loaded[1]["loss"].iloc[-1]
    for a, b in zip(compiled, loaded):
        pd.testing.assert_frame_equal(a, b)


@jax_only
@pytest.mark.slow
def test_a_command_names_the_folder_in_help_and_run_json_and_lab_cache_dir_moves_it(tmp_path):
    """A real command, with only ``LAB_CACHE_DIR`` saying where the lab's cache is."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE")}
    env.update(LAB_CACHE_DIR=str(tmp_path / "cache"), KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    folder = tmp_path / "cache" / compilation_cache.FOLDER_NAME
    command = [sys.executable, "-m", "experiments.gd_variants"]
    shown = subprocess.run([*command, "--help"], env=env, capture_output=True, text=True, check=True).stdout
    assert f"cached in {folder} " in " ".join(shown.split())
    out = tmp_path / "run"
    subprocess.run([*command, "--quick", "--epochs", "1", "--no-tensorboard", "--no-progress", "--out", str(out)],
                   env=env, capture_output=True, text=True, check=True)
    info = json.loads((out / "run.json").read_text())
    assert info["backend"] == "jax" and info["compilation_cache"] == str(folder.resolve())
    assert any(folder.iterdir())  # the programs went there
    off = subprocess.run([*command, "--help"], env={**env, "JAX_ENABLE_COMPILATION_CACHE": "false"},
                         capture_output=True, text=True, check=True).stdout
    assert "JAX_ENABLE_COMPILATION_CACHE is off" in " ".join(off.split())
