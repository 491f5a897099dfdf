"""A problem's schedule shape (``Problem.schedule``): the rate a run chooses (the problem's, a
spec's, a swept or a tuned one) becomes the peak of the protocol's schedule over the run's steps,
not a constant that replaces it; schedule-free optimisers keep the rate constant."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from experiments.grid import Trial, build_optimizer, chosen_learning_rate, run_steps
from experiments.lr_finder import default_learning_rate
from lab import internals
from lab.problems import PROBLEMS, SHAKESPEARE_PEAK, Problem, protocol_view, shakespeare_schedule
from lab.schedules import WarmupCosine

pytestmark = pytest.mark.backend_agnostic

TRANSFORMER = PROBLEMS["shakespeare_transformer"]


def _rate_at(schedule, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


@pytest.mark.parametrize("spec, arguments, peak", [
    ("adamw", {}, SHAKESPEARE_PEAK),  # the problem's rate
    ("adamw:learning_rate=0.0007", {}, 7e-4),  # the spec's
    ("adamw", {"learning_rate": 0.02}, 0.02),  # a tuned or swept one
    ("momentum", {"learning_rate": 0.5}, 0.5),
])
def test_the_rate_a_run_chooses_is_the_peak_of_the_problems_schedule(spec, arguments, peak):
    # the protocol's steps: 16,384 windows in batches of 64 for 6 epochs; 2,048 in batches of 32 for 2
    for problem, steps in ((TRANSFORMER, 1536), (TRANSFORMER.quick_version(), 128)):
        trial = Trial(problem=problem, optimizer=spec, optimizer_arguments=arguments, protocol="held_out")
        assert run_steps(trial, protocol_view(problem.split(), "held_out")) == steps
        schedule = internals.learning_rate_or_schedule(build_optimizer(trial, steps))
        assert isinstance(schedule, WarmupCosine) and chosen_learning_rate(trial) == pytest.approx(peak)
        expected = problem.schedule(peak, steps)
        assert schedule.get_config() == expected.get_config()
        warmup, decay = expected.warmup_steps, expected.decay_steps
        assert warmup + decay == steps and warmup == round(0.05 * steps)
        # 0 at the first step, the peak at the end of the warm-up, half of it half-way down the cosine, 0 at the end
        np.testing.assert_allclose([_rate_at(schedule, s) for s in (0, warmup, warmup + decay // 2, warmup + decay)],
                                   [0.0, peak, peak / 2, 0.0], rtol=1e-3, atol=peak * 1e-3)
        # without the run's steps (a range test sets the rate itself) the rate stays a number
        assert chosen_learning_rate(trial) == pytest.approx(float(build_optimizer(trial).learning_rate))


def test_the_schedule_spans_the_steps_of_a_run_with_other_epochs_or_batches():
    quick = TRANSFORMER.quick_version()
    trial = Trial(problem=quick, optimizer="adamw", epochs=3, batch_size=64, protocol="held_out")
    view = protocol_view(quick.split(), "held_out")
    assert run_steps(trial, view) == 3 * 2048 // 64
    schedule = internals.learning_rate_or_schedule(build_optimizer(trial, run_steps(trial, view)))
    assert schedule.warmup_steps + schedule.decay_steps == 96


def test_schedule_free_optimizers_keep_the_rate_constant():
    optimizer = build_optimizer(Trial(problem=TRANSFORMER, optimizer="schedule_free_adamw",
                                      optimizer_arguments={"learning_rate": 0.004}), steps=1536)
    rate = internals.learning_rate_or_schedule(optimizer)
    assert not isinstance(rate, keras.optimizers.schedules.LearningRateSchedule)
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.004)


def test_a_fixed_schedule_in_the_trial_is_kept_as_it_is():
    fixed = WarmupCosine(0.1, 3, 20)
    trial = Trial(problem=TRANSFORMER, optimizer="sgd", optimizer_arguments={"learning_rate": fixed})
    optimizer = build_optimizer(trial, steps=1536)
    assert internals.learning_rate_or_schedule(optimizer) is fixed


def test_the_lr_finder_reports_the_peak_as_the_default_rate():
    assert default_learning_rate(TRANSFORMER, "adamw") == pytest.approx(SHAKESPEARE_PEAK)
    assert default_learning_rate(PROBLEMS["moons"], "sgd") == pytest.approx(PROBLEMS["moons"].learning_rate)


def test_a_shape_needs_a_callable_and_a_number_as_the_peak():
    base = dict(name="p", data=lambda: None, model=lambda seed: None, loss="mse", epochs=1, batch_size=None)
    with pytest.raises(ValueError, match="a fixed schedule goes in learning_rate"):
        Problem(**base, learning_rate=0.1, schedule=WarmupCosine(0.1, 3, 20))
    with pytest.raises(ValueError, match="needs a number as learning_rate"):
        Problem(**base, schedule=shakespeare_schedule)
    problem = Problem(**base, learning_rate=0.1, schedule=shakespeare_schedule, quick={"schedule": None})
    assert problem.quick_version().schedule is None
    assert dataclasses.replace(problem, schedule=None).schedule is None
