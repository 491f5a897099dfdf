"""What the main job's per-epoch bookkeeping costs on a problem of tiny epochs: moons, full batch.

    python -m benchmarks.epoch_overhead [--repeats 3] [--epochs 200]

The moons net (``lab.models.moons_net``) trained with the lab's Adam at 0.01, full batch, for
``--epochs`` one-step epochs (the main job's moons protocol), on the backend of ``KERAS_BACKEND``
(JAX when unset, as the main job). Ways, interleaved round by round after a warm-up, each the
median of ``--repeats``:

    plain fit          ``model.fit`` at Keras's defaults with the test set as validation data
    train_run          ``experiments.training.train_run``: the lab's path (seeded epoch order,
                       per-epoch rows, divergence check), no TensorBoard, no checkpoint
    + tensorboard      ... with Keras's ``TensorBoard`` epoch scalars
    + checkpoint       ... with the per-epoch checkpoint that ``--resume`` relies on
    + both             ... as the main job runs it

The differences, divided by the epochs, are the cost of each piece per epoch. Rows go to
``benchmarks/results/epoch_overhead.csv``.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks.machine import append_csv_row, describe_machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "epoch_overhead.csv"


def ways(epochs: int, scratch: Path) -> dict[str, Callable[[int], None]]:
    """Each way trains a fresh model; the argument numbers the call (fresh output folders)."""
    import keras

    from experiments.training import train_run
    from lab.datasets import load_moons
    from lab.models import moons_net
    from lab.registry import build_optimizer

    data = load_moons()

    def plain(_: int) -> None:
        keras.utils.set_random_seed(0)
        model = moons_net(0)
        model.compile(optimizer=build_optimizer("adam", learning_rate=0.01), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(data.x_train, data.y_train, batch_size=len(data.x_train), epochs=epochs,
                  validation_data=(data.x_test, data.y_test), verbose=0)

    def lab(tensorboard: bool, checkpoint: bool) -> Callable[[int], None]:
        def run(call: int) -> None:
            train_run(
                moons_net(0),
                build_optimizer("adam", learning_rate=0.01),
                data,
                epochs=epochs,
                batch_size=len(data.x_train),
                seed=0,
                tensorboard_dir=scratch / f"tensorboard{call}" if tensorboard else None,
                checkpoint_dir=scratch / f"checkpoint{call}" if checkpoint else None,
            )

        return run

    return {
        "plain fit": plain,
        "train_run": lab(False, False),
        "+ tensorboard": lab(True, False),
        "+ checkpoint": lab(False, True),
        "+ both": lab(True, True),
    }


def measure(repeats: int, epochs: int) -> list[dict]:
    import keras

    with tempfile.TemporaryDirectory(prefix="epoch-overhead-") as folder:
        candidates = ways(epochs, Path(folder))
        seconds: dict[str, list[float]] = {name: [] for name in candidates}
        call = 0
        for round_index in range(repeats + 1):  # round 0 warms up (tracing, compilation)
            for name, way in candidates.items():
                keras.backend.clear_session()
                call += 1
                start = time.perf_counter()
                way(call)
                if round_index:
                    seconds[name].append(time.perf_counter() - start)
    base = statistics.median(seconds["train_run"])
    rows = []
    for name, times in seconds.items():
        median = statistics.median(times)
        rows.append(
            {
                "way": name,
                "seconds": round(median, 3),
                "ms_per_epoch": round(1000 * median / epochs, 2),
                "ms_per_epoch_over_train_run": round(1000 * (median - base) / epochs, 2),
                "all_seconds": " ".join(f"{t:.2f}" for t in times),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.epoch_overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds after the warm-up (default 3)")
    parser.add_argument("--epochs", type=int, default=200, help="full-batch epochs per training (default 200)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="CSV to append to")
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1 or arguments.epochs < 1:
        parser.error("--repeats and --epochs must be >= 1")
    import keras

    machine = describe_machine()
    load_before = os.getloadavg()[0]
    rows = measure(arguments.repeats, arguments.epochs)
    backend = keras.backend.backend()
    append_csv_row(
        arguments.output,
        [{**machine, "backend": backend, "epochs": arguments.epochs, "repeats": arguments.repeats,
          "load_average_before": load_before, **row} for row in rows],
    )
    print(f"| way ({backend}, moons, {arguments.epochs} full-batch epochs) | seconds (median) | ms per epoch | "
          "ms per epoch over train_run |")
    print("| --- | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['way']} | {row['seconds']:.2f} | {row['ms_per_epoch']:.2f} | {row['ms_per_epoch_over_train_run']:+.2f} |")
    print(f"\n{machine['cpu_model']}, {machine['usable_cores']} usable cores; load average {load_before:.2f} before; "
          f"rows appended to {arguments.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
