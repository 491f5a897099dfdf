"""Per-step training time of each lab optimiser relative to its Keras built-in twin.

    python -m benchmarks.optimizer_step [--backend tensorflow|jax|torch|all] [--repeats N] [--steps S]

The model is the MNIST MLP (``lab.models.mnist_mlp``), batch 32, the settings of each registry name
(``lab.registry``) for both the lab class and the Keras class of the same name; by default every
registry name whose class has a Keras twin (``twin_names``: all fourteen Keras built-ins, SGD
three times as sgd, momentum and nesterov). Each backend -- TensorFlow, JAX and PyTorch by
default (``--backend all``) -- runs in its own subprocess. Within it, every pair is compiled and
warmed up (the first, compiling ``fit`` is not timed), then timed in interleaved repetitions -- lab, Keras, lab, Keras, ... -- of
``S`` training steps each, so slow drifts of the machine hit both alike. The table gives the median
milliseconds per step and the median over repetitions of the ratio lab / Keras within each
repetition (target <= 1.05). A control row times one Keras optimiser against a second instance
of itself (``--control``, default adam): its distance from 1 is the noise of the measurement on
this machine at this time. The rows are appended, with a description of the machine, to
``benchmarks/results/optimizer_step.csv``; the printed table has one row per optimiser and a
column pair (ms/step, ratio) per backend.
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

BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
BATCH_SIZE = 32
RESULTS = Path(__file__).resolve().parent / "results" / "optimizer_step.csv"


def _time_fit(model: Any, x: Any, y: Any) -> float:
    start = time.perf_counter()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, shuffle=False, verbose=0)
    return time.perf_counter() - start


def _time_pair(first: Any, second: Any, x: Any, y: Any, repeats: int) -> dict[str, float]:
    """Milliseconds per step of two optimisers on the same model, timed in alternation."""
    from lab.models import mnist_mlp

    steps = len(x) // BATCH_SIZE
    models = []
    for optimizer in (first, second):
        model = mnist_mlp(seed=0)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        _time_fit(model, x, y)  # warm-up: tracing and compilation, not timed
        models.append(model)
    seconds: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for model, times in zip(models, seconds):
            times.append(_time_fit(model, x, y) / steps)
    return {
        "first_ms_per_step": 1000 * statistics.median(seconds[0]),
        "second_ms_per_step": 1000 * statistics.median(seconds[1]),
        # each repetition's pair ran back to back: its ratio cancels slow drifts of the machine
        "ratio": statistics.median(a / b for a, b in zip(*seconds)),
        "first_spread_ms": 1000 * (max(seconds[0]) - min(seconds[0])),
        "second_spread_ms": 1000 * (max(seconds[1]) - min(seconds[1])),
    }


def measure(repeats: int, steps: int, names: list[str], control: str | None) -> list[dict[str, Any]]:
    """Run in the worker process (the backend is already chosen by KERAS_BACKEND)."""
    import keras

    from lab.datasets import mnist_arrays
    from lab.registry import OPTIMIZERS, parse_spec

    data = mnist_arrays(flatten=True, subset=steps * BATCH_SIZE)

    def keras_twin(name: str) -> keras.optimizers.Optimizer:
        return getattr(keras.optimizers, OPTIMIZERS[name].class_name)(**parse_spec(name).arguments())

    pairs = [(name, lambda name=name: parse_spec(name).build(), lambda name=name: keras_twin(name)) for name in names]
    if control:  # Keras against itself: the ratio a perfect twin would show on this machine today
        pairs.append((f"{control} (control: Keras vs Keras)", lambda: keras_twin(control), lambda: keras_twin(control)))
    rows = []
    for label, make_first, make_second in pairs:
        timing = _time_pair(make_first(), make_second(), data.x_train, data.y_train, repeats)
        rows.append(
            {
                "optimizer": label,
                "lab_ms_per_step": round(timing["first_ms_per_step"], 4),
                "keras_ms_per_step": round(timing["second_ms_per_step"], 4),
                "ratio": round(timing["ratio"], 4),
                "lab_spread_ms": round(timing["first_spread_ms"], 4),
                "keras_spread_ms": round(timing["second_spread_ms"], 4),
            }
        )
        keras.backend.clear_session()
    return rows


def run_backend(backend: str, repeats: int, steps: int, names: list[str], control: str) -> list[dict[str, Any]]:
    """Measure one backend in a fresh subprocess; return its rows."""
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "benchmarks.optimizer_step", "--worker", "--backend", backend,
               "--repeats", str(repeats), "--steps", str(steps), "--optimizers", ",".join(names),
               "--control", control]
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the {backend} worker failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def format_table(rows: list[dict[str, Any]]) -> str:
    """One row per optimiser, in the order measured; a column pair per backend that ran: the lab
    class's ms/step and the median ratio lab / Keras (blank where a backend lacks the row)."""
    backends = list(dict.fromkeys(row["backend"] for row in rows))
    cells = {(row["optimizer"], row["backend"]): row for row in rows}
    header = "| optimiser | " + " | ".join(f"{BACKEND_NAMES.get(b, b)} ms/step | ratio" for b in backends) + " |"
    lines = [header, "| --- |" + " ---: | ---: |" * len(backends)]
    for optimizer in dict.fromkeys(row["optimizer"] for row in rows):
        values = []
        for backend in backends:
            row = cells.get((optimizer, backend))
            values += ["", ""] if row is None else [f"{row['lab_ms_per_step']:.3f}", f"{row['ratio']:.3f}"]
        lines.append(f"| {optimizer} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def twin_names() -> list[str]:
    """The registry names whose lab class has a Keras built-in of the same name."""
    import keras

    from lab.registry import OPTIMIZERS

    return [name for name, entry in OPTIMIZERS.items() if hasattr(keras.optimizers, entry.class_name)]


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    twins = twin_names()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.optimizer_step", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=(*BACKENDS, "all"), default="all",
                        help="the backend to measure, each in its own subprocess (default: all three)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repetitions per optimiser and side (default 7)")
    parser.add_argument("--steps", type=int, default=100, help="training steps per repetition (default 100)")
    parser.add_argument(
        "--optimizers", default=",".join(twins), help="comma-separated registry names (default: all with a Keras twin)"
    )
    parser.add_argument(
        "--control", default="adam", help="also time this Keras optimiser against itself, the noise floor ('' for none)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="CSV to append to")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1 or arguments.steps < 1:
        parser.error("--repeats and --steps must be >= 1")
    names = [n.strip() for n in arguments.optimizers.split(",") if n.strip()]
    unknown = [n for n in names if n not in twins]
    if unknown or not names:
        parser.error(f"unknown optimizers (or without a Keras twin) {unknown}; valid: {', '.join(twins)}")
    if arguments.control and arguments.control not in twins:
        parser.error(f"unknown --control {arguments.control!r}; valid: {', '.join(twins)}")
    arguments.names = names
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.worker:
        print(json.dumps(measure(arguments.repeats, arguments.steps, arguments.names, arguments.control)))
        return 0
    backends = BACKENDS if arguments.backend == "all" else (arguments.backend,)
    machine = describe_machine()
    rows = []
    for backend in backends:
        for row in run_backend(backend, arguments.repeats, arguments.steps, arguments.names, arguments.control):
            rows.append({**machine, "backend": backend, "batch_size": BATCH_SIZE, "steps": arguments.steps,
                         "repeats": arguments.repeats, **row})
    append_csv_row(arguments.output, rows)
    print(format_table(rows))
    print(f"\n{machine['cpu_model']}, {machine['usable_cores']} usable cores; rows appended to {arguments.output}")
    return 0


if __name__ == "__main__":
    from experiments.cli import prefer_jax_backend

    prefer_jax_backend()  # the parent only reads the registry; JAX imports without TensorFlow's chatter
    sys.exit(main())
