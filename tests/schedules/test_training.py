"""Schedules inside real Keras training: model.fit with jit_compile=True, save/load, Scaled changes."""

import keras
import numpy as np
import pytest
from keras import layers, ops

import lab.optimizers
from lab.schedules import (
    Constant,
    CosineAnnealing,
    CosineWarmRestarts,
    CyclicalLR,
    ExponentialDecay,
    InverseTimeDecay,
    LinearDecay,
    LinearWarmup,
    OneCycle,
    PiecewiseConstant,
    PolynomialDecay,
    Scaled,
    Sequential,
    StepDecay,
    WarmupCosine,
    WarmupStableDecay,
)


def schedule_values(schedule, steps) -> np.ndarray:
    return ops.convert_to_numpy(schedule(np.asarray(steps, dtype="int64"))).astype("float64")


def mean_output(y_true, y_pred):
    """A loss whose gradient with respect to the output bias is exactly 1 at every step."""
    return ops.mean(y_pred)


def bias_model(optimizer) -> keras.Model:
    """Dense(1) fed zeros: the kernel never moves and plain SGD moves the bias by -lr(t) per step,
    so after n steps bias = -sum_{t<n} lr(t), the learning rate the compiled step really used."""
    model = keras.Sequential(
        [keras.Input((1,)), layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")]
    )
    model.compile(optimizer=optimizer, loss=mean_output, jit_compile=True)
    return model


def every_class_in_sequence():
    """All sixteen classes in one schedule, a few steps each."""
    return Scaled(
        Sequential(
            [
                Constant(0.05),
                StepDecay(0.1, 0.5, 3),
                ExponentialDecay(0.1, 4, 0.7),
                CosineAnnealing(0.1, 6, 0.01),
                WarmupCosine(0.1, 3, 5, initial_learning_rate=0.02),
                OneCycle(0.2, 10, pct_start=0.4),
                CyclicalLR(0.01, 0.1, 2, mode="exp_range", gamma=0.9),
                CosineWarmRestarts(0.1, 2, t_mul=2.0, m_mul=0.5),
                PolynomialDecay(0.1, 3, 0.01, power=0.5, cycle=True),
                LinearDecay(0.1, 4, 0.02),
                PiecewiseConstant([1, 3], [0.1, 0.05, 0.02]),
                InverseTimeDecay(0.1, 2, 1.0),
                LinearWarmup(CosineAnnealing(0.1, 4), 3, initial_learning_rate=0.01),
                WarmupStableDecay(0.1, 8, 2, 0.5, "1-sqrt"),
            ],
            boundaries=[5, 10, 15, 20, 26, 34, 42, 56, 64, 70, 75, 80, 88],
        ),
        scale=0.5,
    )


@pytest.mark.backend_agnostic
def test_fit_with_jit_compile_uses_the_schedule_at_every_step():
    schedule = every_class_in_sequence()
    model = bias_model(keras.optimizers.SGD(learning_rate=schedule))
    x = np.zeros((8, 1), "float32")
    model.fit(x, x, batch_size=1, epochs=12, shuffle=False, verbose=0)  # 96 steps
    steps = np.arange(96)
    expected_bias = -schedule_values(schedule, steps).sum()
    bias = float(ops.convert_to_numpy(model.layers[0].bias)[0])
    assert int(model.optimizer.iterations.numpy()) == 96
    assert bias == pytest.approx(expected_bias, rel=1e-5)
    assert float(model.optimizer.learning_rate) == pytest.approx(schedule_values(schedule, [96])[0], rel=1e-6)


def test_scaled_assign_takes_effect_in_a_compiled_tensorflow_train_step():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function captures the variable only on TensorFlow")
    schedule = Scaled(Constant(0.1))
    model = bias_model(keras.optimizers.SGD(learning_rate=schedule))
    x = np.zeros((4, 1), "float32")
    model.fit(x, x, batch_size=1, epochs=1, verbose=0)
    schedule.scale.assign(0.5)
    model.fit(x, x, batch_size=1, epochs=1, verbose=0)  # same train function, no retrace
    assert float(ops.convert_to_numpy(model.layers[0].bias)[0]) == pytest.approx(-(0.4 + 0.2), rel=1e-6)


@pytest.mark.backend_agnostic
def test_scaled_assign_takes_effect_after_retracing():
    """The documented recipe for every backend (JAX bakes the factor in at trace time)."""
    schedule = Scaled(Constant(0.1))
    model = bias_model(keras.optimizers.SGD(learning_rate=schedule))
    x = np.zeros((4, 1), "float32")
    model.fit(x, x, batch_size=1, epochs=1, verbose=0)
    schedule.scale.assign(0.25)
    model.make_train_function(force=True)
    model.fit(x, x, batch_size=1, epochs=1, verbose=0)
    assert float(ops.convert_to_numpy(model.layers[0].bias)[0]) == pytest.approx(-(0.4 + 0.1), rel=1e-6)


OPTIMIZERS = {
    "keras.Adam": lambda lr: keras.optimizers.Adam(learning_rate=lr),
    "lab.SGD(momentum)": lambda lr: lab.optimizers.SGD(learning_rate=lr, momentum=0.9),
}


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("optimizer_name", list(OPTIMIZERS))
def test_save_load_keeps_the_schedule_and_continues_at_the_same_step(tmp_path, optimizer_name):
    schedule = Scaled(
        Sequential([WarmupCosine(0.05, 4, 12, min_learning_rate=1e-3), CosineWarmRestarts(0.02, 3)], [16]),
        scale=0.5,
    )
    model = keras.Sequential([keras.Input((3,)), layers.Dense(4, activation="tanh"), layers.Dense(1)])
    # XLA is exercised above; here it would only triple the compile time
    model.compile(optimizer=OPTIMIZERS[optimizer_name](schedule), loss="mse", jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)  # 12 steps
    schedule.scale.assign(0.25)  # the saved config must hold the current factor
    model.make_train_function(force=True)
    path = tmp_path / "model.keras"
    model.save(path)

    loaded = keras.models.load_model(path, compile=True)
    restored = loaded.optimizer._learning_rate
    assert isinstance(restored, Scaled) and isinstance(restored.schedule, Sequential)
    assert restored is not schedule
    assert float(ops.convert_to_numpy(restored.scale)) == pytest.approx(0.25)
    assert int(ops.convert_to_numpy(loaded.optimizer.iterations)) == 12
    expected_lr = 0.25 * schedule_values(schedule.schedule, [12])[0]
    assert float(loaded.optimizer.learning_rate) == pytest.approx(expected_lr, rel=1e-6)

    # both continue from step 12 with the same rates and optimizer state: same weights after
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert int(ops.convert_to_numpy(loaded.optimizer.iterations)) == 20
    for original, reloaded in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(reloaded, original, rtol=1e-5, atol=1e-6)
