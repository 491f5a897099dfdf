"""MNIST MLP epoch time at batch 32, three ways, next to the compute floor.

    python -m benchmarks.mnist_epoch [--repeats 3] [--configs keras_defaults_tf lab_tf lab_jax]

The model is ``lab.models.mnist_mlp`` (784-128-10), the optimiser the registry's ``adam`` (the
lab's Adam, learning rate 0.001), batch 32, one epoch = the 60,000 training images (1,875 steps),
loss sparse categorical cross-entropy with the accuracy metric, no validation. The ways:

    keras_defaults_tf   TensorFlow; ``model.compile(...)`` and ``model.fit(x, y, batch_size=32)``
                        with everything else at Keras's defaults (steps_per_execution=1,
                        jit_compile="auto", shuffle=True): the notebooks' way
    lab_tf              TensorFlow; ``experiments.training.train_run`` (in-memory tf.data
                        pipeline in a per-epoch seeded order, steps_per_execution=32,
                        jit_compile="auto"): the lab's path
    lab_jax             the same ``train_run`` on JAX
    keras_defaults_jax  (optional) Keras's defaults on JAX
    lab_tf_spe<N>, lab_jax_spe<N>  (optional) the lab's path with steps_per_execution=N

Each way runs in its own subprocess (so each has a fresh backend). Within it, one ``fit`` trains
``1 + repeats`` epochs; the first (tracing, compiling) is the warm-up and is not counted; the
median of the others is the epoch time. The compute floor comes from ``benchmarks.matmul_floor``
(FLOPs per epoch / measured float32 matmul rate at the layer shapes; its docstring states the
count), measured in this process just before the ways run. The table gives each way's seconds
and its ratio to the floor (target <= 3); rows are appended to
``benchmarks/results/mnist_epoch.csv`` with the machine's description and the load average.
The 1-minute load average is recorded before and after: on a shared machine with a load above
the core count every time here is inflated.
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

RESULTS = Path(__file__).resolve().parent / "results" / "mnist_epoch.csv"
BATCH_SIZE = 32
DEFAULT_CONFIGS = ("keras_defaults_tf", "lab_tf", "lab_jax")
BASE_CONFIGS = ("keras_defaults_tf", "keras_defaults_jax", "lab_tf", "lab_jax")


def parse_config(name: str) -> tuple[str, str, int | None]:
    """``lab_jax_spe64`` -> ("lab", "jax", 64); ``keras_defaults_tf`` -> ("keras_defaults", "tensorflow", None)."""
    base, _, spe = name.partition("_spe")
    if base not in BASE_CONFIGS or (spe and (not spe.isdigit() or int(spe) < 1)):
        raise ValueError(f"unknown config {name!r}; valid: {', '.join(BASE_CONFIGS)} (lab_* may end in _spe<N>)")
    path, _, short = base.rpartition("_")
    if spe and path != "lab":
        raise ValueError(f"{name!r}: _spe<N> applies to the lab's path only")
    return path, {"tf": "tensorflow", "jax": "jax"}[short], int(spe) if spe else None


class _EpochTimer:
    """Wall time of every epoch of a ``fit`` (a Keras callback, built lazily: Keras is imported late)."""

    @staticmethod
    def make():
        import keras

        class EpochTimer(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)

        return EpochTimer()


def measure(config: str, repeats: int, optimizer: str) -> dict[str, Any]:
    """Run in the worker process (KERAS_BACKEND is already set): epoch seconds of ``config``."""
    import keras

    from lab.datasets import mnist_arrays
    from lab.models import mnist_mlp
    from lab.registry import build_optimizer, parse_spec

    path, backend, steps_per_execution = parse_config(config)
    assert keras.backend.backend() == backend, (keras.backend.backend(), backend)
    data = mnist_arrays(flatten=True)
    epochs = 1 + repeats
    keras.utils.set_random_seed(0)
    model = mnist_mlp(seed=0)
    spec = parse_spec(optimizer)
    if path == "keras_defaults":
        model.compile(optimizer=build_optimizer(spec), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        timer = _EpochTimer.make()
        model.fit(data.x_train, data.y_train, batch_size=BATCH_SIZE, epochs=epochs, callbacks=[timer], verbose=0)
        seconds = timer.seconds
        settings = {"steps_per_execution": 1, "jit_compile": model.jit_compile}
    else:
        from experiments.training import DEFAULT_STEPS_PER_EXECUTION, train_run

        steps_per_execution = steps_per_execution or DEFAULT_STEPS_PER_EXECUTION
        rows = train_run(model, build_optimizer(spec), data, epochs=epochs, batch_size=BATCH_SIZE, seed=0,
                         validate=False, steps_per_execution=steps_per_execution)
        cumulative = [0.0] + list(rows["seconds"])
        seconds = [b - a for a, b in zip(cumulative[:-1], cumulative[1:])]
        settings = {"steps_per_execution": steps_per_execution, "jit_compile": model.jit_compile}
    return {
        "config": config,
        "backend": backend,
        "optimizer": optimizer,
        **settings,
        "warmup_seconds": round(seconds[0], 3),
        "epoch_seconds": round(statistics.median(seconds[1:]), 3),
        "epoch_seconds_min": round(min(seconds[1:]), 3),
        "epoch_seconds_max": round(max(seconds[1:]), 3),
    }


def run_config(config: str, repeats: int, optimizer: str) -> dict[str, Any]:
    """Measure one way in a fresh subprocess on its backend."""
    _, backend, _ = parse_config(config)
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "benchmarks.mnist_epoch", "--worker", config,
               "--repeats", str(repeats), "--optimizer", optimizer]
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(command, cwd=root, env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the {config} worker failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def format_table(rows: list[dict[str, Any]], floor: dict[str, Any]) -> str:
    lines = [
        "| way | backend | steps/execution | jit | warm-up s | epoch s (median) | min-max | x floor | x peak floor |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['config']} | {row['backend']} | {row['steps_per_execution']} | {row['jit_compile']} | "
            f"{row['warmup_seconds']:.2f} | {row['epoch_seconds']:.2f} | "
            f"{row['epoch_seconds_min']:.2f}-{row['epoch_seconds_max']:.2f} | "
            f"{row['ratio_to_floor']:.1f} | {row['ratio_to_peak_floor']:.1f} |"
        )
    lines.append(
        f"| compute floor | numpy | | | | {floor['floor_seconds']:.2f} | | 1.0 | |"
    )
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mnist_epoch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS), metavar="WAY",
                        help=f"ways to time (default: {' '.join(DEFAULT_CONFIGS)})")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per way after the warm-up (default 3)")
    parser.add_argument("--optimizer", default="adam", help="registry spec (default adam)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="CSV to append to")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1:
        parser.error("--repeats must be >= 1")
    for config in arguments.configs + ([arguments.worker] if arguments.worker else []):
        try:
            parse_config(config)
        except ValueError as error:
            parser.error(str(error))
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.worker:
        print(json.dumps(measure(arguments.worker, arguments.repeats, arguments.optimizer)))
        return 0
    from benchmarks.matmul_floor import measure_floor

    machine = describe_machine()
    load_before = os.getloadavg()[0]
    floor = measure_floor(batch_size=BATCH_SIZE)
    rows = []
    for config in arguments.configs:
        row = run_config(config, arguments.repeats, arguments.optimizer)
        row["ratio_to_floor"] = round(row["epoch_seconds"] / floor["floor_seconds"], 2)
        row["ratio_to_peak_floor"] = round(row["epoch_seconds"] / floor["floor_seconds_at_peak"], 2)
        rows.append(row)
    load_after = os.getloadavg()[0]
    csv_rows = [
        {**machine, **row, "repeats": arguments.repeats, "batch_size": BATCH_SIZE,
         "floor_seconds": floor["floor_seconds"], "floor_seconds_at_peak": floor["floor_seconds_at_peak"],
         "layer_shape_gflops": floor["layer_shape_gflops"], "square2048_gflops": floor["square2048_gflops"],
         "load_average_before": round(load_before, 2), "load_average_after": round(load_after, 2)}
        for row in rows
    ]
    append_csv_row(arguments.output, csv_rows)
    print(format_table(rows, floor))
    print(
        f"\nfloor: {floor['epoch_gflop']} GFLOP per epoch (3 x 2 x {floor['macs_per_example']} MACs x 60000) / "
        f"{floor['layer_shape_gflops']} GFLOP/s (numpy float32 at the layer shapes, "
        f"{floor['layer_shape_blas_threads']} BLAS thread(s)); peak {floor['square2048_gflops']} GFLOP/s at 2048^2 "
        f"-> {floor['floor_seconds_at_peak']} s"
    )
    print(f"{machine['cpu_model']}, {machine['usable_cores']} usable cores; load average {load_before:.2f} before, "
          f"{load_after:.2f} after; rows appended to {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
