"""Every schedule survives get_config / serialize -> JSON -> deserialize with the same values."""

import json

import keras
import numpy as np
import pytest
from keras import ops

import lab.schedules
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

STEPS = np.arange(0, 1200, 7)


def all_schedules():
    return [
        Constant(0.05),
        StepDecay(0.1, 0.5, 30),
        ExponentialDecay(0.1, 30, 0.9, staircase=True, name="decay"),
        CosineAnnealing(0.1, 500, 1e-3),
        WarmupCosine(0.1, 50, 400, initial_learning_rate=0.01, min_learning_rate=1e-4),
        OneCycle(0.2, 900, pct_start=0.25, div_factor=20.0, final_div_factor=50.0, anneal="linear"),
        CyclicalLR(1e-3, 0.1, 40, mode="exp_range", gamma=0.999),
        CosineWarmRestarts(0.1, 60, t_mul=1.5, m_mul=0.8, min_learning_rate=1e-3),
        Sequential(
            [WarmupCosine(0.1, 10, 90), keras.optimizers.schedules.ExponentialDecay(0.05, 100, 0.5)], [100]
        ),
        Scaled(Sequential([Constant(0.1), CyclicalLR(0.01, 0.1, 20, mode="triangular2")], [50]), scale=0.3),
        PolynomialDecay(0.1, 300, end_learning_rate=1e-3, power=0.5, cycle=True),
        LinearDecay(0.1, 800, 0.01),
        PiecewiseConstant.from_milestones(0.1, [200, 600], gamma=0.5),
        InverseTimeDecay(0.1, 50, 0.5, staircase=True),
        LinearWarmup(keras.optimizers.schedules.CosineDecay(0.1, 1000), 100, initial_learning_rate=0.01),
        WarmupStableDecay(0.1, 1000, 100, 0.25, "1-sqrt", min_learning_rate=1e-4),
    ]


def values(schedule):
    return ops.convert_to_numpy(schedule(STEPS)).astype("float64")


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("schedule", all_schedules(), ids=lambda s: type(s).__name__)
def test_round_trip_through_json(schedule):
    serialized = json.loads(json.dumps(keras.optimizers.schedules.serialize(schedule)))
    assert serialized["registered_name"] == f"lab>{type(schedule).__name__}"
    restored = keras.optimizers.schedules.deserialize(serialized)
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    assert repr(restored) == repr(schedule)
    np.testing.assert_array_equal(values(restored), values(schedule))
    direct = type(schedule).from_config(schedule.get_config())
    np.testing.assert_array_equal(values(direct), values(schedule))


def test_every_exported_schedule_is_covered():
    covered = {type(s).__name__ for s in all_schedules()}
    exported = {
        name
        for name in lab.schedules.__all__
        if isinstance(getattr(lab.schedules, name), type) and name != "Schedule"
    }
    assert exported == covered


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("schedule", all_schedules(), ids=lambda s: type(s).__name__)
def test_name_and_repr_are_readable(schedule):
    assert isinstance(schedule.name, str) and schedule.name
    text = repr(schedule)
    assert text.startswith(type(schedule).__name__ + "(")
    assert "object at 0x" not in text
