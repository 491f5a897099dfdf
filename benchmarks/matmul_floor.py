"""The compute floor of an MNIST MLP epoch: FLOPs per epoch / this machine's matmul throughput.

    python -m benchmarks.matmul_floor [--hidden-units 128] [--batch-size 32] [--seconds 0.5]

**FLOP count.** A dense layer with ``k`` inputs and ``n`` units does ``k·n`` multiply-adds (MACs)
per example. Forward + backward is counted, as usual, as 3 x the forward pass (forward, gradient
with respect to the inputs, gradient with respect to the weights), each MAC 2 FLOPs::

    FLOPs per epoch = 3 · 2 · MACs per example · examples per epoch

For the 784-128-10 MLP: MACs = 784·128 + 128·10 = 101,632; 3·2·101,632 = 609,792 FLOPs per
example, 19.5 MFLOP per step of 32, 36.6 GFLOP per 60,000-example epoch. (The exact matrix
products of a step are fewer: the first layer needs no gradient with respect to the images, so
a step multiplies out 2.01 x, not 3 x, the forward MACs; bias adds, ReLU, softmax and the
optimizer's update are O(params) or O(batch·units) and left out.) ``step_matmuls`` lists them.

**Throughput.** float32 ``numpy.matmul`` (OpenBLAS) timed (a) on the exact matrix products of
one training step at the layer shapes -- ``32x784 @ 784x128`` and so on -- and (b) on large
square matrices (1024, 2048), the machine's peak. Each is timed with one BLAS thread and with
all of them (``threadpoolctl``) and the faster is kept: on a busy machine a second BLAS thread
that has to wait for a core makes small products many times slower. The floor uses (a), the
rate this machine reaches at the shapes the step actually has; (b) is reported beside it (a
floor from the peak rate is lower still). The median of repeated timings is used.

Rows are appended to ``benchmarks/results/matmul_floor.csv`` with the machine's description.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import append_csv_row, describe_machine

RESULTS = Path(__file__).resolve().parent / "results" / "matmul_floor.csv"
MNIST_TRAIN_EXAMPLES = 60_000
MNIST_INPUTS = 784
MNIST_CLASSES = 10
SQUARE_SIZES = (1024, 2048)


def mlp_layer_sizes(hidden_units: int = 128) -> list[int]:
    """784 -> hidden -> 10, the sizes of ``lab.models.mnist_mlp``."""
    return [MNIST_INPUTS, int(hidden_units), MNIST_CLASSES]


def macs_per_example(sizes: list[int]) -> int:
    """Multiply-adds of one forward pass through dense layers of these sizes."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def flops_per_epoch(sizes: list[int], examples: int = MNIST_TRAIN_EXAMPLES) -> float:
    """3 (forward + backward) x 2 (FLOPs per MAC) x MACs per example x examples."""
    return 3.0 * 2.0 * macs_per_example(sizes) * examples


def step_matmuls(sizes: list[int], batch_size: int) -> list[tuple[int, int, int]]:
    """The ``(m, k, n)`` products (``m x k @ k x n``) of one forward + backward step."""
    shapes = []
    for inputs, units in zip(sizes[:-1], sizes[1:]):
        shapes.append((batch_size, inputs, units))  # forward: activations @ kernel
    for index, (inputs, units) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes.append((inputs, batch_size, units))  # kernel gradient: activations.T @ delta
        if index > 0:
            shapes.append((batch_size, units, inputs))  # input gradient: delta @ kernel.T
    return shapes


def _median_seconds(function, min_seconds: float, min_repeats: int = 5) -> float:
    """Median time of ``function()``, in batches of calls long enough to time reliably."""
    function()  # warm up (thread pool, caches)
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            function()
        elapsed = time.perf_counter() - start
        if elapsed > 0.02:
            break
        calls *= 4
    repeats = max(min_repeats, int(min_seconds / max(elapsed, 1e-9)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def numpy_step_seconds(shapes: list[tuple[int, int, int]], min_seconds: float = 0.5) -> float:
    """Median seconds of all the step's matrix products, one after another, with numpy."""
    rng = np.random.default_rng(0)
    pairs = [
        (rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32))
        for m, k, n in shapes
    ]
    outputs = [np.empty((m, n), dtype=np.float32) for m, _, n in shapes]

    def step() -> None:
        for (a, b), out in zip(pairs, outputs):
            np.matmul(a, b, out=out)

    return _median_seconds(step, min_seconds)


def numpy_square_gflops(size: int, min_seconds: float = 0.5) -> float:
    """float32 GFLOP/s of one ``size x size`` product with numpy."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    seconds = _median_seconds(lambda: np.matmul(a, b, out=out), min_seconds, min_repeats=3)
    return 2.0 * size**3 / seconds / 1e9


def best_over_threads(measure, better=min) -> tuple[Any, dict[str, Any]]:
    """``measure()`` with one BLAS thread and with all; the better value and both."""
    from threadpoolctl import threadpool_limits

    values = {}
    for threads in (1, None):
        with threadpool_limits(limits=threads, user_api="blas"):
            values["1" if threads == 1 else "all"] = measure()
    return better(values.values()), values


def measure_floor(hidden_units: int = 128, batch_size: int = 32, min_seconds: float = 0.5) -> dict[str, Any]:
    """FLOPs, measured throughputs and the epoch floor for the MNIST MLP."""
    sizes = mlp_layer_sizes(hidden_units)
    shapes = step_matmuls(sizes, batch_size)
    step_flops = sum(2.0 * m * k * n for m, k, n in shapes)
    step_seconds, step_by_threads = best_over_threads(lambda: numpy_step_seconds(shapes, min_seconds))
    layer_gflops = step_flops / step_seconds / 1e9
    square, threads_used = {}, {}
    for size in SQUARE_SIZES:
        square[size], by_threads = best_over_threads(lambda: numpy_square_gflops(size, min_seconds), max)
        threads_used[size] = next(k for k, v in by_threads.items() if v == square[size])
    peak_gflops = max(square.values())
    epoch_flops = flops_per_epoch(sizes)
    steps = -(-MNIST_TRAIN_EXAMPLES // batch_size)
    row: dict[str, Any] = {
        "model": "mnist_mlp " + "-".join(map(str, sizes)),
        "batch_size": batch_size,
        "macs_per_example": macs_per_example(sizes),
        "epoch_gflop": round(epoch_flops / 1e9, 3),
        "step_matmul_gflop_exact": round(step_flops * steps / 1e9, 3),
        "layer_shape_gflops": round(layer_gflops, 2),
        "layer_shape_blas_threads": next(k for k, v in step_by_threads.items() if v == step_seconds),
        "layer_shape_gflops_1_thread": round(step_flops / step_by_threads["1"] / 1e9, 2),
        "layer_shape_gflops_all_threads": round(step_flops / step_by_threads["all"] / 1e9, 2),
        **{f"square{size}_gflops": round(value, 2) for size, value in square.items()},
        **{f"square{size}_blas_threads": threads for size, threads in threads_used.items()},
        "floor_seconds": round(epoch_flops / (layer_gflops * 1e9), 4),
        "floor_seconds_at_peak": round(epoch_flops / (peak_gflops * 1e9), 4),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    return row


def format_rows(row: dict[str, Any]) -> str:
    keys = [k for k in row if k not in ("model",)]
    width = max(map(len, keys))
    return "\n".join([row["model"]] + [f"  {k.ljust(width)}  {row[k]}" for k in keys])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.matmul_floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden-units", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=0.5, help="timing budget per measurement (default 0.5)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="CSV to append to")
    arguments = parser.parse_args(argv)
    row = measure_floor(arguments.hidden_units, arguments.batch_size, arguments.seconds)
    append_csv_row(arguments.output, [{**describe_machine(), **row}])
    print(format_rows(row))
    print(f"rows appended to {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
