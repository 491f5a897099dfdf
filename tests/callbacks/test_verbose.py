"""Every callback path that prints, with ``verbose=1``: the message is printed, nothing crashes."""

from __future__ import annotations

import re

import keras
import pytest

from callbacks import EarlyStopping, ReduceLROnPlateau
from lab.schedules import Constant
from tests.callbacks.helpers import linear_model, regression

pytestmark = pytest.mark.backend_agnostic


@pytest.fixture
def printed(capsys):
    """Keras prints to stdout while interactive logging is on (Keras's own tests switch it off)."""
    was_on = keras.config.is_interactive_logging_enabled()
    keras.config.enable_interactive_logging()
    yield lambda: capsys.readouterr().out
    if not was_on:
        keras.config.disable_interactive_logging()


def _fit(callback, learning_rate, epochs=3):
    x, y = regression()
    model = linear_model(keras.optimizers.SGD(learning_rate=learning_rate))
    model.fit(x, y, batch_size=len(x), epochs=epochs, verbose=0, callbacks=[callback])
    return model


@pytest.mark.parametrize("learning_rate", [0.01, Constant(0.01)], ids=["float", "schedule"])
def test_plateau_prints_each_reduction(printed, learning_rate):
    _fit(ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=0, verbose=1), learning_rate)
    out = printed()
    reductions = re.findall(r"Epoch (\d+): ReduceLROnPlateau reducing learning rate to (\S+?)\.?\s", out)
    assert [int(epoch) for epoch, _ in reductions] == [2, 3]
    assert [float(rate) for _, rate in reductions] == pytest.approx([0.005, 0.0025], rel=1e-6)
    if isinstance(learning_rate, Constant):
        assert "schedule scale 0.25" in out


def test_early_stopping_prints_the_stop_and_the_restore(printed):
    stopping = EarlyStopping(monitor="loss", mode="max", patience=1, verbose=1, restore_best_weights=True,
                             restore_optimizer_state=True)
    _fit(stopping, 0.01, epochs=5)
    out = printed()
    assert "Epoch 2: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 1." in out
