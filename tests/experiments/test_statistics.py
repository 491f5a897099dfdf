"""experiments.statistics against hand computations and brute-force enumerations."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from experiments.statistics import (
    bootstrap_interval,
    expected_max,
    paired_comparison,
    performance_profile,
    seed_summary,
)

pytestmark = pytest.mark.backend_agnostic


def test_bootstrap_interval_of_two_values_by_hand():
    # resamples of (1, 3): (1,1) (1,3) (3,1) (3,3) -> medians 1, 2, 2, 3 with probabilities 1/4, 1/2, 1/4;
    # the 2.5% and 97.5% quantiles of that distribution are 1 and 3
    assert bootstrap_interval([1.0, 3.0]) == (1.0, 3.0)
    assert bootstrap_interval([1.0, 3.0], np.mean, confidence=0.4) == (2.0, 2.0)  # the middle 40% is all 2
    assert bootstrap_interval([5.0]) == (5.0, 5.0)
    assert all(np.isnan(bootstrap_interval([1.0, np.nan])))


def test_bootstrap_interval_of_the_mean_matches_the_exact_bootstrap_distribution():
    values = np.array([0.1, 0.4, 0.45, 0.9])
    # all 4^4 = 256 equally likely resamples, enumerated
    means = np.array([np.mean(values[list(index)]) for index in itertools.product(range(4), repeat=4)])
    exact = np.quantile(means, [0.025, 0.975])
    low, high = bootstrap_interval(values, np.mean, resamples=200_000)
    assert low == pytest.approx(exact[0], abs=0.01) and high == pytest.approx(exact[1], abs=0.01)


def test_bootstrap_interval_of_a_large_sample_is_the_normal_one():
    x = np.random.default_rng(1).normal(10.0, 2.0, size=400)
    low, high = bootstrap_interval(x, np.mean)
    half = 1.959964 * np.std(x) / np.sqrt(len(x))  # the bootstrap's standard error uses ddof=0
    assert low == pytest.approx(x.mean() - half, rel=0, abs=0.03 * half)
    assert high == pytest.approx(x.mean() + half, rel=0, abs=0.03 * half)


def test_bad_bootstrap_arguments():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval([1.0], confidence=1.0)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_interval([1.0], resamples=0)


def test_seed_summary_by_hand():
    frame = pd.DataFrame({"problem": ["p"] * 3 + ["q"], "value": [0.9, 0.8, 0.95, 0.5]})
    summary = seed_summary(frame, "value", ["problem"]).set_index("problem")
    p = summary.loc["p"]
    assert (p["n"], p["median"]) == (3, 0.9)
    assert p["mean"] == pytest.approx((0.9 + 0.8 + 0.95) / 3)
    assert p["std"] == pytest.approx(np.sqrt(((0.9 - 0.883333) ** 2 + (0.8 - 0.883333) ** 2 + (0.95 - 0.883333) ** 2) / 2), abs=1e-6)
    assert 0.8 <= p["low"] <= p["median"] <= p["high"] <= 0.95
    q = summary.loc["q"]
    assert (q["median"], q["low"], q["high"]) == (0.5, 0.5, 0.5) and np.isnan(q["std"])


def _runs(scores: dict[str, list[float]], problem: str = "p") -> pd.DataFrame:
    return pd.DataFrame([{"problem": problem, "optimizer": name, "seed": seed, "test": value}
                         for name, values in scores.items() for seed, value in enumerate(values)])


def test_paired_comparison_by_hand():
    frame = _runs({"a": [0.9, 0.8, 0.85], "b": [0.8, 0.7, 0.85], "c": [0.8, 0.68, 0.74]})
    result = paired_comparison(frame, "test").set_index("optimizer")
    assert set(result["best"]) == {"a"}  # median 0.85 against 0.80 and 0.74
    assert result.loc["a", "difference"] == 0 and result.loc["a", "indistinguishable"]
    # b - a per seed: -0.1, -0.1, 0; the mean of a resample is -0.1 with probability (2/3)^3 = 0.30 and 0 with
    # probability (1/3)^3 = 0.037 > 0.025: the interval is [-0.1, 0], which contains 0
    b = result.loc["b"]
    assert b["difference"] == pytest.approx(-0.2 / 3)
    assert (b["low"], b["high"]) == (pytest.approx(-0.1), pytest.approx(0.0, abs=1e-12))
    assert b["indistinguishable"]
    # c - a per seed: -0.1, -0.12, -0.11: every resample's mean lies in [-0.12, -0.1]
    c = result.loc["c"]
    assert -0.12 - 1e-12 <= c["low"] <= c["high"] <= -0.1 + 1e-12 and not c["indistinguishable"]
    assert c["pairs"] == 3


def test_paired_comparison_for_a_loss_pairs_by_seed_only():
    frame = _runs({"a": [0.5, 0.4], "b": [0.3, 0.2, 0.1]})  # b has a seed a does not have
    result = paired_comparison(frame, "test", higher_is_better={"p": False}).set_index("optimizer")
    assert set(result["best"]) == {"b"}  # the lower median loss
    assert result.loc["a", "pairs"] == 2 and result.loc["a", "difference"] == pytest.approx(0.2)
    assert not result.loc["a", "indistinguishable"]


def test_performance_profile_by_hand():
    times = pd.DataFrame({"problem": ["p1"] * 3 + ["p2"] * 3, "optimizer": ["a", "b", "c"] * 2,
                          "time": [10.0, 20.0, np.inf, 30.0, 15.0, 15.0]})
    # ratios: p1 a 1, b 2, c never; p2 a 2, b 1, c 1
    profile = performance_profile(times, [1.0, 1.5, 2.0, 100.0]).set_index(["optimizer", "tau"])["fraction"]
    assert profile.loc[("a", 1.0)] == 0.5 and profile.loc[("a", 1.5)] == 0.5 and profile.loc[("a", 2.0)] == 1.0
    assert profile.loc[("b", 1.0)] == 0.5 and profile.loc[("b", 2.0)] == 1.0
    assert profile.loc[("c", 1.0)] == 0.5 and profile.loc[("c", 100.0)] == 0.5  # never reached on p1
    nobody = pd.DataFrame({"problem": ["p1", "p1", "p2", "p2"], "optimizer": ["a", "b"] * 2,
                           "time": [1.0, 2.0, np.nan, np.inf]})
    assert performance_profile(nobody, [10.0]).set_index("optimizer").loc["a", "fraction"] == 0.5


def test_expected_max_by_hand_and_by_enumeration():
    # k = 2 of (1, 2, 3): the maxima of the 9 ordered pairs sum to 22
    assert expected_max([3.0, 1.0, 2.0]).tolist() == pytest.approx([2.0, 22 / 9, 1 * 1 / 27 + 2 * 7 / 27 + 3 * 19 / 27])
    scores = np.random.default_rng(0).uniform(size=5)
    draws = list(itertools.product(scores, repeat=3))
    assert expected_max(scores, [3])[0] == pytest.approx(np.mean([max(d) for d in draws]))
    assert expected_max(scores, [3], higher_is_better=False)[0] == pytest.approx(np.mean([min(d) for d in draws]))
    curve = expected_max(scores)
    assert curve[0] == pytest.approx(scores.mean()) and np.all(np.diff(curve) > 0) and curve[-1] < scores.max()
    with pytest.raises(ValueError, match="finite"):
        expected_max([1.0, np.nan])
    with pytest.raises(ValueError, match="budgets"):
        expected_max([1.0], [0])
