"""What every experiment's command line shares: flags, output folders, atomic writes, exit codes.

An experiment module declares its runs as data, runs them, and hands DataFrames to its
summarising and plotting functions. Only its ``main`` prints. Bad input raises ``UsageError``,
which ``run_main`` turns into a one-line message and exit code 2 -- never a traceback.

Experiments that train keep their output folders resumable the same way::

    parser = make_parser(NAME, description)       # --out, --quick
    add_resume_argument(parser)                   # --resume DIR
    args = parse_arguments(parser, argv, NAME)    # with --resume: the settings DIR was started with
    ...validate and declare the runs...
    out = open_output(args, NAME)                 # a new folder with run.json, or DIR again
    ...train each run with train_run(..., checkpoint_dir=checkpoint_dir(out, ...))...
    remove_checkpoints(out)                       # once every result file is written

A finished run's checkpoint holds its rows, so a resumed experiment gets them back without
training; an interrupted run continues after its last completed epoch.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"


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


def read_run_info(folder: Path, experiment: str, flag: str) -> dict:
    """``folder/run.json`` of a run of ``experiment``, else ``UsageError`` saying what is wrong."""
    path = Path(folder) / RUN_FILE
    try:
        with open(path) as handle:
            info = json.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{flag} {folder}: no {RUN_FILE} there; it is not a {experiment} output folder") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"{flag} {folder}: cannot read {RUN_FILE}: {error}") from None
    if not isinstance(info, dict) or info.get("experiment") != experiment:
        found = info.get("experiment") if isinstance(info, dict) else None
        raise UsageError(f"{flag} {folder}: {RUN_FILE} is not from {experiment} (experiment {found!r})")
    return info


def check_same_backend(info: dict, folder: Path) -> None:
    """Numbers reproduce on one backend only: resuming on another would mix two kinds of run."""
    import keras

    backend = keras.backend.backend()
    if info.get("backend") is not None and info["backend"] != backend:
        raise UsageError(
            f"--resume {folder}: it was run on the {info['backend']} backend, this process uses {backend}; "
            f"set KERAS_BACKEND={info['backend']}"
        )


def add_resume_argument(parser: argparse.ArgumentParser) -> None:
    """``--resume DIR``: continue an interrupted run of the experiment in DIR."""
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue an interrupted run in DIR with the settings it was started with: finished "
        "runs are kept, an interrupted one continues after its last completed epoch",
    )


def parse_arguments(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, experiment: str
) -> argparse.Namespace:
    """Parse ``argv``; with ``--resume DIR``, the arguments DIR's run was started with instead.

    The result carries ``command_line`` (the arguments as given) for ``open_output`` to record.
    ``--resume`` with any other setting is a ``UsageError``: a resumed run keeps its settings.
    """
    command_line = [str(item) for item in (sys.argv[1:] if argv is None else argv)]
    args = parser.parse_args(command_line)
    if args.resume is None:
        args.command_line = command_line
        return args
    given = [
        "--" + name.replace("_", "-")
        for name, value in vars(args).items()
        if name != "resume" and value != parser.get_default(name)
    ]
    if given:
        raise UsageError(f"--resume takes every setting from {args.resume}/{RUN_FILE}; drop {' '.join(given)}")
    folder = args.resume
    info = read_run_info(folder, experiment, "--resume")
    check_same_backend(info, folder)
    resumed = parser.parse_args(info.get("arguments", []))
    resumed.out, resumed.resume, resumed.command_line = folder, folder, info.get("arguments", [])
    return resumed


def open_output(args: argparse.Namespace, experiment: str) -> Path:
    """The output folder of a run: ``--resume``'s, or a new one (``--out`` or timestamped).

    A new folder gets ``run.json`` (experiment, arguments, backend); a folder that already holds a
    run is refused, so nothing overwrites an earlier run.
    """
    if getattr(args, "resume", None) is not None:
        return prepare_output_dir(args.resume)
    out = args.out if args.out is not None else default_output_dir(experiment)
    if (out / RUN_FILE).exists():
        raise UsageError(f"{out} already holds a run; use --resume {out} to continue it or choose another --out")
    prepare_output_dir(out)
    import keras

    info = {"experiment": experiment, "arguments": args.command_line, "backend": keras.backend.backend()}
    write_json_atomic(out / RUN_FILE, info)
    return out


def checkpoint_dir(out: Path, *parts: object) -> Path:
    """Where one run of the experiment in ``out`` checkpoints: ``out/checkpoints/<parts>``."""
    return Path(out, CHECKPOINTS, *(str(part) for part in parts))


def remove_checkpoints(out: Path) -> None:
    """Drop the checkpoints once the results they hold are written to the output files."""
    shutil.rmtree(Path(out) / CHECKPOINTS, ignore_errors=True)


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


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run an experiment's ``main``; ``UsageError`` -> message on stderr and exit code 2.

    So is a TensorBoard writer that cannot be made (no TensorFlow): every experiment that writes
    logs takes ``--no-tensorboard``.
    """
    from lab.tensorboard_logs import TensorBoardUnavailableError

    try:
        code = main(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except TensorBoardUnavailableError as error:
        print(f"error: {error}, or run with --no-tensorboard", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
