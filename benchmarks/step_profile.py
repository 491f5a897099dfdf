"""Where an MNIST MLP epoch's time goes on the JAX backend: timing splits.

    python -m benchmarks.step_profile [--repeats 3]

Runs on JAX (set here, before Keras is imported). Model ``lab.models.mnist_mlp``, the lab's
Adam, batch 32, 1,875 steps per epoch. Each line times one epoch's worth of work, median of
``repeats`` after a warm-up, the lines interleaved round by round:

    fit (lab path)      ``experiments.training.train_run``'s ``model.fit`` (validate=False)
    fit (arrays)        ``model.fit(x, y, batch_size=32)`` at Keras's defaults (its own shuffling)
    data only           iterating the lab's batches (``_ShuffledArrays``) without training
    jit step loop       one jitted train step (``stateless_call`` + ``jax.grad`` +
                        ``optimizer.stateless_apply``) called from Python per batch on batches
                        already on the device: compute + dispatch, no data pipeline, no callbacks
    scan epoch          the same step under ``jax.lax.scan`` over the whole epoch in one call:
                        compute only, no per-step dispatch

The differences show the cost of each layer: (fit - jit step loop) is Keras's per-step
machinery and the data pipeline, (jit step loop - scan epoch) is Python dispatch per step.
Rows go to ``benchmarks/results/step_profile.csv``.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.machine import append_csv_row, describe_machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "step_profile.csv"
BATCH_SIZE = 32


def _loss_and_updates(model, optimizer):
    """A pure train step built from Keras's stateless API, as Keras's JAX guide writes it."""
    import jax

    loss_function = __import__("keras").losses.SparseCategoricalCrossentropy()

    def loss(trainable, non_trainable, x, y):
        predictions, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        return loss_function(y, predictions), non_trainable

    gradient = jax.value_and_grad(loss, has_aux=True)

    def step(state, batch):
        trainable, non_trainable, optimizer_variables = state
        (value, non_trainable), grads = gradient(trainable, non_trainable, *batch)
        trainable, optimizer_variables = optimizer.stateless_apply(optimizer_variables, grads, trainable)
        return (trainable, non_trainable, optimizer_variables), value

    return step


def build_ways(x: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], None]]:
    """Each way: a function that does one epoch's worth of work (after its own warm-up)."""
    import jax
    import keras

    from experiments import training
    from lab.models import mnist_mlp
    from lab.registry import build_optimizer

    steps = len(x) // BATCH_SIZE
    ways: dict[str, Callable[[], None]] = {}

    # fit, the lab's path: the same data object and callbacks train_run uses
    lab_model = mnist_mlp(0)
    lab_model.compile(build_optimizer("adam"), "sparse_categorical_crossentropy", metrics=["accuracy"],
                      steps_per_execution=training.DEFAULT_STEPS_PER_EXECUTION)
    order = training._EpochOrder(len(x), 0)
    dataset = training._ShuffledArrays(x, y, BATCH_SIZE, order)
    callbacks = [training._EpochOrderCallback(order), training._Recorder([], 0.0, None, float("inf"))]
    ways["fit (lab path)"] = lambda: lab_model.fit(dataset, epochs=1, verbose=0, callbacks=callbacks, shuffle=False)

    plain_model = mnist_mlp(0)
    plain_model.compile(build_optimizer("adam"), "sparse_categorical_crossentropy", metrics=["accuracy"])
    ways["fit (arrays, Keras defaults)"] = lambda: plain_model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)

    def data_only() -> None:
        for index in range(len(dataset)):
            dataset[index]

    ways["data only (lab batches)"] = data_only

    model = mnist_mlp(0)
    optimizer = build_optimizer("adam")
    optimizer.build(model.trainable_variables)
    step = _loss_and_updates(model, optimizer)
    state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables])
    jitted = jax.jit(step, donate_argnums=0)
    device_x = jax.device_put(x[: steps * BATCH_SIZE].reshape(steps, BATCH_SIZE, -1))
    device_y = jax.device_put(y[: steps * BATCH_SIZE].reshape(steps, BATCH_SIZE))
    holder = {"state": state}

    def jit_loop() -> None:
        current = holder["state"]
        for index in range(steps):
            current, value = jitted(current, (device_x[index], device_y[index]))
        jax.block_until_ready(value)
        holder["state"] = current

    ways["jit step loop (device batches)"] = jit_loop
    batches_x = [device_x[i] for i in range(steps)]
    batches_y = [device_y[i] for i in range(steps)]

    def jit_loop_presliced() -> None:
        current = holder["state"]
        for bx, by in zip(batches_x, batches_y):
            current, value = jitted(current, (bx, by))
        jax.block_until_ready(value)
        holder["state"] = current

    ways["jit step loop (pre-sliced)"] = jit_loop_presliced

    scanned = jax.jit(lambda s, xs, ys: jax.lax.scan(step, s, (xs, ys)), donate_argnums=0)

    def scan_epoch() -> None:
        current, values = scanned(holder["state"], device_x, device_y)
        jax.block_until_ready(values)
        holder["state"] = current

    ways["scan epoch (one call)"] = scan_epoch
    del keras
    return ways


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    arguments = parser.parse_args(argv)
    from lab.datasets import mnist_arrays

    data = mnist_arrays(flatten=True)
    load_before = os.getloadavg()[0]
    ways = build_ways(data.x_train, data.y_train)
    for way in ways.values():
        way()  # warm-up: tracing and compiling
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(arguments.repeats):
        for name, way in ways.items():
            start = time.perf_counter()
            way()
            seconds[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()[0]
    machine = describe_machine()
    steps = len(data.x_train) // BATCH_SIZE
    rows = [{**machine, "backend": "jax", "way": name, "batch_size": BATCH_SIZE, "repeats": arguments.repeats,
             "epoch_seconds": round(statistics.median(values), 3),
             "microseconds_per_step": round(1e6 * statistics.median(values) / steps, 1),
             "load_average_before": round(load_before, 2), "load_average_after": round(load_after, 2)}
            for name, values in seconds.items()]
    append_csv_row(arguments.output, rows)
    print("| way (JAX, batch 32, one epoch) | seconds (median) | us per step | all |")
    print("| --- | ---: | ---: | --- |")
    for row in rows:
        print(f"| {row['way']} | {row['epoch_seconds']:.3f} | {row['microseconds_per_step']:.0f} | "
              f"{', '.join(f'{s:.2f}' for s in seconds[row['way']])} |")
    print(f"\nload average {load_before:.2f} before, {load_after:.2f} after; rows appended to {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
