"""Wall time of the main job, and its accuracy against the straightforward ``model.fit`` path.

    python -m benchmarks.compare_wall_time                      # the default main job, timed
    python -m benchmarks.compare_wall_time --check -- --epochs 2 --seeds 1
                                                                # + accuracy check, reduced setting

**Wall time.** ``python -m experiments.compare_optimizers --out <tmp> --no-progress [ARGS]`` in a
subprocess, timed from start to exit (imports, data loading, every run, summary and plots
included), on the backend that job chooses (JAX when ``KERAS_BACKEND`` is unset). Arguments
after ``--`` go to the job (none: the default run, 4 optimizers x 2 problems x 3 seeds).

**Accuracy check** (``--check``). The same problems x optimizers x seeds trained the
straightforward way -- ``keras.utils.set_random_seed(seed)``, the same seeded model and registry
optimiser, ``model.compile`` and ``model.fit(x, y, batch_size, epochs, validation_data)`` with
every other setting at Keras's defaults (its own shuffling, steps_per_execution=1) -- in a
subprocess on the same backend, also timed. The final validation accuracy of every run of the
main job is compared with the straightforward run of the same problem, optimizer and seed; the
target is agreement within +-0.3 percentage points (the example orders differ, so this is a
statistical, not a bitwise, agreement). Rows go to ``benchmarks/results/compare_wall_time.csv``
(one per timed command) and ``benchmarks/results/compare_accuracy.csv`` (one per run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import append_csv_row, describe_machine

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.003  # +-0.3 percentage points of accuracy


def _environment(backend: str | None) -> dict[str, str]:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    environment.pop("KERAS_BACKEND", None)
    if backend:
        environment["KERAS_BACKEND"] = backend
    return environment


def time_main_job(job_arguments: list[str], out: Path, backend: str | None) -> float:
    """Seconds of one ``experiments.compare_optimizers`` subprocess writing to ``out``."""
    command = [sys.executable, "-m", "experiments.compare_optimizers", "--out", str(out), "--no-progress",
               *job_arguments]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=_environment(backend), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"compare_optimizers failed:\n{result.stderr[-4000:]}")
    return seconds


def straightforward_runs(job_arguments: list[str]) -> list[dict[str, Any]]:
    """In the worker: every trial of the job's arguments with plain ``model.fit``; final val accuracy each."""
    import keras

    from experiments import cli
    from experiments import compare_optimizers as job
    from experiments.grid import DataCache, build_optimizer
    from lab.problems import protocol_view

    args = job.build_parser().parse_args(job_arguments)
    seeds = args.seeds if "--seeds" in job_arguments or not args.quick else 1
    trials = job.declare_trials(cli.resolve_problems(args), cli.check_optimizers(args.optimizers), seeds,
                                args.epochs, args.batch_size)
    data = DataCache()
    rows = []
    for trial in trials:
        keras.backend.clear_session()
        split = protocol_view(data(trial.problem), trial.protocol)
        optimizer = build_optimizer(trial)
        keras.utils.set_random_seed(trial.seed)
        model = trial.problem.model(trial.seed)
        model.compile(optimizer=optimizer, loss=trial.problem.loss, metrics=list(trial.problem.metrics))
        start = time.perf_counter()
        batch_size = trial.batch_size or trial.problem.batch_size or len(split.x_train)
        history = model.fit(split.x_train, split.y_train, batch_size=batch_size, epochs=trial.epochs_to_run,
                            validation_data=(split.x_val, split.y_val), verbose=0)
        rows.append({"problem": trial.problem.name, "optimizer": trial.optimizer, "seed": trial.seed,
                     "epochs": trial.epochs_to_run, "val_accuracy": float(history.history["val_accuracy"][-1]),
                     "seconds": time.perf_counter() - start})
    return rows


def time_straightforward(job_arguments: list[str], backend: str) -> tuple[float, list[dict[str, Any]]]:
    """Seconds of the straightforward worker subprocess, and its rows."""
    command = [sys.executable, "-m", "benchmarks.compare_wall_time", "--worker", "--", *job_arguments]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=_environment(backend), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"the straightforward worker failed:\n{result.stderr[-4000:]}")
    return seconds, json.loads(result.stdout.strip().splitlines()[-1])


def final_accuracies(out: Path) -> dict[tuple[str, str, int], float]:
    """(problem, optimizer, seed) -> the last epoch's val_accuracy in the job's results.csv."""
    import pandas as pd

    results = pd.read_csv(out / "results.csv")
    last = results.sort_values("epoch").groupby(["problem", "optimizer", "seed"]).tail(1)
    return {(r.problem, r.optimizer, int(r.seed)): float(r.val_accuracy) for r in last.itertuples()}


def backend_of(out: Path) -> str:
    with open(out / "run.json") as handle:
        return json.load(handle)["backend"]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_wall_time", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax"), default=None,
                        help="KERAS_BACKEND for both paths (default: unset, the job's own choice)")
    parser.add_argument("--check", action="store_true", help="also run the straightforward path and compare accuracy")
    parser.add_argument("--keep", type=Path, default=None, help="write the job's output here instead of a temporary folder")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("job_arguments", nargs="*", help="arguments for compare_optimizers (after --)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.worker:
        print(json.dumps(straightforward_runs(arguments.job_arguments)))
        return 0
    machine = describe_machine()
    label = " ".join(arguments.job_arguments) or "(default)"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as temporary:
        out = arguments.keep or Path(temporary) / "job"
        job_seconds = time_main_job(arguments.job_arguments, out, arguments.backend)
        backend = backend_of(out)
        lab = final_accuracies(out)
    load_after_job = os.getloadavg()[0]
    timings = [{**machine, "command": f"python -m experiments.compare_optimizers {label}".strip(),
                "path": "lab (compare_optimizers)", "backend": backend, "runs": len(lab),
                "seconds": round(job_seconds, 1), "load_average_before": round(load_before, 2),
                "load_average_after": round(load_after_job, 2)}]
    print(f"compare_optimizers {label}: {job_seconds:.1f} s wall on {backend} ({len(lab)} runs; "
          f"load average {load_before:.2f} -> {load_after_job:.2f})")
    if arguments.check:
        plain_seconds, plain_rows = time_straightforward(arguments.job_arguments, backend)
        load_after = os.getloadavg()[0]
        timings.append({**machine, "command": f"plain model.fit, same runs: {label}", "path": "plain model.fit",
                        "backend": backend, "runs": len(plain_rows), "seconds": round(plain_seconds, 1),
                        "load_average_before": round(load_after_job, 2), "load_average_after": round(load_after, 2)})
        accuracy_rows = []
        print(f"plain model.fit, same runs: {plain_seconds:.1f} s wall on {backend} (load average {load_after:.2f})\n")
        print("| problem | optimizer | seed | lab val acc | plain val acc | difference | within 0.3% |")
        print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
        for row in plain_rows:
            key = (row["problem"], row["optimizer"], int(row["seed"]))
            difference = lab[key] - row["val_accuracy"]
            within = abs(difference) <= TOLERANCE + 1e-9
            accuracy_rows.append({**machine, "job_arguments": label, "backend": backend, "problem": key[0],
                                  "optimizer": key[1], "seed": key[2], "epochs": row["epochs"],
                                  "lab_val_accuracy": round(lab[key], 5),
                                  "plain_val_accuracy": round(row["val_accuracy"], 5),
                                  "difference": round(difference, 5), "within_tolerance": within})
            print(f"| {key[0]} | {key[1]} | {key[2]} | {lab[key]:.4f} | {row['val_accuracy']:.4f} | "
                  f"{difference * 100:+.2f}% | {'yes' if within else 'NO'} |")
        append_csv_row(RESULTS / "compare_accuracy.csv", accuracy_rows)
        print(f"\n{sum(r['within_tolerance'] for r in accuracy_rows)} of {len(accuracy_rows)} runs within +-0.3%")
    append_csv_row(RESULTS / "compare_wall_time.csv", timings)
    print(f"{machine['cpu_model']}, {machine['usable_cores']} usable cores; rows appended under {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
