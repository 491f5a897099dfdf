"""The command line every experiment shares: its flags, run folders, exit codes (and, from
``experiments.atomic_files``, the atomic writes every study uses).

An experiment module declares its runs as data, runs them, and hands DataFrames to its
summarising and plotting functions. Only its ``main`` prints. Bad input raises ``UsageError``,
which ``run_main`` turns into a one-line message and exit code 2 -- never a traceback.

Experiments that train share one grammar and keep their output folders resumable the same way::

    parser = make_parser(NAME, description)       # --out, --quick
    add_training_arguments(parser, problems=("moons",), optimizers=("sgd", "adam"), seeds=1)
    args = parse_arguments(parser, argv, NAME)    # with --resume: the settings DIR was started with
    problems = resolve_problems(args)             # names or package.module:ATTRIBUTE, --quick applied
    optimizers = check_optimizers(args.optimizers)
    ...declare the trials (experiments.grid.Trial)...
    out = open_output(args, NAME)                 # a new folder with run.json, or DIR again
    grid = run_grid(trials, out, **grid_options(args))

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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# the studies write their files through cli (cli.write_csv_atomic, ...)
from experiments.atomic_files import write_csv_atomic, write_json_atomic, write_text_atomic  # noqa: F401

EXIT_USAGE = 2
# settings a resumed run may take anew: they change how it runs, not its numbers
RESUME_MAY_SET = ("no_progress", "jobs")
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
    """A parser with the flags every experiment has, ``--out`` and ``--quick``, whose help ends with
    where the command writes outside its output folder (JAX's compilation cache)."""
    from experiments import compilation_cache

    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{name}",
        description=description,
        epilog=compilation_cache.describe(),
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


def prefer_jax_backend() -> None:
    """Use JAX when ``KERAS_BACKEND`` is unset and JAX is installed: on a small CPU it trains the
    lab's models several times faster than TensorFlow, mostly through lower per-step overhead.

    Only a command line's entry point calls this, before Keras is imported (``if __name__ ==
    "__main__"``); importing a module of the lab never changes the backend of a process.
    """
    import importlib.util

    if "KERAS_BACKEND" not in os.environ and importlib.util.find_spec("jax") is not None:
        os.environ["KERAS_BACKEND"] = "jax"


def add_training_arguments(
    parser: argparse.ArgumentParser,
    *,
    problems: Sequence[str],
    optimizers: Sequence[str],
    seeds: int,
    strategies: bool = True,
) -> None:
    """The flags of every study that trains, with the study's defaults: ``--problems``,
    ``--optimizers``, ``--seeds``, ``--epochs``, ``--batch-size``, ``--jobs``, ``--resume``,
    ``--no-tensorboard``, ``--vectorize`` (``--no-vectorize``), ``--no-progress`` and (with ``strategies``) ``--strategy``,
    ``--logical-cpus``. Lists are space-separated."""
    from experiments.vectorized import VECTORIZE_CHOICES
    from lab.distribution import STRATEGY_NAMES
    from lab.problems import PROBLEMS
    from lab.registry import OPTIMIZERS

    parser.add_argument(
        "--problems", nargs="+", default=list(problems), metavar="NAME",
        help=f"problems, of: {', '.join(PROBLEMS)}, or package.module:ATTRIBUTE naming a lab.problems.Problem "
        f"(default: {' '.join(problems)})",
    )
    parser.add_argument(
        "--optimizers", nargs="+", default=list(optimizers), metavar="SPEC",
        help=f"optimizer specs: a name, of: {', '.join(OPTIMIZERS)}; or keras:NAME (a Keras built-in, e.g. "
        "keras:Muon) or package.module:Class; each with optional overrides of its constructor arguments, e.g. "
        f"sgd momentum:momentum=0.95 adam:learning_rate=3e-4 (default: {' '.join(optimizers)})",
    )
    parser.add_argument("--seeds", type=positive_int, default=seeds, metavar="N", help=f"seeds 0..N-1 (default: {seeds})")
    parser.add_argument("--epochs", type=positive_int, default=None, help="epochs of every run (default: each problem's own)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="batch size of every run (default: each problem's own)")
    parser.add_argument(
        "--jobs", type=positive_int, default=1, metavar="N",
        help="train N runs at a time, each in its own process; the numbers are those of --jobs 1 (default: 1)",
    )
    add_resume_argument(parser)
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    parser.add_argument(
        "--vectorize", choices=VECTORIZE_CHOICES, default="auto",
        help="how compatible runs train as one program on JAX: map (each run's steps exactly a lone run's), vmap "
        "(the runs batched into each matrix product), auto (map, and vmap for the trials of --tune on a "
        "GPU: see the README's 'Vectorised trials'), off (every run alone with "
        "model.fit) (default: auto)",
    )
    parser.add_argument("--no-vectorize", dest="vectorize", action="store_const", const="off",
                        help="the same as --vectorize off")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    if strategies:
        parser.add_argument(
            "--strategy", choices=STRATEGY_NAMES, default="none",
            help="train each run under a distribution strategy: mirrored (all local GPUs; on JAX "
            "keras.distribution.DataParallel), multiworker (TensorFlow, a cluster described by TF_CONFIG on every "
            "worker); --batch-size is the global batch (default: none)",
        )
        parser.add_argument(
            "--logical-cpus", type=positive_int, default=None, metavar="N",
            help="with --strategy mirrored on a machine without GPUs: split the CPU into N devices",
        )


def resolve_problems(args: argparse.Namespace, variants: Mapping[str, Any] | None = None) -> list:
    """``--problems`` as ``lab.problems.Problem`` objects (``--quick``'s versions with ``--quick``);
    a study's ``variants`` (its own versions of registered problems, by name) stand in for them."""
    from lab.problems import resolve

    problems = []
    for name in args.problems:
        try:
            problem = variants[name] if variants and name in variants else resolve(name)
        except ValueError as error:
            raise UsageError(f"--problems: {error}") from None
        problems.append(problem.quick_version() if args.quick else problem)
    names = [problem.name for problem in problems]
    if len(set(names)) != len(names):
        raise UsageError(f"--problems lists the same problem twice: {', '.join(names)}")
    return problems


def check_optimizers(specs: Sequence[str], flag: str = "--optimizers") -> list[str]:
    """Each spec parsed and built once (bad names and values fail now, not mid-run); their labels."""
    from lab.registry import parse_spec

    labels = []
    for text in specs:
        try:
            labels.append(parse_spec(text).label)
        except (ValueError, TypeError) as error:
            raise UsageError(f"{flag} {text!r}: {error}") from None
    if len(set(labels)) != len(labels):
        raise UsageError(f"{flag} lists the same optimizer twice: {', '.join(labels)}")
    return labels


def grid_options(args: argparse.Namespace) -> dict[str, Any]:
    """``run_grid``'s keyword arguments from the training flags (the strategy is created here,
    before anything runs on the backend: it fixes the devices)."""
    from lab.distribution import make_strategy

    strategy = getattr(args, "strategy", "none")
    if args.jobs > 1 and strategy != "none":
        raise UsageError("--jobs and --strategy cannot be combined: a strategy trains one run on all the devices")
    try:
        distributed = make_strategy(strategy, logical_cpus=getattr(args, "logical_cpus", None))
    except (ValueError, RuntimeError) as error:
        raise UsageError(f"--strategy {strategy}: {error}") from None
    if distributed.num_workers > 1 and args.resume is not None:
        raise UsageError("--resume is not supported with --strategy multiworker: restart the run")
    return {"jobs": args.jobs, "distributed": distributed, "progress": not args.no_progress,
            "tensorboard": not args.no_tensorboard, "vectorize": getattr(args, "vectorize", "auto")}


def machine_info() -> dict[str, Any]:
    """What the numbers of a run depend on: backend, versions, processor and thread count.

    Results repeat exactly on the same machine and backend; on another processor or backend
    they agree to float32 precision only (the order of floating-point sums differs)."""
    import platform

    import keras
    import numpy as np

    backend = keras.backend.backend()
    versions = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    for module in {"jax": ("jax",), "tensorflow": ("tensorflow",), "torch": ("torch",)}.get(backend, ()):
        versions[module] = __import__(module).__version__
    return {
        "backend": backend,
        "versions": versions,
        "processor": _processor_name(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def _processor_name() -> str:
    import platform

    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
        if name not in ("resume", *RESUME_MAY_SET) and value != parser.get_default(name)
    ]
    if given:
        raise UsageError(f"--resume takes every setting from {args.resume}/{RUN_FILE}; drop {' '.join(given)}")
    folder = args.resume
    info = read_run_info(folder, experiment, "--resume")
    check_same_backend(info, folder)
    resumed = parser.parse_args(info.get("arguments", []))
    resumed.out, resumed.resume, resumed.command_line = folder, folder, info.get("arguments", [])
    for name in RESUME_MAY_SET:
        if hasattr(args, name):
            setattr(resumed, name, getattr(args, name))
    return resumed


def open_output(args: argparse.Namespace, experiment: str) -> Path:
    """The output folder of a run: ``--resume``'s, or a new one (``--out`` or timestamped).

    A new folder gets ``run.json`` (experiment, arguments, backend, versions, processor, and
    ``compilation_cache``: the folder of JAX's compiled programs, outside it); a folder that already holds a
    run is refused, so nothing overwrites an earlier run.
    """
    if getattr(args, "resume", None) is not None:
        return prepare_output_dir(args.resume)
    out = args.out if args.out is not None else default_output_dir(experiment)
    if (out / RUN_FILE).exists():
        raise UsageError(f"{out} already holds a run; use --resume {out} to continue it or choose another --out")
    prepare_output_dir(out)
    from experiments import compilation_cache

    cache = compilation_cache.folder_in_use()
    info = {"experiment": experiment, "arguments": args.command_line, **machine_info(),
            "compilation_cache": None if cache is None else str(cache.resolve())}
    write_json_atomic(out / RUN_FILE, info)
    return out


def checkpoint_dir(out: Path, *parts: object) -> Path:
    """Where one run of the experiment in ``out`` checkpoints: ``out/checkpoints/<parts>``."""
    return Path(out, CHECKPOINTS, *(str(part) for part in parts))


def remove_checkpoints(out: Path) -> None:
    """Drop the checkpoints once the results they hold are written to the output files."""
    shutil.rmtree(Path(out) / CHECKPOINTS, ignore_errors=True)


def run_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> None:
    """Run an experiment's ``main``; ``UsageError`` -> message on stderr and exit code 2.

    So is a TensorBoard writer that cannot be made (no TensorFlow): every experiment that writes
    logs takes ``--no-tensorboard``; and so is a data set that is missing or fails its checksum
    wherever a study loads it (the message names the ``python -m lab.datasets fetch-...`` fix).
    On JAX the persistent compilation cache is on (``experiments.compilation_cache``).
    """
    from experiments import compilation_cache
    from lab.datasets import DatasetChecksumError, DatasetNotFoundError
    from lab.tensorboard_logs import TensorBoardUnavailableError

    compilation_cache.enable()
    try:
        code = main(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except TensorBoardUnavailableError as error:
        print(f"error: {error}, or run with --no-tensorboard", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except (DatasetNotFoundError, DatasetChecksumError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
