"""Training seconds to 98% MNIST test accuracy: a bounded search over the lab's configurations.

    python -m benchmarks.time_to_98 [--backend jax|tensorflow] [--candidates NAME ...] [--seed 0]

Every candidate is trained with the lab's path (``experiments.training.train_run``: in-memory
data, steps_per_execution=32, jit_compile="auto"), validated on the 10k test set after every
epoch, and stopped at the first epoch whose test accuracy reaches 98%. Its time is the run's
``seconds`` at that epoch: wall time from the start of ``fit`` -- compilation and the per-epoch
validation included, data loading and model building not. The schedules come from
``lab.schedules`` and span the candidate's full epoch budget (a one-cycle run stopped early has
not finished its cycle). A candidate that never reaches 98% reports its best accuracy.

The candidates are declared below as data (``CANDIDATES``); the search is bounded to them. Each
backend runs in its own subprocess; rows go to ``benchmarks/results/time_to_98.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.machine import append_csv_row, describe_machine

RESULTS = Path(__file__).resolve().parent / "results" / "time_to_98.csv"
TARGET = 0.98
MNIST_TRAIN_EXAMPLES = 60_000


@dataclass(frozen=True)
class Candidate:
    """One configuration: model, optimiser spec, schedule, batch size, epoch budget."""

    name: str
    hidden_units: int | None  # MLP width; None: lab.models.mnist_cnn
    optimizer: str  # registry spec; its learning rate is replaced by the schedule
    schedule: str  # "one_cycle" | "warmup_cosine" | "constant"
    peak_learning_rate: float
    batch_size: int
    epochs: int
    steps_per_execution: int = 32


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("mlp128_adam_const_b32", 128, "adam", "constant", 1e-3, 32, 10),
    Candidate("mlp128_adam_onecycle_b128", 128, "adam", "one_cycle", 4e-3, 128, 8),
    Candidate("mlp512_adam_onecycle_b128", 512, "adam", "one_cycle", 3e-3, 128, 5),
    Candidate("mlp512_adamw_onecycle_b256", 512, "adamw", "one_cycle", 4e-3, 256, 5),
    Candidate("mlp512_nadam_warmcos_b256", 512, "nadam", "warmup_cosine", 3e-3, 256, 5),
    Candidate("mlp1024_adam_onecycle_b256", 1024, "adam", "one_cycle", 3e-3, 256, 4),
    Candidate("mlp512_adam_onecycle_b512", 512, "adam", "one_cycle", 6e-3, 512, 6),
    Candidate("mlp512_adam_onecycle_b512_e3", 512, "adam", "one_cycle", 6e-3, 512, 3),
    Candidate("mlp1024_adam_onecycle_b512_e3", 1024, "adam", "one_cycle", 5e-3, 512, 3),
    Candidate("cnn_adam_onecycle_b128", None, "adam", "one_cycle", 3e-3, 128, 2),
)
DEFAULT_CANDIDATES = tuple(c.name for c in CANDIDATES if c.hidden_units is not None and c.hidden_units >= 512)


def make_schedule(candidate: Candidate):
    from lab.schedules import Constant, OneCycle, WarmupCosine

    steps = -(-MNIST_TRAIN_EXAMPLES // candidate.batch_size) * candidate.epochs
    if candidate.schedule == "one_cycle":
        return OneCycle(candidate.peak_learning_rate, steps, pct_start=0.25)
    if candidate.schedule == "warmup_cosine":
        warmup = max(1, steps // 10)
        return WarmupCosine(candidate.peak_learning_rate, warmup, steps - warmup)
    return Constant(candidate.peak_learning_rate)


def train_candidate(candidate: Candidate, seed: int) -> dict[str, Any]:
    """In the worker: train until the test accuracy reaches the target or the budget ends."""
    import keras

    from experiments.training import train_run
    from lab.datasets import mnist_arrays
    from lab.models import mnist_cnn, mnist_mlp
    from lab.registry import parse_spec

    class StopAtTarget(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if (logs or {}).get("val_accuracy", 0.0) >= TARGET:
                self.model.stop_training = True

    keras.backend.clear_session()
    data = mnist_arrays(flatten=candidate.hidden_units is not None)
    if candidate.hidden_units is None:
        model = mnist_cnn(seed)
    else:
        model = mnist_mlp(seed, hidden_units=candidate.hidden_units)
    optimizer = parse_spec(candidate.optimizer).build(learning_rate=make_schedule(candidate))
    rows = train_run(model, optimizer, data, epochs=candidate.epochs, batch_size=candidate.batch_size, seed=seed,
                     steps_per_execution=candidate.steps_per_execution, callbacks=[StopAtTarget()])
    reached = rows[rows["val_accuracy"] >= TARGET]
    first = reached.iloc[0] if len(reached) else None
    return {
        **asdict(candidate),
        "hidden_units": candidate.hidden_units or "cnn",
        "seed": seed,
        "reached": first is not None,
        "epoch_reached": int(first["epoch"]) if first is not None else None,
        "seconds_to_target": round(float(first["seconds"]), 2) if first is not None else None,
        "val_accuracy_at_target": round(float(first["val_accuracy"]), 4) if first is not None else None,
        "best_val_accuracy": round(float(rows["val_accuracy"].max()), 4),
        "epochs_run": len(rows),
        "seconds_run": round(float(rows["seconds"].iloc[-1]), 2),
        "first_epoch_seconds": round(float(rows["seconds"].iloc[0]), 2),
    }


def run_backend(backend: str, names: list[str], seed: int) -> list[dict[str, Any]]:
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    rows = []
    for name in names:  # one subprocess per candidate: each starts from a fresh backend
        command = [sys.executable, "-m", "benchmarks.time_to_98", "--worker", name, "--seed", str(seed)]
        result = subprocess.run(command, cwd=Path(__file__).resolve().parents[1], env=environment,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"candidate {name} on {backend} failed:\n{result.stderr[-4000:]}")
        row = json.loads(result.stdout.strip().splitlines()[-1])
        row["load_average_after"] = round(os.getloadavg()[0], 2)
        rows.append({"backend": backend, **row})
        print(_line(rows[-1]), flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    if row["reached"]:
        result = f"{row['seconds_to_target']:7.2f} s  epoch {row['epoch_reached']}  acc {row['val_accuracy_at_target']:.4f}"
    else:
        result = f"   not reached in {row['epochs_run']} epochs ({row['seconds_run']:.1f} s), best {row['best_val_accuracy']:.4f}"
    return f"{row['backend']:10} {row['name']:30} {result}  (first epoch {row['first_epoch_seconds']:.2f} s, load {row['load_average_after']})"


def main(argv: list[str] | None = None) -> int:
    by_name = {c.name: c for c in CANDIDATES}
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_98", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("jax", "tensorflow"), nargs="+", default=["jax"])
    parser.add_argument("--candidates", nargs="+", default=list(DEFAULT_CANDIDATES), choices=list(by_name),
                        metavar="NAME", help=f"of: {', '.join(by_name)} (default: {' '.join(DEFAULT_CANDIDATES)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS, help="CSV to append to")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.worker:
        print(json.dumps(train_candidate(by_name[arguments.worker], arguments.seed)))
        return 0
    machine = describe_machine()
    load_before = round(os.getloadavg()[0], 2)
    print(f"target {TARGET:.0%} test accuracy; load average {load_before}")
    rows = []
    for backend in arguments.backend:
        rows += run_backend(backend, arguments.candidates, arguments.seed)
    append_csv_row(arguments.output, [{**machine, "load_average_before": load_before, **row} for row in rows])
    reached = [r for r in rows if r["reached"]]
    if reached:
        best = min(reached, key=lambda r: r["seconds_to_target"])
        print(f"\nfastest: {best['name']} on {best['backend']}: {best['seconds_to_target']} s "
              f"(epoch {best['epoch_reached']}, test accuracy {best['val_accuracy_at_target']})")
    else:
        print("\nno candidate reached the target")
    print(f"rows appended to {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
