"""The main job: SGD, momentum, RMSprop and Adam compared on MNIST and make_moons, over seeds.

Notebook 003's protocol (MNIST MLP 784-128-10, batch 32, 10 epochs, validated on the 10k test
set; SGD 0.01, momentum 0.9, RMSprop 0.001, Adam 0.001) and notebook 004's (make_moons 2-16-8-2,
full batch, 200 epochs, all four at learning rate 0.01), 3 seeds each, with the lab's own
optimisers. Writes to ``--out`` (default ``runs/compare_optimizers/<timestamp>/``):

    run.json        what was run (the spec, backend, versions): identifies the experiment
    results.csv     problem, optimizer, seed, epoch, loss, accuracy, val_loss, val_accuracy,
                    learning_rate, seconds, status (ok / diverged) -- rewritten after every run
    boundaries.csv  moons: probability of class 1 on a grid, first seed of each optimizer
    summary.csv, summary.md, plots/*.png, report.md   made from the CSV files only
    tensorboard/<problem>/<optimizer>/seed<k>/         ``tensorboard --logdir <out>/tensorboard``
    checkpoints/    the per-epoch checkpoint of the run in progress (removed when it finishes)

    python -m experiments.compare_optimizers                   # the default comparison
    python -m experiments.compare_optimizers --quick           # a smoke run, well under a minute
    python -m experiments.compare_optimizers --problems moons --optimizers sgd adam:learning_rate=0.03
    python -m experiments.compare_optimizers --jobs 2                # two runs at a time, same numbers
    python -m experiments.compare_optimizers --resume runs/compare_optimizers/20250101-120000
    python -m experiments.compare_optimizers --replot runs/compare_optimizers/20250101-120000

Backend: ``KERAS_BACKEND`` as everywhere in Keras; when it is unset this job uses JAX if it is
installed (on a 2-core CPU it trains these models several times faster than TensorFlow, mostly
through lower per-step overhead), else TensorFlow. The backend is recorded in ``run.json``.
Numbers are reproducible on the same backend (``seconds`` aside), not across backends.
"""

from __future__ import annotations

import importlib.util
import os
import sys

if "KERAS_BACKEND" not in os.environ and importlib.util.find_spec("jax") is not None:
    os.environ["KERAS_BACKEND"] = "jax"  # before Keras is imported; see the module docstring

import platform
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import results as summary_lib
from experiments.common import (
    UsageError,
    check_same_backend,
    default_output_dir,
    make_parser,
    positive_float,
    positive_int,
    prepare_output_dir,
    read_run_info,
    run_main,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)
from lab.distribution import STRATEGY_NAMES, make_strategy

NAME = "compare_optimizers"
DEFAULT_OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
DEFAULT_PROBLEMS = ("mnist_mlp", "moons")
DEFAULT_SEEDS = 3
QUICK_MNIST_SUBSET = 6000  # --quick: the first 6000 training and 1000 test images
QUICK_MOONS_EPOCHS = 50
BOUNDARY_GRID = 60  # points per axis of the moons decision-boundary grid


@dataclass(frozen=True)
class Problem:
    """A data set and model with the protocol's defaults."""

    name: str
    description: str
    epochs: int
    batch_size: int | None  # None: full batch
    target_accuracy: float
    learning_rate: float | None = None  # overrides every optimizer's default rate unless a spec sets one


PROBLEMS: dict[str, Problem] = {
    "mnist_mlp": Problem("mnist_mlp", "MNIST MLP 784-128-10 (notebook 003)", 10, 32, 0.97),
    "mnist_cnn": Problem("mnist_cnn", "MNIST CNN, two conv blocks (optional)", 3, 32, 0.98),
    "moons": Problem("moons", "make_moons 2-16-8-2, full batch (notebook 004)", 200, None, 0.95, 0.01),
}


@dataclass(frozen=True)
class Run:
    """One training run of the comparison."""

    problem: str
    optimizer: str  # the spec as labelled in results.csv, e.g. "adam:learning_rate=0.0003"
    seed: int
    epochs: int
    batch_size: int | None

    @property
    def key(self) -> tuple[str, str, int]:
        """What identifies the run in results.csv: problem, optimizer, seed."""
        return (self.problem, self.optimizer, self.seed)

    @property
    def folder(self) -> Path:
        """``<problem>/<optimizer>/seed<k>``: the same under tensorboard/ and checkpoints/."""
        return Path(self.problem) / _safe(self.optimizer) / f"seed{self.seed}"


@dataclass(frozen=True)
class Spec:
    """The experiment as data: problems x optimizer specs x seeds, and the settings that apply."""

    problems: tuple[str, ...] = DEFAULT_PROBLEMS
    optimizers: tuple[str, ...] = DEFAULT_OPTIMIZERS
    seeds: int = DEFAULT_SEEDS
    epochs: int | None = None  # None: each problem's own
    batch_size: int | None = None  # None: each problem's own
    target_accuracy: float | None = None  # None: each problem's own
    quick: bool = False
    tensorboard: bool = True
    experiment: str = field(default=NAME)

    def epochs_for(self, problem: str) -> int:
        if self.epochs is not None:
            return self.epochs
        if self.quick:
            return QUICK_MOONS_EPOCHS if problem == "moons" else 1
        return PROBLEMS[problem].epochs

    def batch_size_for(self, problem: str) -> int | None:
        return self.batch_size if self.batch_size is not None else PROBLEMS[problem].batch_size

    def target_for(self, problem: str) -> float:
        return self.target_accuracy if self.target_accuracy is not None else PROBLEMS[problem].target_accuracy

    def runs(self) -> list[Run]:
        return [
            Run(problem, optimizer, seed, self.epochs_for(problem), self.batch_size_for(problem))
            for problem in self.problems
            for optimizer in self.optimizers
            for seed in range(self.seeds)
        ]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Spec":
        data = dict(data)
        data["problems"] = tuple(data["problems"])
        data["optimizers"] = tuple(data["optimizers"])
        return cls(**data)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text)


# --- validation ----------------------------------------------------------------------------------


def check_spec(spec: Spec) -> Spec:
    """Reject unknown problems and bad optimizer specs with a ``UsageError``; normalise labels."""
    from lab.registry import parse_spec

    unknown = [p for p in spec.problems if p not in PROBLEMS]
    if unknown:
        raise UsageError(f"unknown problem {', '.join(map(repr, unknown))}; valid problems: {', '.join(PROBLEMS)}")
    labels = []
    for text in spec.optimizers:
        try:
            parsed = parse_spec(text)
            if any(PROBLEMS[p].learning_rate is not None for p in spec.problems):
                parsed.build(**_rate_override(parsed, spec.problems[0]))
        except (ValueError, TypeError) as error:
            raise UsageError(f"--optimizers {text!r}: {error}") from None
        labels.append(parsed.label)
    if len(set(labels)) != len(labels):
        raise UsageError(f"--optimizers lists the same optimizer twice: {', '.join(labels)}")
    for problem in spec.problems:
        if spec.batch_size_for(problem) is not None and spec.batch_size_for(problem) < 1:
            raise UsageError("--batch-size must be a positive integer")
    return Spec(**{**spec.to_json(), "optimizers": tuple(labels), "problems": tuple(spec.problems)})


def _rate_override(parsed, problem: str) -> dict:
    """The problem's learning rate unless the spec sets one (moons: all optimizers at 0.01)."""
    rate = PROBLEMS[problem].learning_rate
    if rate is None or "learning_rate" in parsed.overrides:
        return {}
    return {"learning_rate": rate}


# --- data, models ------------------------------------------------------------------------------


class DataCache:
    """Each problem's data, loaded once per process."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self._cache: dict[str, object] = {}

    def __call__(self, problem: str):
        if problem not in self._cache:
            self._cache[problem] = self._load(problem)
        return self._cache[problem]

    def _load(self, problem: str):
        from lab import datasets

        subset = QUICK_MNIST_SUBSET if self.quick else None
        try:
            if problem == "mnist_mlp":
                return datasets.mnist_arrays(flatten=True, subset=subset)
            if problem == "mnist_cnn":
                return datasets.mnist_arrays(flatten=False, subset=subset)
        except (datasets.MnistChecksumError, datasets.MnistNotFoundError) as error:
            raise UsageError(f"cannot load MNIST: {error}") from None
        return datasets.load_moons()


def build_model(problem: str, seed: int):
    from lab import models

    return {"mnist_mlp": models.mnist_mlp, "mnist_cnn": models.mnist_cnn, "moons": models.moons_net}[problem](seed)


def boundary_rows(model, run: Run, data) -> pd.DataFrame:
    """P(class 1) of a trained moons model on a grid around the data."""
    x = np.concatenate([data.x_train, data.x_test])
    low, high = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    xs = np.linspace(low[0], high[0], BOUNDARY_GRID, dtype=np.float32)
    ys = np.linspace(low[1], high[1], BOUNDARY_GRID, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    probability = model.predict(points, batch_size=len(points), verbose=0)[:, 1]
    return pd.DataFrame(
        {
            "problem": run.problem,
            "optimizer": run.optimizer,
            "seed": run.seed,
            "x": points[:, 0],
            "y": points[:, 1],
            "probability": probability.astype(np.float64),
        }
    )


# --- running -----------------------------------------------------------------------------------


def run_one(
    run: Run, spec: Spec, data, out: Path, on_epoch: Callable[[dict], None] | None = None, distributed=None
):
    """Train one run (resuming its checkpoint if there is one); its rows and, for moons, its grid.

    ``distributed`` (from ``lab.distribution.make_strategy``): the model and the optimiser are
    created, and trained, inside its scope; the batch size stays the global batch.
    """
    import keras

    from experiments.training import DEFAULT_STEPS_PER_EXECUTION

    keras.backend.clear_session()
    distributed = distributed or make_strategy("none")
    with distributed.scope():
        steps_per_execution = distributed.steps_per_execution(DEFAULT_STEPS_PER_EXECUTION)
        return _run_one(run, spec, data, out, on_epoch, steps_per_execution)


def _run_one(
    run: Run, spec: Spec, data, out: Path, on_epoch: Callable[[dict], None] | None, steps_per_execution: int
):
    from experiments.training import train_run
    from lab.registry import parse_spec

    parsed = parse_spec(run.optimizer)
    optimizer = parsed.build(**_rate_override(parsed, run.problem))
    model = build_model(run.problem, run.seed)
    batch_size = run.batch_size or len(data.x_train)
    rows = train_run(
        model,
        optimizer,
        data,
        epochs=run.epochs,
        batch_size=batch_size,
        seed=run.seed,
        tensorboard_dir=out / "tensorboard" / run.folder if spec.tensorboard else None,
        checkpoint_dir=out / "checkpoints" / run.folder,
        on_epoch=on_epoch,
        steps_per_execution=steps_per_execution,
    )
    rows.insert(0, "seed", run.seed)
    rows.insert(0, "optimizer", run.optimizer)
    rows.insert(0, "problem", run.problem)
    for column in summary_lib.RESULT_COLUMNS:
        if column not in rows:
            rows[column] = np.nan
    boundary = None
    if run.problem == "moons" and run.seed == 0:
        # the trained model, also when train_run only reloaded a run that had finished before a kill
        boundary = boundary_rows(model, run, data)
    return rows[summary_lib.RESULT_COLUMNS], boundary


def _done(results: pd.DataFrame) -> set[tuple[str, str, int]]:
    if results.empty:
        return set()
    return set(zip(results["problem"], results["optimizer"], results["seed"].astype(int)))


class _Store:
    """results.csv and boundaries.csv of ``out``, rewritten after every finished run.

    Rows are kept in the order of ``spec.runs()`` whatever order the runs finish in, so a
    comparison trained in parallel processes writes the same file as one trained in sequence.
    """

    def __init__(self, out: Path, runs: Sequence[Run]) -> None:
        self.out = out
        self.results_path, self.boundaries_path = out / "results.csv", out / "boundaries.csv"
        self.order = {run.key: index for index, run in enumerate(runs)}
        self.results = (
            pd.read_csv(self.results_path)
            if self.results_path.is_file()
            else pd.DataFrame(columns=summary_lib.RESULT_COLUMNS)
        )
        self.boundaries = pd.read_csv(self.boundaries_path) if self.boundaries_path.is_file() else pd.DataFrame()

    def done(self) -> set[tuple[str, str, int]]:
        return _done(self.results)

    def add(self, run: Run, rows: pd.DataFrame, boundary: pd.DataFrame | None) -> None:
        self.results = self._in_run_order(pd.concat([self.results, rows], ignore_index=True) if len(self.results) else rows)
        write_csv_atomic(self.results_path, self.results)
        if boundary is not None:
            both = pd.concat([self.boundaries, boundary], ignore_index=True) if len(self.boundaries) else boundary
            self.boundaries = self._in_run_order(both)
            write_csv_atomic(self.boundaries_path, self.boundaries)
        shutil.rmtree(self.out / "checkpoints" / run.folder, ignore_errors=True)

    def _in_run_order(self, frame: pd.DataFrame) -> pd.DataFrame:
        keys = zip(frame["problem"], frame["optimizer"], frame["seed"].astype(int))
        position = pd.Series([self.order.get(key, len(self.order)) for key in keys], index=frame.index)
        return frame.loc[position.sort_values(kind="stable").index].reset_index(drop=True)


def run_all(spec: Spec, out: Path, progress: bool = True, distributed=None, jobs: int = 1) -> pd.DataFrame:
    """Train every run not yet in ``out/results.csv``; rewrite the CSV files after each run.

    ``jobs > 1`` trains that many runs at a time, each in a process of its own (runs are
    independent and seeded, so the numbers are those of ``jobs=1``).
    """
    runs = spec.runs()
    store = _Store(out, runs)
    done = store.done()
    pending = []
    for index, run in enumerate(runs, start=1):
        if run.key in done:  # finished before an interruption: a leftover checkpoint is stale
            shutil.rmtree(out / "checkpoints" / run.folder, ignore_errors=True)
        else:
            pending.append((index, run))
    if jobs > 1 and pending:
        _run_in_processes(pending, spec, out, store, jobs, progress)
    else:
        _run_in_sequence(pending, len(runs), spec, out, store, progress, distributed)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return store.results


def _run_in_sequence(pending, total: int, spec: Spec, out: Path, store: _Store, progress: bool, distributed) -> None:
    from tqdm import tqdm

    data = DataCache(spec.quick)
    for index, run in pending:
        label = f"[{index}/{total}] {run.problem} {run.optimizer} seed {run.seed}"
        with tqdm(total=run.epochs, desc=label, unit="epoch", disable=not progress, leave=True, file=sys.stderr) as bar:

            def on_epoch(row: dict, bar=bar) -> None:
                bar.n = int(row["epoch"])
                bar.set_postfix(loss=f"{row['loss']:.4f}", val_acc=f"{row.get('val_accuracy', float('nan')):.4f}",
                                status=row["status"], refresh=False)
                bar.refresh()

            rows, boundary = run_one(run, spec, data(run.problem), out, on_epoch, distributed)
        store.add(run, rows, boundary)


def _run_in_processes(pending, spec: Spec, out: Path, store: _Store, jobs: int, progress: bool) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    # spawn, not fork: a forked copy of an initialised TensorFlow or JAX runtime is not safe
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_train_in_worker, run, spec, out): run for _, run in pending}
        with tqdm(total=len(futures), desc=f"runs, {jobs} at a time", unit="run", disable=not progress,
                  file=sys.stderr) as bar:
            for future in as_completed(futures):
                run = futures[future]
                rows, boundary = future.result()
                store.add(run, rows, boundary)
                last = rows.iloc[-1]
                bar.set_postfix_str(f"{run.problem} {run.optimizer} seed {run.seed}: val_acc {last['val_accuracy']:.4f} "
                                    f"({last['status']})", refresh=False)
                bar.update()


_worker_data: DataCache | None = None


def _start_worker(parent: int) -> None:
    """In each worker process: exit when the parent dies (a killed comparison must not leave
    workers writing checkpoints that a ``--resume`` is about to read)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _train_in_worker(run: Run, spec: Spec, out: Path):
    global _worker_data
    if _worker_data is None:
        _worker_data = DataCache(spec.quick)  # each problem's data, loaded once per worker
    return run_one(run, spec, _worker_data(run.problem), out)


# --- summary, plots, report ----------------------------------------------------------------------


def make_outputs(out: Path, spec: Spec, run_info: dict) -> pd.DataFrame:
    """summary.csv, summary.md, plots/*.png and report.md from the CSV files in ``out``."""
    results = pd.read_csv(out / "results.csv")
    targets = {problem: spec.target_for(problem) for problem in results["problem"].unique()}
    summary = summary_lib.summarize(results, targets)
    write_csv_atomic(out / "summary.csv", summary)
    table_md = summary_lib.markdown_table(summary_lib.summary_table(summary))
    write_text_atomic(out / "summary.md", table_md)
    plots_dir = out / "plots"
    plots_dir.mkdir(exist_ok=True)
    plots = [summary_lib.plot_curves(results, p, plots_dir / f"curves_{p}.png") for p in results["problem"].unique()]
    plots.append(summary_lib.plot_time_to_target(summary, plots_dir / "time_to_target.png"))
    boundaries_path = out / "boundaries.csv"
    if boundaries_path.is_file():
        from lab.datasets import load_moons

        test = load_moons()
        plots.append(
            summary_lib.plot_boundaries(
                pd.read_csv(boundaries_path), (test.x_test, test.y_test), plots_dir / "moons_boundaries.png", results
            )
        )
    settings = {
        "problems": ", ".join(
            f"{p} ({PROBLEMS[p].description}; {spec.epochs_for(p)} epochs, batch "
            f"{spec.batch_size_for(p) or 'full'}, target {spec.target_for(p) * 100:g}%)"
            for p in spec.problems
        ),
        "optimizers": ", ".join(spec.optimizers)
        + ("; moons: learning rate 0.01 unless the spec sets one" if "moons" in spec.problems else ""),
        "seeds": spec.seeds,
        "quick": spec.quick,
        "backend": run_info.get("backend"),
        "versions": ", ".join(f"{k} {v}" for k, v in run_info.get("versions", {}).items()),
    }
    notes = [
        f"{row['problem']} {row['optimizer']}: diverged in {row['diverged']} of {row['seeds']} seeds "
        f"(epoch {row['diverged_epochs']})"
        for _, row in summary.iterrows()
        if row["diverged"]
    ]
    relative = [plot.relative_to(out) for plot in plots]
    write_text_atomic(out / "report.md", summary_lib.report_markdown(table_md, relative, settings, notes))
    return summary


# --- command line ------------------------------------------------------------------------------


def build_parser():
    from lab.registry import OPTIMIZERS

    parser = make_parser(
        NAME,
        __doc__.split("\n\n")[0]
        + "\n\nDefaults: problems mnist_mlp (10 epochs, batch 32, target 97%) and moons (200 epochs,\n"
        "full batch, learning rate 0.01 for every optimizer, target 95%); optimizers sgd momentum\n"
        "rmsprop adam with the registry's defaults; 3 seeds. mnist_cnn (3 epochs, target 98%) is\n"
        "optional.",
    )
    parser.add_argument(
        "--problems", nargs="+", default=None, metavar="NAME",
        help=f"problems to run, of: {', '.join(PROBLEMS)} (default: {' '.join(DEFAULT_PROBLEMS)})",
    )
    parser.add_argument(
        "--optimizers", nargs="+", default=None, metavar="SPEC",
        help=f"registry names, of: {', '.join(OPTIMIZERS)}; each with optional overrides of its constructor "
        "arguments, e.g. sgd momentum:momentum=0.95 adam:learning_rate=3e-4 "
        f"(default: {' '.join(DEFAULT_OPTIMIZERS)})",
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help="epochs for every problem (default: each problem's own)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=None, help="batch size for every problem (default: 32 for MNIST, full batch for moons)"
    )
    parser.add_argument("--seeds", type=positive_int, default=None, help=f"how many seeds, 0..N-1 (default: {DEFAULT_SEEDS}; 1 with --quick)")
    parser.add_argument(
        "--target-accuracy", type=positive_float, default=None,
        help="validation accuracy (0-1] whose epochs/seconds to reach are reported (default: 0.97 MNIST MLP, 0.98 CNN, 0.95 moons)",
    )
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    parser.add_argument("--resume", type=Path, default=None, metavar="DIR", help="continue an interrupted run in DIR with its own settings")
    parser.add_argument("--replot", type=Path, default=None, metavar="DIR", help="re-make summary, plots and report of DIR from its CSV files (no training)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        metavar="N",
        help="train N runs at a time, each in its own process; the numbers are those of --jobs 1 "
        "(default: 1; 2 on a 2-core CPU is about 1.5x faster, see the README's Performance section)",
    )
    parser.add_argument(
        "--strategy",
        choices=STRATEGY_NAMES,
        default="none",
        help="train under a distribution strategy: mirrored (all local GPUs; on JAX "
        "keras.distribution.DataParallel), multiworker (TensorFlow, a cluster described by TF_CONFIG on "
        "every worker); --batch-size is the global batch (default: none)",
    )
    parser.add_argument(
        "--logical-cpus",
        type=positive_int,
        default=None,
        metavar="N",
        help="with --strategy mirrored on a machine without GPUs: split the CPU into N devices",
    )
    return parser


def _run_info(spec: Spec) -> dict:
    import keras

    versions = {"python": platform.python_version(), "keras": keras.__version__, "numpy": np.__version__}
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        versions["jax"] = jax.__version__
    elif backend == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    return {"experiment": NAME, "spec": spec.to_json(), "backend": backend, "versions": versions}


def _load_run_info(folder: Path, flag: str) -> dict:
    info = read_run_info(folder, NAME, flag)
    if "spec" not in info:
        raise UsageError(f"{flag} {folder}: run.json holds no spec of the comparison; it is not a complete {NAME} run")
    return info


def _spec_from_args(args) -> Spec:
    quick = bool(args.quick)
    return Spec(
        problems=tuple(p.strip().lower() for p in (args.problems or DEFAULT_PROBLEMS)),
        optimizers=tuple(args.optimizers or DEFAULT_OPTIMIZERS),
        seeds=args.seeds if args.seeds is not None else (1 if quick else DEFAULT_SEEDS),
        epochs=args.epochs,
        batch_size=args.batch_size,
        target_accuracy=args.target_accuracy,
        quick=quick,
        tensorboard=not args.no_tensorboard,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse reports its own errors with exit code 2
    if args.target_accuracy is not None and args.target_accuracy > 1:
        raise UsageError(f"--target-accuracy must be in (0, 1], got {args.target_accuracy}")
    if args.replot is not None and args.resume is not None:
        raise UsageError("--replot and --resume cannot be combined")
    given = [flag for flag, value in (("--problems", args.problems), ("--optimizers", args.optimizers),
             ("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--seeds", args.seeds),
             ("--target-accuracy", args.target_accuracy), ("--out", args.out)) if value is not None]
    given += [flag for flag, value in (("--quick", args.quick), ("--no-tensorboard", args.no_tensorboard)) if value]

    if args.replot is not None:
        info = _load_run_info(args.replot, "--replot")
        if not (args.replot / "results.csv").is_file():
            raise UsageError(f"--replot {args.replot}: no results.csv there yet")
        summary = make_outputs(args.replot, Spec.from_json(info["spec"]), info)
        print(summary_lib.markdown_table(summary_lib.summary_table(summary)))
        print(f"re-plotted {args.replot}")
        return 0

    if args.jobs > 1 and args.strategy != "none":
        raise UsageError("--jobs and --strategy cannot be combined: a strategy trains one run on all the devices")
    try:  # before anything runs on the backend: the strategy fixes the devices
        distributed = make_strategy(args.strategy, logical_cpus=args.logical_cpus)
    except (ValueError, RuntimeError) as error:
        raise UsageError(f"--strategy {args.strategy}: {error}") from None
    if distributed.num_workers > 1:
        if args.resume is not None:
            raise UsageError("--resume is not supported with --strategy multiworker: restart the comparison")
        if not distributed.is_chief:  # every worker trains the same runs; only the chief keeps outputs
            import tempfile

            with tempfile.TemporaryDirectory(prefix=f"{NAME}-worker{distributed.worker_index}-") as scratch:
                run_all(check_spec(_spec_from_args(args)), Path(scratch), progress=False, distributed=distributed)
            return 0

    if args.resume is not None:
        if given:
            raise UsageError(f"--resume takes every setting from {args.resume}/run.json; drop {' '.join(given)}")
        out = args.resume
        info = _load_run_info(out, "--resume")
        check_same_backend(info, out)
        spec = check_spec(Spec.from_json(info["spec"]))
        prepare_output_dir(out)
    else:
        spec = check_spec(_spec_from_args(args))
        out = args.out if args.out is not None else default_output_dir(NAME)
        if (out / "run.json").exists():
            raise UsageError(f"{out} already holds a run; use --resume {out} to continue it or choose another --out")
        prepare_output_dir(out)
        info = _run_info(spec)
        write_json_atomic(out / "run.json", info)

    run_all(spec, out, progress=not args.no_progress, distributed=distributed, jobs=args.jobs)
    summary = make_outputs(out, spec, info)
    print(summary_lib.markdown_table(summary_lib.summary_table(summary)))
    print(f"results in {out} (report.md, results.csv, summary.md, plots/, tensorboard/)")
    return 0


if __name__ == "__main__":
    run_main(main)
