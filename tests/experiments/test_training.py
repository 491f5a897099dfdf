"""experiments.training.train_run: rows, determinism, resume, divergence, the fast path."""

from __future__ import annotations

import math

import keras
import numpy as np
import pandas as pd
import pytest

from experiments import training
from experiments.training import epoch_permutation, load_checkpoint_state, train_run
from lab import datasets, models
from lab.registry import build_optimizer

# train_run's outputs other than the timing column
NUMBERS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "status"]


@pytest.fixture(scope="module")
def moons() -> datasets.Split:
    return datasets.load_moons()


@pytest.fixture(scope="module")
def mnist_small() -> datasets.Split:
    return datasets.mnist_arrays(subset=1200)


def _moons_run(data, spec="adam:learning_rate=0.01", epochs=5, **kwargs) -> pd.DataFrame:
    keras.backend.clear_session()
    return train_run(models.moons_net(0), build_optimizer(spec), data, epochs=epochs, batch_size=800, seed=3, **kwargs)


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_rows_have_the_documented_columns_and_repeat_exactly(moons):
    first = _moons_run(moons)
    second = _moons_run(moons)
    assert list(first.columns) == NUMBERS[:-1] + ["seconds", "status"]
    assert first["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert (first["status"] == "ok").all()
    assert first["learning_rate"].tolist() == [0.01] * 5
    assert first["seconds"].is_monotonic_increasing and first["seconds"].iloc[0] > 0
    assert first["loss"].iloc[-1] < first["loss"].iloc[0]
    pd.testing.assert_frame_equal(first[NUMBERS], second[NUMBERS], check_exact=True)


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_resume_after_a_crash_gives_the_uninterrupted_rows(mnist_small, tmp_path):
    def run(**kwargs) -> pd.DataFrame:
        keras.backend.clear_session()
        return train_run(
            models.mnist_mlp(1), build_optimizer("momentum"), mnist_small, epochs=3, batch_size=32, seed=5, **kwargs
        )

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("simulated crash")

    uninterrupted = run()
    folder = tmp_path / "checkpoint"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(checkpoint_dir=folder, callbacks=[Crash()])
    # the crash came before epoch 2's checkpoint: one consistent epoch is saved
    state = load_checkpoint_state(folder)
    assert state["epoch"] == 1 and not state["finished"]
    assert sorted(p.name for p in folder.glob("*.weights.npz")) == ["epoch-0001.weights.npz"]
    resumed = run(checkpoint_dir=folder)
    pd.testing.assert_frame_equal(uninterrupted[NUMBERS], resumed[NUMBERS], check_exact=True)
    assert load_checkpoint_state(folder)["finished"]
    # a finished run is not trained again
    again = run(checkpoint_dir=folder)
    pd.testing.assert_frame_equal(resumed, again)


@pytest.mark.backend_agnostic
def test_a_diverging_run_is_a_result_not_a_crash(moons):
    rows = _moons_run(moons, spec="sgd:learning_rate=10.0", epochs=30)
    assert len(rows) < 30
    assert rows["status"].iloc[-1] == "diverged"
    assert (rows["status"].iloc[:-1] == "ok").all()
    first_loss = rows["loss"].iloc[0]
    last_loss = rows["loss"].iloc[-1]
    # full batch: epoch 1 reports the untrained loss, the scale of the divergence limit (5x)
    assert not math.isfinite(last_loss) or last_loss > 5 * first_loss


@pytest.mark.backend_agnostic
def test_learning_rate_column_follows_a_schedule(moons):
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    keras.backend.clear_session()
    rows = train_run(
        models.moons_net(0), build_optimizer("sgd", learning_rate=schedule), moons, epochs=3, batch_size=100, seed=0
    )
    steps_per_epoch = 8  # 800 examples / 100
    expected = [0.1 * 0.5 ** ((steps_per_epoch * epoch - 1) / 10) for epoch in (1, 2, 3)]
    np.testing.assert_allclose(rows["learning_rate"], expected, rtol=1e-6)


class _FirstKernelSum(keras.callbacks.Callback):
    """Writes the first kernel's sum into the epoch's logs, and a value that is no scalar."""

    def on_epoch_end(self, epoch, logs=None):
        logs["kernel_sum"] = float(np.sum(keras.ops.convert_to_numpy(self.model.weights[0])))
        logs["not_a_scalar"] = np.zeros(3)


@pytest.mark.backend_agnostic
def test_scalars_a_callback_logs_become_columns_and_survive_a_resume(moons, tmp_path):
    folder = tmp_path / "checkpoint"
    rows = _moons_run(moons, epochs=2, callbacks=[_FirstKernelSum()], checkpoint_dir=folder)
    assert "kernel_sum" in rows.columns and "not_a_scalar" not in rows.columns
    # the model ends at the last row's weights: the column holds the sum after that epoch
    keras.backend.clear_session()
    model = models.moons_net(0)
    again = train_run(model, build_optimizer("adam:learning_rate=0.01"), moons, epochs=2, batch_size=800, seed=3,
                      checkpoint_dir=folder)  # a finished run: its rows, and the model as it ended
    assert rows["kernel_sum"].iloc[-1] == pytest.approx(float(np.sum(keras.ops.convert_to_numpy(model.weights[0]))), rel=1e-6)
    assert rows["kernel_sum"].iloc[0] != rows["kernel_sum"].iloc[1]
    pd.testing.assert_frame_equal(rows, again)


@pytest.mark.backend_agnostic
def test_epoch_order_is_a_seeded_permutation():
    order = epoch_permutation(1000, seed=7, epoch=2)
    assert sorted(order.tolist()) == list(range(1000))
    np.testing.assert_array_equal(order, epoch_permutation(1000, seed=7, epoch=2))
    assert not np.array_equal(order, epoch_permutation(1000, seed=7, epoch=3))
    assert not np.array_equal(order, epoch_permutation(1000, seed=8, epoch=2))


def test_tensorflow_pipeline_serves_the_same_batches_as_the_array_path():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the tf.data pipeline is the TensorFlow backend's path")
    x = np.arange(50, dtype=np.float32).reshape(25, 2)
    y = np.arange(25, dtype=np.int32)
    order = training._EpochOrder(25, seed=1, epoch=4)
    expected = [training._ShuffledArrays(x, y, 8, order)[i] for i in range(4)]
    batches = list(training._tf_dataset(x, y, 8, order).as_numpy_iterator())
    assert len(batches) == 4 and len(batches[-1][1]) == 1
    for (bx, by), (ex, ey) in zip(batches, expected):
        np.testing.assert_array_equal(bx, ex)
        np.testing.assert_array_equal(by, ey)


@pytest.mark.slow
def test_fast_settings_match_the_straightforward_path(mnist_small):
    """steps_per_execution and XLA change the speed, not the result (+-0.3% accuracy)."""

    def run(**kwargs) -> pd.DataFrame:
        keras.backend.clear_session()
        return train_run(models.mnist_mlp(2), build_optimizer("adam"), mnist_small, epochs=2, batch_size=32, seed=2, **kwargs)

    plain = run(steps_per_execution=1, jit_compile=False)
    fast = run()
    np.testing.assert_allclose(fast["val_accuracy"], plain["val_accuracy"], atol=0.003)
    np.testing.assert_allclose(fast["loss"], plain["loss"], rtol=1e-3)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("argument", ["epochs", "batch_size", "steps_per_execution"])
def test_non_positive_settings_are_rejected(moons, argument):
    settings = {"epochs": 1, "batch_size": 800, "steps_per_execution": 1, argument: 0}
    with pytest.raises(ValueError, match=argument):
        train_run(models.moons_net(0), build_optimizer("sgd"), moons, seed=0, **settings)
