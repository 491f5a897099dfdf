"""Train with each lab optimiser on one device and under tf.distribute.MirroredStrategy over two
logical CPU devices; print a JSON report of the largest weight difference per optimiser.

Run as ``python -m tests.optimizers.mirrored_check`` in a fresh process: the logical devices must
be configured before TensorFlow initialises, which a test process has already done.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tests.optimizers import harness  # noqa: E402
from tests.optimizers.test_serialization import CONFIGURED  # noqa: E402


def train(make_optimizer, strategy: tf.distribute.Strategy | None) -> list[np.ndarray]:
    x, y = harness.tiny_data()
    keras.utils.set_random_seed(0)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = harness.tiny_model(0)
        model.compile(optimizer=make_optimizer(), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    return [np.array(w, dtype=np.float64) for w in model.get_weights()]


def main() -> int:
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    report = {"replicas": strategy.num_replicas_in_sync, "optimizers": {}}
    initial = [np.array(w, dtype=np.float64) for w in harness.tiny_model(0).get_weights()]
    for name, make_optimizer in CONFIGURED.items():
        single = train(make_optimizer, None)
        mirrored = train(make_optimizer, strategy)
        report["optimizers"][name] = {
            "max_difference": max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored)),
            "moved": max(float(np.abs(a - b).max()) for a, b in zip(single, initial)),
        }
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
