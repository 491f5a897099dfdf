"""per_epoch: schedules built from epoch units."""

import keras
import numpy as np
import pytest
from keras import ops

from lab.schedules import (
    Constant,
    CosineAnnealing,
    CosineWarmRestarts,
    CyclicalLR,
    ExponentialDecay,
    OneCycle,
    Scaled,
    Sequential,
    StepDecay,
    WarmupCosine,
    per_epoch,
    step_arguments,
)
from tests.reference import schedules as reference


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "cls, epoch_arguments, step_arguments_expected",
    [
        (StepDecay, {"initial_learning_rate": 0.1, "decay_rate": 0.5, "decay_steps": 10}, {"decay_steps": 4690}),
        (ExponentialDecay, {"initial_learning_rate": 0.1, "decay_steps": 1, "decay_rate": 0.95}, {"decay_steps": 469}),
        (CosineAnnealing, {"initial_learning_rate": 0.1, "decay_steps": 100, "min_learning_rate": 1e-3}, {"decay_steps": 46900}),
        (WarmupCosine, {"peak_learning_rate": 0.1, "warmup_steps": 0.5, "decay_steps": 90}, {"warmup_steps": 234, "decay_steps": 42210}),
        (OneCycle, {"max_learning_rate": 0.1, "total_steps": 10, "pct_start": 0.25}, {"total_steps": 4690}),
        (CyclicalLR, {"base_learning_rate": 1e-3, "max_learning_rate": 0.1, "step_size": 2}, {"step_size": 938}),
        (CosineWarmRestarts, {"initial_learning_rate": 0.1, "first_decay_steps": 10}, {"first_decay_steps": 4690}),
        (Constant, {"learning_rate": 0.1}, {}),
    ],
)
def test_step_arguments_are_converted_and_the_rest_passes_through(cls, epoch_arguments, step_arguments_expected):
    schedule = per_epoch(cls, 469, **epoch_arguments)
    expected = cls(**{**epoch_arguments, **step_arguments_expected})
    assert schedule.get_config() == expected.get_config()
    assert set(step_arguments_expected) <= set(step_arguments(cls))


@pytest.mark.backend_agnostic
def test_notebook_step_decay_per_epoch_matches_reference_at_every_step():
    """Notebook 000's step decay (halve every 10 epochs) with 12 batches per epoch, over 100 epochs."""
    schedule = per_epoch(StepDecay, 12, initial_learning_rate=0.1, decay_rate=0.5, decay_steps=10)
    steps = np.arange(1200)
    values = ops.convert_to_numpy(schedule(steps)).astype("float64")
    epochs = steps // 12
    notebook = 0.1 * 0.5 ** (epochs // 10)
    np.testing.assert_allclose(values, notebook, rtol=1e-6)
    np.testing.assert_allclose(values, reference.step_decay(steps, 0.1, 0.5, 120), rtol=1e-6)


@pytest.mark.backend_agnostic
def test_sequential_boundaries_and_keras_schedules_are_converted():
    pieces = [Constant(0.01), CosineAnnealing(0.1, 500)]
    schedule = per_epoch(Sequential, 50, schedules=pieces, boundaries=[2])
    assert schedule.boundaries == [100]
    keras_schedule = per_epoch(keras.optimizers.schedules.CosineDecay, 50, initial_learning_rate=0.1, decay_steps=3)
    assert keras_schedule.decay_steps == 150
    scaled = per_epoch(Scaled, 50, schedule=0.1, scale=0.5)
    assert float(scaled(0)) == pytest.approx(0.05)


@pytest.mark.backend_agnostic
def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="`steps_per_epoch`"):
        per_epoch(StepDecay, 0, initial_learning_rate=0.1, decay_rate=0.5, decay_steps=1)
    with pytest.raises(ValueError, match="`decay_steps`"):
        per_epoch(StepDecay, 10, initial_learning_rate=0.1, decay_rate=0.5, decay_steps=-1)
    with pytest.raises(ValueError, match="`decay_steps`"):
        per_epoch(StepDecay, 10, initial_learning_rate=0.1, decay_rate=0.5, decay_steps=0.01)  # rounds to 0
