"""Per-step training time of each lab optimiser relative to its Keras built-in twin.

    python -m benchmarks.optimizer_step [--backend tensorflow|jax|both] [--repeats N] [--steps S]

The model is the MNIST MLP (``lab.models.mnist_mlp``), batch 32, the settings of each registry name
(``lab.registry``) for both the lab class and the Keras class of the same name. Each backend runs
in its own subprocess. Within it, every pair is compiled and warmed up (the first, compiling
``fit`` is not timed), then timed in interleaved repetitions -- lab, Keras, lab, Keras, ... -- of
``S`` training steps each, so slow drifts of the machine hit both alike. The table gives the median
milliseconds per step and the ratio of the medians (lab / Keras; target <= 1.05); the rows are
appended, with a description of the machine, to ``benchmarks/results/optimizer_step.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.machine import append_csv_row, describe_machine

BACKENDS = ("tensorflow", "jax")
BATCH_SIZE = 32
RESULTS = Path(__file__).resolve().parent / "results" / "optimizer_step.csv"


def _time_fit(model: Any, x: Any, y: Any) -> float:
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
    return time.perf_counter() - start


def measure(repeats: int, steps: int, names: list[str]) -> list[dict[str, Any]]:
    """Run in the worker process (the backend is already chosen by KERAS_BACKEND)."""
    import keras

    from lab.datasets import mnist_arrays
    from lab.models import mnist_mlp
    from lab.registry import OPTIMIZERS, parse_spec

    data = mnist_arrays(flatten=True, subset=steps * BATCH_SIZE)
    x, y = data.x_train, data.y_train
    rows = []
    for name in names:
        spec = parse_spec(name)
        keras_class = getattr(keras.optimizers, OPTIMIZERS[name].class_name)
        models = {}
        for side, optimizer in (("lab", spec.build()), ("keras", keras_class(**spec.arguments()))):
            model = mnist_mlp(seed=0)
            model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
            _time_fit(model, x, y)  # warm-up: tracing and compilation, not timed
            models[side] = model
        seconds: dict[str, list[float]] = {"lab": [], "keras": []}
        for _ in range(repeats):
            for side in ("lab", "keras"):
                seconds[side].append(_time_fit(models[side], x, y) / steps)
        lab_median, keras_median = statistics.median(seconds["lab"]), statistics.median(seconds["keras"])
        rows.append(
            {
                "optimizer": name,
                "lab_ms_per_step": round(1000 * lab_median, 4),
                "keras_ms_per_step": round(1000 * keras_median, 4),
                "ratio": round(lab_median / keras_median, 4),
                "lab_spread_ms": round(1000 * (max(seconds["lab"]) - min(seconds["lab"])), 4),
                "keras_spread_ms": round(1000 * (max(seconds["keras"]) - min(seconds["keras"])), 4),
            }
        )
        keras.backend.clear_session()
    return rows


def run_backend(backend: str, repeats: int, steps: int, names: list[str]) -> list[dict[str, Any]]:
    """Measure one backend in a fresh subprocess; return its rows."""
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "benchmarks.optimizer_step", "--worker", "--backend", backend,
               "--repeats", str(repeats), "--steps", str(steps), "--optimizers", ",".join(names)]
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the {backend} worker failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | optimizer | lab ms/step | Keras ms/step | ratio |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['backend']} | {row['optimizer']} | {row['lab_ms_per_step']:.3f} | "
            f"{row['keras_ms_per_step']:.3f} | {row['ratio']:.3f} |"
        )
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    from lab.registry import OPTIMIZERS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.optimizer_step", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--repeats", type=int, default=7, help="timed repetitions per optimiser and side (default 7)")
    parser.add_argument("--steps", type=int, default=100, help="training steps per repetition (default 100)")
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma-separated registry names (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="CSV to append to")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1 or arguments.steps < 1:
        parser.error("--repeats and --steps must be >= 1")
    names = [n.strip() for n in arguments.optimizers.split(",") if n.strip()]
    unknown = [n for n in names if n not in OPTIMIZERS]
    if unknown or not names:
        parser.error(f"unknown optimizers {unknown}; valid: {', '.join(OPTIMIZERS)}")
    arguments.names = names
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.worker:
        print(json.dumps(measure(arguments.repeats, arguments.steps, arguments.names)))
        return 0
    backends = BACKENDS if arguments.backend == "both" else (arguments.backend,)
    machine = describe_machine()
    rows = []
    for backend in backends:
        for row in run_backend(backend, arguments.repeats, arguments.steps, arguments.names):
            rows.append({**machine, "backend": backend, "batch_size": BATCH_SIZE, "steps": arguments.steps,
                         "repeats": arguments.repeats, **row})
    append_csv_row(arguments.output, rows)
    print(format_table(rows))
    print(f"\n{machine['cpu_model']}, {machine['usable_cores']} usable cores; rows appended to {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
