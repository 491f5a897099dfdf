"""Vectorised groups (``experiments.vectorized``) against the fit path and plain ``model.fit``.

    python -m benchmarks.vectorized [--skip-mnist] [--skip-moons] [--repeats N]

Whole processes, timed from start to exit (imports, data, compilation, training, summary and
plots), on JAX, interleaved in one run so that they share the machine's load, ``--repeats`` times
(default 3; the table gives medians):

- **moons**: ``python -m experiments.compare_optimizers --problems moons --no-tensorboard`` (12
  runs: 4 optimisers x 3 seeds, 200 full-batch epochs) vectorised, the same with
  ``--no-vectorize``, and the same 12 trainings as a plain ``model.fit`` loop
  (``benchmarks.compare_wall_time``'s straightforward worker, which has no compilation cache);
- **mnist_mlp**: ``--problems mnist_mlp --optimizers adam --seeds 3 --epochs 2 --no-tensorboard``
  vectorised and with ``--no-vectorize``, and the compute floor of those 6 epochs
  (``benchmarks.matmul_floor``: FLOPs / this machine's matmul rate at the layer shapes).

**The compilation cache** (``experiments.compilation_cache``). ``cold``: the job starts with an
empty cache folder of its own (``JAX_COMPILATION_CACHE_DIR``), so it compiles every program (and
writes it); ``warm``: the vectorised job again on the folder its cold run filled, so it compiles
nothing. Every comparison of the paths is cold against cold (or against the plain loop).

"Training" is the training itself: the sum over runs of the ``seconds`` column from the end of
the first epoch to the end of the last (the first epoch holds the compilation), read from each
job's ``results.csv``. The largest relative difference of loss, accuracy and validation columns
between the two paths (and between cold and warm) is reported too. Rows go to
``benchmarks/results/vectorized_cache.csv`` (``vectorized.csv`` holds the rows measured before
the compilation cache, without its column).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.compare_wall_time import ROOT, time_straightforward
from benchmarks.machine import append_csv_row, describe_machine

RESULTS = Path(__file__).resolve().parent / "results" / "vectorized_cache.csv"  # vectorized.csv: before the cache
MOONS = ["--problems", "moons", "--no-tensorboard"]
MNIST = ["--problems", "mnist_mlp", "--optimizers", "adam", "--seeds", "3", "--epochs", "2", "--no-tensorboard"]
NUMBERS = ("loss", "accuracy", "val_loss", "val_accuracy")


def training_seconds(out: Path) -> float:
    """Sum over runs of the seconds from the end of the first epoch to the end of the last."""
    import pandas as pd

    results = pd.read_csv(out / "results.csv")
    keys = ["problem", "optimizer", "seed"]
    span = results.groupby(keys)["seconds"].agg(lambda s: s.iloc[-1] - s.iloc[0])
    return float(span.sum())


def largest_difference(a: Path, b: Path) -> float:
    """The largest relative difference of the number columns of two results.csv files."""
    import numpy as np
    import pandas as pd

    first, second = pd.read_csv(a / "results.csv"), pd.read_csv(b / "results.csv")
    if len(first) != len(second) or not (first["status"] == second["status"]).all():
        return float("inf")
    columns = [c for c in NUMBERS if c in first]
    x, y = first[columns].to_numpy(float), second[columns].to_numpy(float)
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-12)))


def _job(arguments: list[str], out: Path, cache: Path) -> tuple[float, float]:
    """Seconds of one ``experiments.compare_optimizers`` process with its compilation cache in
    ``cache``, and its training seconds."""
    command = [sys.executable, "-m", "experiments.compare_optimizers", "--out", str(out), "--no-progress", *arguments]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax",
                   "JAX_COMPILATION_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"compare_optimizers failed:\n{result.stderr[-4000:]}")
    return seconds, training_seconds(out)


def _measure(scratch: Path, name: str, arguments: list[str], repeat: int, plain: bool) -> list[dict[str, Any]]:
    """One interleaved round: vectorised cold, vectorised warm, --no-vectorize cold (and the plain
    loop)."""
    folder = scratch / f"{name}{repeat}"
    timings = {}
    timings["vectorised", "cold"] = _job(arguments, folder / "vectorised", folder / "cache")
    timings["vectorised", "warm"] = _job(arguments, folder / "vectorised-warm", folder / "cache")
    timings["--no-vectorize", "cold"] = _job([*arguments, "--no-vectorize"], folder / "fit", folder / "fit-cache")
    if plain:
        plain_arguments = [a for a in arguments if a != "--no-tensorboard"]
        timings["plain model.fit", "none"] = (time_straightforward(plain_arguments, "jax")[0], float("nan"))
    differences = {("vectorised", "cold"): largest_difference(folder / "vectorised", folder / "fit"),
                   ("vectorised", "warm"): largest_difference(folder / "vectorised-warm", folder / "vectorised")}
    return [{"path": path, "cache": cache, "seconds": seconds, "training_seconds": training,
             "max_relative_difference": differences.get((path, cache), float("nan"))}
            for (path, cache), (seconds, training) in timings.items()]


def _medians(case: str, rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for position, first in enumerate(rounds[0]):
        same = [r[position] for r in rounds]
        rows.append({"case": case, "path": first["path"], "cache": first["cache"], "repeats": len(same),
                     "seconds": statistics.median(r["seconds"] for r in same),
                     "seconds_each": " ".join(f"{r['seconds']:.1f}" for r in same),
                     "training_seconds": statistics.median(r["training_seconds"] for r in same),
                     "max_relative_difference": max(r["max_relative_difference"] for r in same)})
    return rows


def moons(scratch: Path, repeats: int) -> list[dict[str, Any]]:
    rounds = [_measure(scratch, "moons", MOONS, k, plain=True) for k in range(repeats)]
    return _medians("moons 12 runs", rounds)


def mnist(scratch: Path, repeats: int) -> list[dict[str, Any]]:
    from benchmarks.matmul_floor import measure_floor

    rounds = [_measure(scratch, "mnist", MNIST, k, plain=False) for k in range(repeats)]
    rows = _medians("mnist_mlp 3 runs x 2 epochs", rounds)
    epoch_floor = measure_floor()["floor_seconds"]
    rows.append({"case": rows[0]["case"], "path": "compute floor", "cache": "", "repeats": 1,
                 "seconds": 6 * epoch_floor, "seconds_each": "", "training_seconds": 3 * epoch_floor,
                 "max_relative_difference": float("nan")})  # 3 runs x 2 epochs; the training: epoch 2
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vectorized", description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-moons", action="store_true")
    parser.add_argument("--skip-mnist", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3; medians)")
    arguments = parser.parse_args(argv)
    machine = describe_machine()
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        scratch = Path(temporary)
        for name, measure in (("moons", moons), ("mnist", mnist)):
            if getattr(arguments, f"skip_{name}"):
                continue
            load = os.getloadavg()[0]
            for row in measure(scratch, max(1, arguments.repeats)):
                rows.append({**machine, **row, "load_average_before": round(load, 2),
                             "load_average_after": round(os.getloadavg()[0], 2)})
    print("| case | path | cache | wall s (median) | each | training s | vectorised cold faster (wall) | "
          "(training) | max rel. difference |")
    print("| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        base = next(r for r in rows if r["case"] == row["case"] and r["path"] == "vectorised" and r["cache"] == "cold")
        wall = row["seconds"] / base["seconds"]
        training = row["training_seconds"] / base["training_seconds"] if base["training_seconds"] else float("nan")
        print(f"| {row['case']} | {row['path']} | {row['cache']} | {row['seconds']:.2f} | {row['seconds_each']} | "
              f"{row['training_seconds']:.3f} | {wall:.2f}x | {training:.1f}x | {row['max_relative_difference']:.2g} |")
    append_csv_row(RESULTS, [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in rows])
    load = ", ".join(f"{r['case']}: {r['load_average_before']} -> {r['load_average_after']}"
                     for r in rows if r["path"] == "vectorised" and r["cache"] == "cold")
    print(f"{machine['cpu_model']}, {machine['usable_cores']} usable cores; 1-minute load {load}; "
          f"rows appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
