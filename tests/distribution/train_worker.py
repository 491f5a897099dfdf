"""Train the moons net with lab optimisers under one strategy; save the final weights to an .npz.

Run as ``python -m tests.distribution.train_worker --strategy NAME --out FILE [...]`` from the
repository root, one process per strategy (a strategy fixes the process's devices at start-up).
The tests run it for the undistributed baseline and for each strategy, then compare the files.

The file holds, for each optimiser ``NAME`` (a ``lab.optimizers`` class name), the arrays
``NAME/0``, ``NAME/1``, ... of ``model.get_weights()`` after training, ``initial/0``, ... before
training, and ``num_replicas``, ``num_workers``, ``worker_index``.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

# The optimisers the worker can train: every ``lab.optimizers`` class, each configured as
# ``tests.optimizers.test_serialization.CONFIGURED`` configures it (imported when training starts,
# after the strategy has set up the devices) unless OWN_SETTINGS has it.
NAMES = ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Nadam", "Lion", "Adadelta", "Adamax", "Ftrl", "Lamb",
         "Adafactor", "Muon", "ScheduleFreeAdamW", "RAdam", "NAdamW", "Prodigy", "ScheduleFreeSGD")  # fmt: skip
# Adafactor's step is at most max(epsilon_2, the weight's RMS) / sqrt(t): a bias starting at 0
# or the last layer's moves by well under 1e-3 in these few steps at epsilon_2 = 1e-3, too little to compare
OWN_SETTINGS = {"Adafactor": {"learning_rate": 1.0, "clip_threshold": 0.5, "epsilon_2": 0.1}}


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="none")
    parser.add_argument("--logical-cpus", type=int, default=None)
    parser.add_argument("--optimizers", default=",".join(NAMES), help="comma-separated lab.optimizers classes")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--with-baseline",
        action="store_true",
        help="also train each optimiser outside the strategy (one device), saved as baseline/NAME/i",
    )
    parser.add_argument("--out", required=True)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    # The strategy comes first: logical devices and the multi-worker runtime must be set up
    # before TensorFlow (or JAX) initialises.
    from lab.distribution import make_strategy

    distributed = make_strategy(arguments.strategy, logical_cpus=arguments.logical_cpus)

    from lab.datasets import load_moons

    data = load_moons()
    count = arguments.steps * arguments.batch_size
    x, y = data.x_train[:count], data.y_train[:count]
    arrays: dict[str, np.ndarray] = {
        "num_replicas": np.array(distributed.num_replicas),
        "num_workers": np.array(distributed.num_workers),
        "worker_index": np.array(distributed.worker_index),
    }
    names = arguments.optimizers.split(",")
    for name in names:
        arrays.update(train(distributed, name, x, y, arguments, prefix=name))
    if arguments.with_baseline:
        for name in names:
            arrays.update(train(make_strategy("none"), name, x, y, arguments, prefix=f"baseline/{name}"))
    temporary = arguments.out + ".part.npz"
    np.savez(temporary, **arrays)
    os.replace(temporary, arguments.out)
    return 0


def train(distributed, name: str, x: np.ndarray, y: np.ndarray, arguments: argparse.Namespace, prefix: str) -> dict:
    """Build, compile and fit the moons net with the configured ``lab.optimizers.<name>`` inside the scope."""
    import keras

    from lab import optimizers
    from lab.models import moons_net
    from tests.optimizers.test_serialization import CONFIGURED

    arrays = {}
    keras.utils.set_random_seed(arguments.seed)
    with distributed.scope():
        model = moons_net(arguments.seed)
        if name in OWN_SETTINGS:
            optimizer = getattr(optimizers, name)(**OWN_SETTINGS[name])
        else:
            optimizer = CONFIGURED[name]()
        model.compile(
            optimizer=optimizer,
            loss="sparse_categorical_crossentropy",
            # several steps per call where the strategy allows it (the experiments' setting)
            steps_per_execution=distributed.steps_per_execution(4),
        )
        arrays.update({f"initial/{i}": w for i, w in enumerate(model.get_weights())})
        model.fit(x, y, batch_size=arguments.batch_size, epochs=1, shuffle=False, verbose=0)
        arrays.update({f"{prefix}/{i}": w for i, w in enumerate(model.get_weights())})
        arrays[f"{prefix}/iterations"] = np.array(int(keras.ops.convert_to_numpy(optimizer.iterations)))
    return arrays


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
