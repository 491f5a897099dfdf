"""JAX's persistent compilation cache, in the lab's cache folder: ``enable``.

On JAX every program (a train step, a vectorised group's epoch, a validation pass) is compiled by
XLA the first time a process runs it: about a second each for the lab's small models on a 2-core
CPU, which is most of a short experiment's time. With the cache on, XLA's executable is also
written to disk, and a later process that runs the same program (the same computation and shapes,
JAX and XLA versions, flags and machine) loads it instead of compiling it again. A repeated or
resumed command then starts training at once. The cached executable is the one XLA compiled, so
the numbers are the same with or without it (``tests/experiments/test_compilation_cache.py``).

- Folder: ``$JAX_COMPILATION_CACHE_DIR`` when set (JAX's own variable), else
  ``lab.datasets.cache_dir() / "jax-compilation-cache"``.
- Off: ``JAX_ENABLE_COMPILATION_CACHE=false`` (JAX's own variable).
- Every program is cached, however quickly it compiled (JAX's default skips those under a
  second, which here is nearly all of them); with the ``filelock`` package installed the folder is
  kept under ``MAX_BYTES``, least recently used entries first, unless
  ``$JAX_COMPILATION_CACHE_MAX_SIZE`` (JAX's own variable; -1: no limit) says otherwise. Every
  process that shares a folder must use the same setting: JAX's eviction reads an access-time
  file for each entry, so once an entry written without a limit (without that file) is in the
  folder, a process with a limit can no longer write there.

The experiment commands turn it on (``experiments.cli.run_main``), name its folder in their
``--help`` (``describe``) and record the folder in each run's ``run.json`` (``folder_in_use``); a
library user calls ``enable()`` or sets JAX's options directly. Other backends: nothing happens.
"""

from __future__ import annotations

import importlib.util
import os
import textwrap
from pathlib import Path

FOLDER_NAME = "jax-compilation-cache"
MAX_BYTES = 2 * 1024**3
# JAX's own variables
FOLDER_ENV_VAR = "JAX_COMPILATION_CACHE_DIR"
SWITCH_ENV_VAR = "JAX_ENABLE_COMPILATION_CACHE"
MAX_SIZE_ENV_VAR = "JAX_COMPILATION_CACHE_MAX_SIZE"


def default_folder() -> Path | None:
    """The folder ``enable`` will use in a process started with this environment, found without
    importing JAX: ``$JAX_COMPILATION_CACHE_DIR``, else the lab's cache folder's
    ``jax-compilation-cache``; ``None`` when ``JAX_ENABLE_COMPILATION_CACHE`` turns it off."""
    from lab.datasets import cache_dir

    if os.environ.get(SWITCH_ENV_VAR, "").strip().lower() in ("0", "false", "no", "off"):
        return None
    return Path(os.environ.get(FOLDER_ENV_VAR) or cache_dir() / FOLDER_NAME)


def describe() -> str:
    """One paragraph for a command's ``--help``: what is written outside the run folder, and where."""
    folder = default_folder()
    where = f"in {folder}" if folder is not None else "nowhere now (JAX_ENABLE_COMPILATION_CACHE is off)"
    return textwrap.fill(
        f"Outside the output folder: on JAX the compiled programs are cached {where} "
        f"({FOLDER_ENV_VAR}, else $LAB_CACHE_DIR/{FOLDER_NAME}, else ~/.cache/optimizer-lab/{FOLDER_NAME}; "
        f"{SWITCH_ENV_VAR}=false turns the cache off); each run's run.json records the folder.",
        width=100, break_on_hyphens=False, break_long_words=False,
    )


def folder_in_use() -> Path | None:
    """The folder JAX's persistent cache writes to in this process; ``None`` on another backend
    or while it is off."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    folder = jax.config.jax_compilation_cache_dir
    if not jax.config.jax_enable_compilation_cache or not folder:
        return None
    return Path(folder)


def enable() -> Path | None:
    """Turn JAX's persistent compilation cache on (see the module); its folder, or ``None`` on
    another backend or when it is switched off."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    if not jax.config.jax_enable_compilation_cache:
        return None
    folder = jax.config.jax_compilation_cache_dir
    if not folder:
        from lab.datasets import cache_dir

        folder = str(cache_dir() / FOLDER_NAME)
        jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    size_given = os.environ.get(MAX_SIZE_ENV_VAR, "").strip() != ""
    can_evict = importlib.util.find_spec("filelock") is not None
    if can_evict and not size_given and jax.config.jax_compilation_cache_max_size == -1:
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return Path(folder)
