"""TrainingDiagnostics: read the event files back and check the numbers against NumPy."""

from __future__ import annotations

import glob
import os
from collections import defaultdict

import keras
import numpy as np
import pytest

import lab.schedules as schedules
from lab import models
from callbacks import TrainingDiagnostics
from lab.optimizers import SGD, Adam
from tests.callbacks.helpers import (
    ParameterRecorder,
    linear_model,
    moons,
    moons_model,
    mse_gradient,
    regression,
)

pytestmark = pytest.mark.backend_agnostic


def read_scalars(folder) -> dict[str, dict[int, float]]:
    """tag -> {step: value} from every event file in ``folder``."""
    import tensorflow as tf

    scalars: dict[str, dict[int, float]] = defaultdict(dict)
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name != "scalars":
                    continue  # Keras also logs the model's graph and config
                scalars[value.tag][event.step] = float(tf.make_ndarray(value.tensor))
    return scalars


def test_scalars_match_the_schedule_gradient_and_update(tmp_path):
    """Full-batch SGD on y = 3x + 7 with a decaying schedule, one step an epoch, logged every 3."""
    x, y = regression()
    schedule = schedules.ExponentialDecay(0.02, 2, 0.5)
    model = linear_model(SGD(learning_rate=schedule))
    recorder = ParameterRecorder()
    diagnostics = TrainingDiagnostics(tmp_path, every_n_steps=3, probe_data=(x, y))
    model.fit(
        x, y, batch_size=len(x), epochs=7, shuffle=False, verbose=0,
        callbacks=[recorder, diagnostics, keras.callbacks.TensorBoard(log_dir=str(tmp_path))],
    )
    scalars = read_scalars(tmp_path / "train")
    assert "epoch_loss" in scalars  # Keras's own scalars are in the same run folder
    steps = [0, 3, 6]
    assert sorted(scalars["learning_rate"]) == steps
    for t in steps:
        assert scalars["learning_rate"][t] == pytest.approx(float(schedule(t)), rel=1e-6)
        w0, b0 = recorder.after_step[t]
        w1, b1 = recorder.after_step[t + 1]
        gradient = mse_gradient(w0, b0, x, y)
        assert scalars["gradient_norm"][t] == pytest.approx(np.linalg.norm(gradient), rel=1e-4)
        ratio = np.hypot(w1 - w0, b1 - b0) / np.hypot(w0, b0)
        (tag,) = [tag for tag in scalars if tag.startswith("update_ratio/")]
        assert scalars[tag][t] == pytest.approx(ratio, rel=1e-3)


def test_every_layer_of_the_moons_net_with_minibatches(tmp_path):
    data = moons(320)  # 5 batches of 64 an epoch: logging crosses epoch boundaries
    model = moons_model(Adam(learning_rate=1e-2))
    diagnostics = TrainingDiagnostics(tmp_path, every_n_steps=4,
                                      probe_data=(data.x_train[:64], data.y_train[:64]))
    model.fit(data.x_train, data.y_train, epochs=3, batch_size=64, verbose=0,
              callbacks=[diagnostics])
    scalars = read_scalars(diagnostics.write_dir)
    ratios = sorted(tag for tag in scalars if tag.startswith("update_ratio/"))
    assert len(ratios) == 3  # the three Dense layers
    for tag in ["learning_rate", "gradient_norm", *ratios]:
        assert sorted(scalars[tag]) == [0, 4, 8, 12], tag
    assert all(value == pytest.approx(1e-2) for value in scalars["learning_rate"].values())
    assert all(0 < value < 1 for tag in ratios for value in scalars[tag].values())
    assert all(value > 0 for value in scalars["gradient_norm"].values())


def test_without_probe_data_and_config(tmp_path):
    x, y = regression()
    model = linear_model(keras.optimizers.SGD(learning_rate=0.01))
    diagnostics = TrainingDiagnostics(tmp_path, every_n_steps=2, subdir="diagnostics")
    model.fit(x, y, batch_size=50, epochs=2, verbose=0, callbacks=[diagnostics])
    scalars = read_scalars(tmp_path / "diagnostics")
    assert "gradient_norm" not in scalars
    assert sorted(scalars["learning_rate"]) == [0, 2]
    clone = TrainingDiagnostics.from_config(diagnostics.get_config())
    assert clone.get_config() == diagnostics.get_config()
    with pytest.raises(ValueError, match="every_n_steps"):
        TrainingDiagnostics(tmp_path, every_n_steps=0)


def test_several_steps_per_execution_is_refused(tmp_path):
    """Keras calls back once per execution: per-step scalars would silently span several steps."""
    data = moons()
    model = models.moons_net(seed=0)
    model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy", steps_per_execution=4)
    # on torch Keras itself refuses steps_per_execution > 1, before any callback runs
    message = "steps_per_execution` must be 1" if keras.backend.backend() == "torch" else "steps_per_execution=1"
    with pytest.raises(ValueError, match=message):
        model.fit(
            data.x_train, data.y_train, batch_size=32, epochs=1, verbose=0, callbacks=[TrainingDiagnostics(tmp_path)]
        )


def test_tags_are_the_same_in_every_run(tmp_path):
    """The layer path without Keras's auto-numbered model name (``sequential_6/hidden``)."""
    data = moons(64)
    tags = []
    for run in range(2):  # the second model is auto-named sequential_1 (or higher)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, activation="relu", name="hidden"),
                                  keras.layers.Dense(2, activation="softmax", name="output")])
        model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy")
        folder = tmp_path / str(run)
        model.fit(data.x_train, data.y_train, batch_size=32, epochs=1, verbose=0,
                  callbacks=[TrainingDiagnostics(folder, every_n_steps=1)])
        tags.append(sorted(tag for tag in read_scalars(folder / "train") if tag.startswith("update_ratio/")))
    assert tags[0] == tags[1] == ["update_ratio/hidden", "update_ratio/output"]
