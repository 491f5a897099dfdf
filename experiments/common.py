"""What every experiment's command line shares: flags, output folders, atomic writes, exit codes.

An experiment module declares its runs as data, runs them, and hands DataFrames to its
summarising and plotting functions. Only its ``main`` prints. Bad input raises ``UsageError``,
which ``run_main`` turns into a one-line message and exit code 2 -- never a traceback.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: reported as ``error: <message>`` with exit code 2."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def make_parser(name: str, description: str) -> argparse.ArgumentParser:
    """A parser with the flags every experiment has: ``--out`` and ``--quick``."""
    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{name}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default: runs/{name}/<timestamp>/)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a reduced smoke run that finishes in well under a minute",
    )
    return parser


def default_output_dir(name: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / name / stamp


def prepare_output_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and check that it can be written, else ``UsageError``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as error:
        raise UsageError(f"cannot write to output folder {path}: {error.strerror or error}") from None
    return path


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Write through a temporary file in the same folder, then rename: never a half file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    _atomic_write(path, lambda handle: handle.write(text))


def write_json_atomic(path: Path, data: Any) -> None:
    _atomic_write(path, lambda handle: json.dump(data, handle, indent=2, sort_keys=True, default=str))


def write_csv_atomic(path: Path, frame) -> None:
    """Write a pandas DataFrame as CSV (no index), atomically."""
    _atomic_write(path, lambda handle: frame.to_csv(handle, index=False))


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run an experiment's ``main``; ``UsageError`` -> message on stderr and exit code 2."""
    try:
        code = main(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
