"""Files written whole or not at all: through a temporary file in the same folder, then a rename.

A killed process leaves the previous version of a file or the new one, never half of one; every
output file and checkpoint of the experiments is written this way.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w", *, sync: bool = True) -> None:
    """Write through a temporary file in the same folder, then rename: never a half file.

    The rename is what a killed process cannot interrupt; ``sync`` also flushes the data to disk
    before it, so that the file survives a crash of the machine too.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    _atomic_write(path, lambda handle: handle.write(text))


def write_json_atomic(path: Path, data: Any, *, sync: bool = True) -> None:
    _atomic_write(path, lambda handle: json.dump(data, handle, indent=2, sort_keys=True, default=str), sync=sync)


def write_csv_atomic(path: Path, frame) -> None:
    """Write a pandas DataFrame as CSV (no index), atomically."""
    _atomic_write(path, lambda handle: frame.to_csv(handle, index=False))
