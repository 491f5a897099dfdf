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
  kept under ``MAX_BYTES``, least recently used entries first.

The experiment commands turn it on (``experiments.cli.run_main``); a library user calls
``enable()`` or sets JAX's options directly. Other backends: nothing happens.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

FOLDER_NAME = "jax-compilation-cache"
MAX_BYTES = 2 * 1024**3


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
    if importlib.util.find_spec("filelock") is not None and jax.config.jax_compilation_cache_max_size == -1:
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return Path(folder)
