"""The LR range test: rates applied, losses recorded, the model untouched, every suggestion."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

import lab.schedules as schedules
from callbacks import LRFinder, LRFinderResult, Suggestions, find_lr
from lab.callbacks.lr_finder import minimum, slide, steep, sweep_learning_rates, valley
from lab import models
from lab.optimizers import SGD, Adam
from tests.callbacks.helpers import (
    ParameterRecorder,
    linear_model,
    moons,
    moons_model,
    mse,
    regression,
    values,
)

pytestmark = pytest.mark.backend_agnostic


def _smoothed(losses, beta):
    average, out = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta ** (i + 1)))
    return np.array(out)


@pytest.mark.parametrize("mode", ["exponential", "linear"])
def test_applied_rates_and_recorded_losses(mode):
    """Full-batch plain SGD on y = 3x + 7, one step an epoch: the sweep crosses 8 epochs."""
    x, y = regression()
    model = linear_model(keras.optimizers.SGD(learning_rate=0.01))
    finder = LRFinder(start_lr=1e-3, end_lr=3e-2, num_steps=8, mode=mode, smoothing=0.9)
    recorder = ParameterRecorder()
    model.fit(x, y, batch_size=len(x), epochs=20, callbacks=[finder, recorder], verbose=0)
    result = finder.result
    expected_rates = sweep_learning_rates(1e-3, 3e-2, 8, mode)
    assert len(result.learning_rates) == 8  # stopped after num_steps, not after 20 epochs
    np.testing.assert_allclose(result.learning_rates, expected_rates, rtol=1e-12)
    np.testing.assert_allclose(recorder.applied_learning_rates(x, y), expected_rates, rtol=2e-4)
    # The loss of step i is the batch loss at the weights before step i, not a running mean.
    expected_losses = [mse(w, b, x, y) for w, b in recorder.after_step[:-1]]
    np.testing.assert_allclose(result.losses, expected_losses, rtol=1e-5)
    np.testing.assert_allclose(result.smoothed_losses, _smoothed(result.losses, 0.9), rtol=1e-12)
    assert not result.diverged
    # Restored: the weights are the initial ones again, and the rate.
    kernel, bias = (float(v.numpy().ravel()[0]) for v in model.trainable_variables)
    assert (kernel, bias) == recorder.after_step[0]
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.01)
    assert int(model.optimizer.iterations.numpy()) == 0


def test_the_callback_refuses_a_schedule():
    x, y = regression()
    model = linear_model(keras.optimizers.SGD(learning_rate=schedules.Constant(0.01)))
    with pytest.raises(ValueError, match="find_lr"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LRFinder(num_steps=4)])


def test_stops_when_the_loss_diverges():
    x, y = regression()
    model = linear_model(keras.optimizers.SGD(learning_rate=0.01))
    result = find_lr(model, x, y, start_lr=1e-3, end_lr=10.0, num_steps=40, batch_size=len(x),
                     smoothing=0.5, verify_steps=0)
    assert result.diverged
    assert len(result.learning_rates) < 40
    smoothed = result.smoothed_losses
    assert np.isnan(smoothed[-1]) or smoothed[-1] > 4.0 * np.nanmin(smoothed[:-1])
    assert np.all(smoothed[:-1] <= 4.0 * np.minimum.accumulate(smoothed[:-1]))


def _state(model):
    optimizer = model.optimizer
    return values(model.weights), values(optimizer.variables), int(optimizer.iterations.numpy())


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: keras.optimizers.Adam(learning_rate=1e-3),
        lambda: Adam(learning_rate=schedules.WarmupCosine(1e-2, 5, 50)),
        lambda: SGD(learning_rate=0.05, momentum=0.9),
        lambda: keras.optimizers.RMSprop(
            learning_rate=keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)
        ),
    ],
    ids=["keras-adam", "lab-adam-schedule", "lab-sgd-momentum", "keras-rmsprop-schedule"],
)
def test_find_lr_leaves_the_model_untouched(make_optimizer):
    """The test runs on a twin: weights, optimizer variables, schedule and iterations stay."""
    data = moons(256)
    model = moons_model(make_optimizer())
    model.fit(data.x_train, data.y_train, epochs=1, batch_size=64, verbose=0)  # non-zero state
    learning_rate = model.optimizer._learning_rate
    weights, slots, iterations = _state(model)
    assert iterations == 4
    result = find_lr(model, data.x_train, data.y_train, start_lr=1e-4, end_lr=1.0, num_steps=12,
                     batch_size=64, verify_steps=6)
    assert isinstance(result, LRFinderResult)
    assert len(result.learning_rates) == 12  # 3 epochs of 4 batches
    assert result.verified in result.verification and set(result.verification) <= set(result.suggestions)
    assert result.suggestion == result.verified == min(result.verification, key=result.verification.get)
    after_weights, after_slots, after_iterations = _state(model)
    assert after_iterations == iterations
    assert len(after_slots) == len(slots)
    assert all(np.array_equal(a, b) for a, b in zip(weights, after_weights))
    assert all(np.array_equal(a, b) for a, b in zip(slots, after_slots))
    assert model.optimizer._learning_rate is learning_rate
    # Training continues with the original rate (the schedule at the step it was at).
    model.fit(data.x_train, data.y_train, epochs=1, batch_size=64, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 8
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        assert float(model.optimizer.learning_rate) == pytest.approx(float(learning_rate(8)))


def test_tf_data_input():
    import tensorflow as tf

    data = moons(256)
    dataset = tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train)).batch(32)
    model = moons_model(keras.optimizers.SGD(learning_rate=0.1))
    result = find_lr(model, dataset, start_lr=1e-4, end_lr=1e-1, num_steps=20, verify_steps=6)
    assert len(result.learning_rates) == 20  # 8 batches an epoch: the data repeats
    assert np.all(np.isfinite(result.losses))


@pytest.mark.slow
def test_suggestion_lies_where_training_works():
    """Moons net, plain SGD: a short sweep of 5-epoch trainings over the finder's range maps where
    training works (test accuracy >= 95%); the suggestion lies inside that band, and works."""
    keras.utils.set_random_seed(0)
    data = moons()
    model = moons_model(SGD(learning_rate=1e-3))
    result = find_lr(model, data.x_train, data.y_train, start_lr=1e-4, end_lr=10.0,
                     num_steps=100, batch_size=32)

    # one compiled model trains at every rate, so its program is built once: before each training
    # the weights of seed 0 again, the rate, the step count back to 0, the data order of seed 0
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    trial = moons_model(SGD(learning_rate=1e-3))
    initial = trial.get_weights()

    def accuracy_after_training_at(rate: float) -> float:
        trial.set_weights(initial)
        trial.optimizer.learning_rate.assign(float(rate))
        trial.optimizer.iterations.assign(0)
        keras.utils.set_random_seed(0)
        trial.fit(data.x_train, data.y_train, epochs=5, batch_size=32, verbose=0)
        return trial.evaluate(data.x_test, data.y_test, verbose=0, return_dict=True)["accuracy"]

    rates = np.logspace(-3, 1, 9)  # half decades
    accuracy = {float(rate): accuracy_after_training_at(rate) for rate in rates}
    works = [rate for rate, value in accuracy.items() if value >= 0.95]
    assert works and accuracy[1e-3] < 0.95 and accuracy[10.0] < 0.95, accuracy  # a band with two ends
    # the grid resolves the band's edges to half a decade: the suggestion lies strictly between
    # the nearest rates below and above the band where training fails
    below = max(rate for rate in accuracy if rate < min(works))
    above = min(rate for rate in accuracy if rate > max(works))
    assert below < result.suggestion < above, (result.suggestion, accuracy)
    assert accuracy_after_training_at(result.suggestion) >= 0.95


# -- the result and its suggestions ---------------------------------------------------------


def _synthetic() -> LRFinderResult:
    """A loss curve with known shape: flat, falling fastest at lr = 1e-2, minimum near 1e-1."""
    rates = np.logspace(-5, 1, 121)
    u = np.log10(rates)
    losses = 1.0 - 0.8 / (1.0 + np.exp(-3.0 * (u + 2.0))) + 0.5 * np.maximum(u + 1.0, 0.0) ** 2
    return LRFinderResult(rates, losses, losses)


def test_suggestions_on_a_known_curve():
    result = _synthetic()
    suggestions = result.suggestions
    assert isinstance(suggestions, Suggestions) and suggestions.verified is None
    assert suggestions.steep == pytest.approx(1e-2, rel=0.13)
    assert steep(result.learning_rates, result.losses) == suggestions.steep == result.suggest("steep")
    lowest = result.learning_rates[np.argmin(result.losses)]
    assert suggestions.minimum == pytest.approx(lowest / 10) == minimum(result.learning_rates, result.losses)
    assert result.suggestion == suggestions.minimum  # the default without a verification
    # valley: inside the longest decreasing stretch, before the minimum
    assert 1e-5 < suggestions.valley < lowest
    assert valley(result.learning_rates, result.losses) == suggestions.valley
    # slide: where the slope stops changing, walking left from the end: the flat start
    assert suggestions.slide == slide(result.learning_rates, result.losses) < 1e-2
    with pytest.raises(ValueError, match="method"):
        result.suggest("minimum/10")


def test_frame_and_plot(tmp_path):
    result = _synthetic()
    frame = result.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["step", "learning_rate", "loss", "smoothed_loss"]
    assert len(frame) == 121
    path = tmp_path / "range_test.png"
    figure = result.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = figure.axes[0]
    assert axes.get_xscale() == "log"
    marked = {line.get_label().split(":")[0]: line.get_xdata()[0] for line in axes.lines
              if line.get_marker() not in (None, "None", "")}
    assert marked == pytest.approx({name: rate for name, rate in result.suggestions._asdict().items()
                                    if rate is not None})


def test_argument_checks_and_config():
    for bad, named in [(dict(start_lr=0.0), "start_lr"), (dict(start_lr=1.0, end_lr=0.5), "end_lr"),
                       (dict(num_steps=1), "num_steps"), (dict(mode="cosine"), "mode"),
                       (dict(smoothing=1.0), "smoothing"),
                       (dict(divergence_factor=1.0), "divergence_factor")]:
        with pytest.raises(ValueError, match=named):
            LRFinder(**bad)
    finder = LRFinder(start_lr=1e-6, end_lr=1.0, num_steps=50, mode="linear")
    assert LRFinder.from_config(finder.get_config()).get_config() == finder.get_config()
    uncompiled = models.moons_net(0)
    with pytest.raises(ValueError, match="compiled"):
        find_lr(uncompiled, np.zeros((4, 2)), np.zeros(4))
    compiled = models.moons_net(0)
    compiled.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="`num_steps`, not `epochs`"):
        find_lr(compiled, np.zeros((4, 2)), np.zeros(4), epochs=3)
