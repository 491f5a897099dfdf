"""lab.registry: names -> lab classes with the notebooks' defaults; spec overrides and errors."""

from __future__ import annotations

import keras
import pytest

from lab import optimizers
from lab.registry import OPTIMIZERS, build_optimizer, parse_spec

pytestmark = pytest.mark.backend_agnostic

EXPECTED = {
    # name: (class, learning rate, other defaults) -- notebook 003 for sgd/momentum/rmsprop/adam
    "sgd": (optimizers.SGD, 0.01, {"momentum": 0.0, "nesterov": False}),
    "momentum": (optimizers.SGD, 0.01, {"momentum": 0.9, "nesterov": False}),
    "nesterov": (optimizers.SGD, 0.01, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (optimizers.Adagrad, 0.001, {}),
    "rmsprop": (optimizers.RMSprop, 0.001, {"rho": 0.9}),
    "adam": (optimizers.Adam, 0.001, {"beta_1": 0.9, "beta_2": 0.999}),
    "adamw": (optimizers.AdamW, 0.001, {"weight_decay": 0.004}),
    "nadam": (optimizers.Nadam, 0.001, {}),
    "lion": (optimizers.Lion, 0.001, {}),
    # the other Keras twins, with Keras's defaults
    "adadelta": (optimizers.Adadelta, 0.001, {"rho": 0.95}),
    "adamax": (optimizers.Adamax, 0.001, {"beta_2": 0.999}),
    "ftrl": (optimizers.Ftrl, 0.001, {"learning_rate_power": -0.5, "initial_accumulator_value": 0.1}),
    "lamb": (optimizers.Lamb, 0.001, {"beta_1": 0.9}),
    "adafactor": (optimizers.Adafactor, 0.001, {"beta_2_decay": -0.8, "relative_step": True}),
    "muon": (optimizers.Muon, 0.001, {"momentum": 0.95, "ns_steps": 5, "weight_decay": 0.004, "adam_weight_decay": 0.004}),
    "schedule_free_adamw": (optimizers.ScheduleFreeAdamW, 0.0025, {"beta_1": 0.9, "warmup_steps": 0}),
}
EXPECTED.update(
    {
        "radam": (optimizers.RAdam, 0.001, {"beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}),
        "prodigy": (optimizers.Prodigy, 1.0, {"d0": 1e-6, "d_coef": 1.0, "decoupled_weight_decay": True}),
        "nadamw": (optimizers.NAdamW, 0.001, {"weight_decay": 0.01, "epsilon": 1e-8, "momentum_decay": None}),
        "schedule_free_sgd": (optimizers.ScheduleFreeSGD, 1.0, {"momentum": 0.9, "weight_learning_rate_power": 2.0}),
    }
)


def test_every_name_is_registered():
    assert set(OPTIMIZERS) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_name_builds_lab_class_with_defaults(name):
    cls, learning_rate, defaults = EXPECTED[name]
    optimizer = build_optimizer(name)
    assert type(optimizer) is cls
    assert float(optimizer.learning_rate) == pytest.approx(learning_rate)
    for key, value in defaults.items():
        assert getattr(optimizer, key) == value, key


def test_overrides_parse_and_apply():
    spec = parse_spec("momentum:momentum=0.95,nesterov=true,momentum_style=heavy_ball")
    assert spec.overrides == {"momentum": 0.95, "nesterov": True, "momentum_style": "heavy_ball"}
    optimizer = spec.build()
    assert (optimizer.momentum, optimizer.nesterov, optimizer.momentum_style) == (0.95, True, "heavy_ball")
    adam = build_optimizer("adam:learning_rate=3e-4,epsilon_placement='paper'")
    assert float(adam.learning_rate) == pytest.approx(3e-4) and adam.epsilon_placement == "paper"
    assert parse_spec(" Adam : learning_rate = 3e-4 ").label == "adam:learning_rate=0.0003"
    assert parse_spec("adam").label == "adam"


def test_extra_arguments_win():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    optimizer = build_optimizer("sgd:learning_rate=0.5", learning_rate=schedule)
    assert optimizer._learning_rate is schedule


@pytest.mark.parametrize(
    "spec,message",
    [
        ("sophia", "unknown optimizer 'sophia'; valid names: sgd, momentum"),
        ("adam:learning_rate", "malformed override"),
        ("adam:=3", "malformed override"),
        ("adam:learning_rate=", "malformed override"),
        ("adam:momentum=0.9", "unknown argument 'momentum' for adam .*valid arguments: .*beta_1"),
        ("sgd:momentum=1.5", r"`momentum` must be in \[0, 1\)"),
        ("sgd:momentum_style=polyak", "momentum_style"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)
