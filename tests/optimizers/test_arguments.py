"""Bad hyperparameters fail at construction with a ValueError naming the argument; the
constructors keep the Keras twins' positional order and defaults."""

from __future__ import annotations

import inspect

import keras
import pytest

from lab import optimizers
from tests.optimizers.twins import TWINS

pytestmark = pytest.mark.backend_agnostic

BAD = [
    (optimizers.SGD, {"learning_rate": -0.1}, r"`learning_rate` must be in \[0, \+inf\)"),
    (optimizers.SGD, {"learning_rate": "fast"}, "learning_rate"),
    (optimizers.SGD, {"momentum": 1.0}, r"`momentum` must be in \[0, 1\)"),
    (optimizers.SGD, {"momentum": -0.5}, "`momentum`"),
    (optimizers.SGD, {"momentum": 0.9, "momentum_style": "polyak"}, "'keras', 'heavy_ball', 'ema'"),
    (optimizers.Adagrad, {"epsilon": 0.0}, r"`epsilon` must be in \(0, \+inf\)"),
    (optimizers.Adagrad, {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
    (optimizers.RMSprop, {"rho": 1.0}, "`rho`"),
    (optimizers.RMSprop, {"momentum": 1.5}, "`momentum`"),
    (optimizers.RMSprop, {"epsilon": -1e-7}, "`epsilon`"),
    (optimizers.Adam, {"beta_1": 1.0}, r"`beta_1` must be in \[0, 1\)"),
    (optimizers.Adam, {"beta_2": -0.1}, "`beta_2`"),
    (optimizers.Adam, {"epsilon": 0}, "`epsilon`"),
    (optimizers.Adam, {"epsilon_placement": "pytorch"}, "'keras', 'paper'"),
    (optimizers.AdamW, {"weight_decay": -0.1}, "`weight_decay`"),
    (optimizers.AdamW, {"epsilon_placement": "inside"}, "epsilon_placement"),
    (optimizers.Nadam, {"beta_1": 2.0}, "`beta_1`"),
    (optimizers.Lion, {"beta_2": 1.0}, "`beta_2`"),
    (optimizers.Lion, {"learning_rate": float("nan")}, "learning_rate"),
    (optimizers.Adadelta, {"rho": 1.0}, r"`rho` must be in \[0, 1\)"),
    (optimizers.Adamax, {"beta_2": 1.0}, "`beta_2`"),
    (optimizers.Ftrl, {"learning_rate_power": 0.5}, "`learning_rate_power` needs to be negative or zero"),
    (optimizers.Ftrl, {"beta": -1.0}, "`beta` needs to be positive or zero"),
    (optimizers.Lamb, {"epsilon": 0.0}, "`epsilon`"),
    (optimizers.Adafactor, {"beta_2_decay": 0.8}, r"`beta_2_decay` must be in \(-inf, 0\]"),
    (optimizers.Adafactor, {"clip_threshold": 0.0}, "`clip_threshold`"),
    (optimizers.Muon, {"momentum": 1.0}, "`momentum`"),
    (optimizers.Muon, {"ns_steps": 0}, "`ns_steps` must be a positive integer"),
    (optimizers.Muon, {"rms_rate": -0.2}, "`rms_rate`"),
    (optimizers.Muon, {"exclude_layers": ["("]}, "`exclude_layers` must hold regular expressions"),
    (optimizers.ScheduleFreeAdamW, {"beta_1": 0.0}, r"`beta_1` must be in \(0, 1\]"),
    (optimizers.ScheduleFreeAdamW, {"warmup_steps": 2.5}, "`warmup_steps` must be an integer >= 0"),
]


@pytest.mark.parametrize("cls,arguments,message", BAD, ids=[f"{c.__name__}-{next(iter(a))}" for c, a, _ in BAD])
def test_bad_argument_raises(cls, arguments, message):
    with pytest.raises(ValueError, match=message):
        cls(**arguments)


def test_learning_rate_may_be_a_schedule_or_callable():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert optimizers.Adam(schedule)._learning_rate is schedule
    optimizers.SGD(lambda: 0.01)
    optimizers.SGD(0.0)  # zero is allowed


@pytest.mark.parametrize("name", list(TWINS))
def test_same_positional_arguments_and_defaults_as_twin(name):
    lab_class, keras_class, _ = TWINS[name]
    ours = inspect.signature(lab_class.__init__).parameters
    theirs = inspect.signature(keras_class.__init__).parameters
    positional = [p for p in ours.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert [p.name for p in positional] == [p.name for p in theirs.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    for parameter in positional:
        assert parameter.default == theirs[parameter.name].default, parameter.name
    extra = {p.name for p in ours.values() if p.kind is p.KEYWORD_ONLY}
    assert extra <= {"momentum_style", "epsilon_placement"}
