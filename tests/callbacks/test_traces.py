"""No reduction, restore or range test traces the train function again (TensorFlow and JAX).

``model.train_step`` runs in Python only while the train function is traced (``tf.function``,
``jax.jit``), so a counter wrapped around it counts the traces.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from callbacks import EarlyStopping, ReduceLROnPlateau, find_lr
from lab.schedules import ExponentialDecay, Scaled
from tests.callbacks.helpers import ParameterRecorder, linear_model, regression

pytestmark = [
    pytest.mark.backend_agnostic,
    pytest.mark.skipif(
        keras.backend.backend() == "torch",
        reason="PyTorch runs train_step eagerly on every call (no tf.function or jax.jit trace to count)",
    ),
]


def count_traces(model: keras.Model) -> list[int]:
    counter = [0]
    train_step = model.train_step

    def counting(*arguments):
        counter[0] += 1
        return train_step(*arguments)

    model.train_step = counting  # looked up on the instance when the step is traced
    return counter


def test_reductions_restores_and_range_tests_trace_nothing(tmp_path):
    """Full-batch plain SGD on y = 3x + 7 under a decaying schedule, one step an epoch."""
    x, y = regression()
    schedule = ExponentialDecay(0.02, decay_steps=2, decay_rate=0.7)
    model = linear_model(keras.optimizers.SGD(learning_rate=schedule))
    traces = count_traces(model)
    # "max" on a falling loss: epoch 0 stays the best, so the plateau halves the rate after every
    # later epoch and early stopping restores epoch 0's weights and optimizer state at the end
    plateau = ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=0)
    stopping = EarlyStopping(monitor="loss", mode="max", patience=10, restore_best_weights=True,
                             restore_optimizer_state=True)
    recorder = ParameterRecorder()
    model.fit(x, y, batch_size=len(x), epochs=4, shuffle=False, verbose=0,
              callbacks=[recorder, plateau, stopping])
    assert traces[0] == 1
    # the reductions took effect without a new trace: step t ran at 0.5^(t-1) * schedule(t)
    curve = np.array([float(schedule(t)) for t in range(4)])
    multiplier = 0.5 ** np.maximum(np.arange(4) - 1, 0)
    np.testing.assert_allclose(recorder.applied_learning_rates(x, y), multiplier * curve, rtol=2e-4)
    scaled = model.optimizer._learning_rate
    assert isinstance(scaled, Scaled) and float(scaled.scale.numpy()) == 1.0  # restored
    assert int(model.optimizer.iterations.numpy()) == 1
    assert all(v is not scaled.scale for v in model.optimizer.variables)  # left with fit

    result = find_lr(model, x, y, start_lr=1e-4, end_lr=1e-1, num_steps=6, batch_size=len(x), verify_steps=4)
    assert len(result.learning_rates) == 6 and result.verified is not None

    # a checkpoint restored into the model takes effect at the next step, also without a trace
    model.fit(x, y, batch_size=len(x), epochs=2, shuffle=False, verbose=0, callbacks=[plateau])
    path = str(tmp_path / "mid.weights.h5")
    model.save_weights(path)
    recorder = ParameterRecorder()
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(on_train_begin=lambda logs: model.load_weights(path)),
                         recorder, plateau])
    assert traces[0] == 1
