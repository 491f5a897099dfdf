"""lab.tensorboard_logs: reading scalars back from real event files; the writer check."""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from lab.tensorboard_logs import SCALAR_COLUMNS, read_scalars, tensorboard_callback

pytestmark = pytest.mark.backend_agnostic
ROOT = Path(__file__).resolve().parents[1]


def _fit_with_tensorboard(log_dir: Path, epochs: int = 3) -> keras.callbacks.History:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5], dtype="float32") > 0).astype("int32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model.fit(
        x, y, epochs=epochs, batch_size=16, validation_data=(x[:16], y[:16]), verbose=0,
        callbacks=[tensorboard_callback(log_dir, write_graph=False, profile_batch=0)],
    )  # fmt: skip


def test_keras_epoch_scalars_read_back_equal_the_history(tmp_path):
    history = _fit_with_tensorboard(tmp_path)
    scalars = read_scalars(tmp_path)
    assert list(scalars.columns) == SCALAR_COLUMNS
    assert set(scalars["run"]) == {"train", "validation"}
    for run, prefix in (("train", ""), ("validation", "val_")):
        for name in ("loss", "accuracy"):
            logged = scalars[(scalars["run"] == run) & (scalars["tag"] == f"epoch_{name}")]
            assert logged["step"].tolist() == [0, 1, 2]
            np.testing.assert_allclose(logged["value"], history.history[prefix + name], rtol=1e-6)
    rates = scalars[(scalars["run"] == "train") & (scalars["tag"] == "epoch_learning_rate")]["value"]
    np.testing.assert_allclose(rates, 0.01, rtol=1e-6)  # SGD's default rate


def test_plain_event_accumulator_lists_tensorflow2_scalars_under_tensors(tmp_path):
    # the reason read_scalars exists: Tags()["scalars"] is empty for these logs
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _fit_with_tensorboard(tmp_path, epochs=1)
    events = EventAccumulator(str(tmp_path / "train"))
    events.Reload()
    assert events.Tags()["scalars"] == []
    assert "epoch_loss" in events.Tags()["tensors"]


def test_scalar_events_of_the_first_format_and_non_scalars(tmp_path):
    """Legacy ``simple_value`` events (TensorFlow 1, PyTorch) are read; histograms are left out."""
    import tensorflow as tf
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    legacy = EventFileWriter(str(tmp_path / "legacy"))
    for step, value in enumerate([0.5, 0.25, 0.125]):
        summary = Summary(value=[Summary.Value(tag="loss", simple_value=value)])
        legacy.add_event(Event(wall_time=1000.0 + step, step=step, summary=summary))
    legacy.close()
    with tf.summary.create_file_writer(str(tmp_path / "modern")).as_default():
        tf.summary.scalar("rate", 0.1, step=7)
        tf.summary.histogram("weights", np.arange(10.0), step=7)

    scalars = read_scalars(tmp_path)
    assert scalars[["run", "tag", "step"]].values.tolist() == [
        ["legacy", "loss", 0], ["legacy", "loss", 1], ["legacy", "loss", 2], ["modern", "rate", 7],
    ]  # fmt: skip
    np.testing.assert_allclose(scalars["value"], [0.5, 0.25, 0.125, 0.1], rtol=1e-7)
    assert scalars["wall_time"].iloc[:3].tolist() == [1000.0, 1001.0, 1002.0]


def test_a_folder_without_event_files_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard event files"):
        read_scalars(tmp_path)


def test_without_tensorflow_each_writer_is_one_error_naming_the_fix(tmp_path):
    """A real process in which ``import tensorflow`` fails, as where it is not installed."""
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from lab.tensorboard_logs import TensorBoardUnavailableError, tensorboard_callback\n"
        "from lab.callbacks import TrainingDiagnostics\n"
        "for make in (lambda: tensorboard_callback('logs'), lambda: TrainingDiagnostics('logs')):\n"
        "    try:\n        make()\n    except TensorBoardUnavailableError as error:\n        print(error)\n"
        "    else:\n        print('no error')\n"
    )
    pytest.importorskip("jax")  # a backend other than TensorFlow
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("TensorBoard logging (keras.callbacks.TensorBoard) needs TensorFlow")
    assert lines[1].startswith("TrainingDiagnostics needs TensorFlow")
    assert all(line.endswith("pip install tensorflow-cpu") for line in lines)
