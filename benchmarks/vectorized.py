"""Vectorised groups (``experiments.vectorized``) against the fit path and plain ``model.fit``.

    python -m benchmarks.vectorized [--skip-mnist] [--skip-moons]

Whole processes, timed from start to exit (imports, data, compilation, training, summary and
plots), on JAX, interleaved in one run so that they share the machine's load:

- **moons**: ``python -m experiments.compare_optimizers --problems moons --no-tensorboard`` (12
  runs: 4 optimisers x 3 seeds, 200 full-batch epochs) vectorised, the same with
  ``--no-vectorize``, and the same 12 trainings as a plain ``model.fit`` loop
  (``benchmarks.compare_wall_time``'s straightforward worker);
- **mnist_mlp**: ``--problems mnist_mlp --optimizers adam --seeds 3 --epochs 2 --no-tensorboard``
  vectorised (forced: the grid itself keeps epochs of more than
  ``experiments.vectorized.MAX_STEPS_PER_EPOCH`` steps on the fit path) and with ``--no-vectorize``, and the compute floor of those 6 epochs
  (``benchmarks.matmul_floor``: FLOPs / this machine's matmul rate at the layer shapes).

"Training" is the training itself: the sum over runs of the ``seconds`` column from the end of
the first epoch to the end of the last (the first epoch holds the compilation), read from each
job's ``results.csv``. The largest relative difference of loss, accuracy and validation columns
between the two paths is reported too. Rows go to ``benchmarks/results/vectorized.csv``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.compare_wall_time import ROOT, time_main_job, time_straightforward
from benchmarks.machine import append_csv_row, describe_machine

RESULTS = Path(__file__).resolve().parent / "results" / "vectorized.csv"
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


# the main job with every group vectorised, however long its epochs (the grid keeps groups of
# long epochs on the fit path: experiments.vectorized.MAX_STEPS_PER_EPOCH)
FORCED = ("import sys, experiments.vectorized as v; v.MAX_STEPS_PER_EPOCH = 10**9; "
          "from experiments import compare_optimizers as job; from experiments.cli import run_main; "
          "run_main(job.main, sys.argv[1:])")


def _job(arguments: list[str], scratch: Path, name: str, forced: bool = False) -> tuple[float, float, Path]:
    out = scratch / name
    if forced:
        command = [sys.executable, "-c", FORCED, "--out", str(out), "--no-progress", *arguments]
        environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "jax"}
        start = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"compare_optimizers failed:\n{result.stderr[-4000:]}")
    else:
        seconds = time_main_job(arguments, out, "jax")
    return seconds, training_seconds(out), out


def moons(scratch: Path) -> list[dict[str, Any]]:
    vectorised, vectorised_training, vectorised_out = _job(MOONS, scratch, "moons")
    fit_path, fit_training, fit_out = _job([*MOONS, "--no-vectorize"], scratch, "moons-fit")
    plain, _ = time_straightforward(["--problems", "moons"], "jax")
    difference = largest_difference(vectorised_out, fit_out)
    return [
        {"case": "moons 12 runs", "path": "vectorised", "seconds": vectorised, "training_seconds": vectorised_training,
         "max_relative_difference": difference},
        {"case": "moons 12 runs", "path": "--no-vectorize", "seconds": fit_path, "training_seconds": fit_training,
         "max_relative_difference": 0.0},
        {"case": "moons 12 runs", "path": "plain model.fit", "seconds": plain, "training_seconds": float("nan"),
         "max_relative_difference": float("nan")},
    ]


def mnist(scratch: Path) -> list[dict[str, Any]]:
    from benchmarks.matmul_floor import measure_floor

    vectorised, vectorised_training, vectorised_out = _job(MNIST, scratch, "mnist", forced=True)
    fit_path, fit_training, fit_out = _job([*MNIST, "--no-vectorize"], scratch, "mnist-fit")
    epoch_floor = measure_floor()["floor_seconds"]
    floor, training_floor = 6 * epoch_floor, 3 * epoch_floor  # 3 runs x 2 epochs; the training: epoch 2
    difference = largest_difference(vectorised_out, fit_out)
    return [
        {"case": "mnist_mlp 3 runs x 2 epochs", "path": "vectorised", "seconds": vectorised,
         "training_seconds": vectorised_training, "max_relative_difference": difference},
        {"case": "mnist_mlp 3 runs x 2 epochs", "path": "--no-vectorize", "seconds": fit_path,
         "training_seconds": fit_training, "max_relative_difference": 0.0},
        {"case": "mnist_mlp 3 runs x 2 epochs", "path": "compute floor", "seconds": floor, "training_seconds": training_floor,
         "max_relative_difference": float("nan")},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vectorized", description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-moons", action="store_true")
    parser.add_argument("--skip-mnist", action="store_true")
    arguments = parser.parse_args(argv)
    machine = describe_machine()
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        scratch = Path(temporary)
        for name, measure in (("moons", moons), ("mnist", mnist)):
            if getattr(arguments, f"skip_{name}"):
                continue
            load = os.getloadavg()[0]
            for row in measure(scratch):
                rows.append({**machine, **row, "load_average_before": round(load, 2),
                             "load_average_after": round(os.getloadavg()[0], 2)})
    print("| case | path | wall s | training s | vectorised faster (wall) | (training) | max rel. difference |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        base = next(r for r in rows if r["case"] == row["case"] and r["path"] == "vectorised")
        wall = row["seconds"] / base["seconds"]
        training = row["training_seconds"] / base["training_seconds"] if base["training_seconds"] else float("nan")
        print(f"| {row['case']} | {row['path']} | {row['seconds']:.2f} | {row['training_seconds']:.3f} | "
              f"{wall:.2f}x | {training:.1f}x | {row['max_relative_difference']:.2g} |")
    append_csv_row(RESULTS, [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()} for row in rows])
    print(f"{machine['cpu_model']}, {machine['usable_cores']} usable cores; rows appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
