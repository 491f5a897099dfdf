"""The statistics of the fair protocol, each a pure function over arrays or DataFrames.

- ``bootstrap_interval``: a percentile bootstrap confidence interval (Efron & Tibshirani 1993).
- ``seed_summary``: per group, median and its 95% bootstrap interval, mean and standard deviation.
- ``paired_comparison``: each optimiser against the best one of its problem, paired by seed.
- ``performance_profile``: Dolan & Moré (2002), the fraction of problems within a factor tau of
  the best.
- ``expected_max``: the expected best validation score of k of the N trials (Dodge et al. 2019).

None of them reads anything but its arguments; the random ones take a ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

DEFAULT_RESAMPLES = 10_000
CONFIDENCE = 0.95


def bootstrap_interval(
    values: Sequence[float],
    statistic: Callable[..., np.ndarray] = np.median,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """The percentile bootstrap interval of ``statistic`` over ``values``.

    B resamples x*_b of the n values are drawn with replacement (``numpy.random.default_rng(seed)``),
    the statistic s_b = statistic(x*_b) of each is computed, and the interval is the
    (1 - confidence)/2 and (1 + confidence)/2 quantiles of the s_b (linear interpolation,
    ``numpy.quantile``'s default). Efron & Tibshirani (1993), *An Introduction to the Bootstrap*,
    ch. 13. ``statistic`` takes an ``axis`` argument. NaN when a value is NaN or there is none;
    one value gives (value, value).
    """
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must be in (0, 1), got {confidence!r}.")
    if int(resamples) < 1:
        raise ValueError(f"`resamples` must be >= 1, got {resamples!r}.")
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0 or np.isnan(x).any():
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    samples = x[rng.integers(0, x.size, size=(int(resamples), x.size))]
    statistics = statistic(samples, axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(statistics, [tail, 1 - tail])
    return float(low), float(high)


def seed_summary(frame: pd.DataFrame, value: str, by: Sequence[str], *, seed: int = 0) -> pd.DataFrame:
    """Per group of ``by``: ``n``, ``median``, ``low``/``high`` (the median's 95% bootstrap
    interval, ``bootstrap_interval``), ``mean`` and ``std`` (sample standard deviation, ddof=1;
    NaN for one value) of ``frame[value]``, in the order of first appearance."""
    rows = []
    for key, group in frame.groupby(list(by), sort=False):
        x = group[value].to_numpy(dtype=np.float64)
        low, high = bootstrap_interval(x, np.median, seed=seed)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "n": len(x),
                     "median": float(np.median(x)), "low": low, "high": high, "mean": float(np.mean(x)),
                     "std": float(np.std(x, ddof=1)) if len(x) > 1 else np.nan})
    return pd.DataFrame(rows)


def paired_comparison(
    frame: pd.DataFrame,
    value: str,
    *,
    problem: str = "problem",
    optimizer: str = "optimizer",
    pair: str = "seed",
    higher_is_better: bool | dict[str, bool] = True,
    seed: int = 0,
) -> pd.DataFrame:
    """Each optimiser against its problem's best, paired by ``pair`` (the seed).

    The best optimiser b of a problem has the best median of ``value`` over seeds (ties: the one
    listed first). For every optimiser o, the paired differences d_s = x_{o,s} - x_{b,s} over the
    seeds both have give ``difference`` = mean(d) and its 95% percentile bootstrap interval
    (``bootstrap_interval`` of the mean; d is resampled as pairs, which keeps what a seed shares:
    the initial weights and the data order). ``indistinguishable`` is true when the interval
    contains 0 (the best itself: d = 0). ``higher_is_better`` may be given per problem.
    """
    rows = []
    for name, group in frame.groupby(problem, sort=False):
        higher = higher_is_better[name] if isinstance(higher_is_better, dict) else higher_is_better
        medians = group.groupby(optimizer, sort=False)[value].median()
        best = medians.idxmax() if higher else medians.idxmin()
        reference = group[group[optimizer] == best].set_index(pair)[value]
        for candidate, runs in group.groupby(optimizer, sort=False):
            own = runs.set_index(pair)[value]
            shared = own.index.intersection(reference.index)
            differences = (own[shared] - reference[shared]).to_numpy(dtype=np.float64)
            low, high = bootstrap_interval(differences, np.mean, seed=seed)
            rows.append({problem: name, optimizer: candidate, "best": best, "pairs": len(shared),
                         "difference": float(np.mean(differences)) if len(differences) else np.nan,
                         "low": low, "high": high,
                         "indistinguishable": bool(candidate == best or (low <= 0 <= high))})
    return pd.DataFrame(rows)


def performance_profile(times: pd.DataFrame, taus: Sequence[float], *, problem: str = "problem",
                        optimizer: str = "optimizer", value: str = "time") -> pd.DataFrame:
    """Dolan & Moré (2002), "Benchmarking optimization software with performance profiles",
    Math. Programming 91: for problems p and optimisers s with cost t_{p,s} (``inf`` or NaN: the
    target was not reached), the ratio r_{p,s} = t_{p,s} / min_s t_{p,s} and the profile
    rho_s(tau) = |{p : r_{p,s} <= tau}| / |P|. A problem no optimiser solved counts in |P| and
    for nobody. One row per optimiser and tau: ``optimizer, tau, fraction``."""
    table = times.pivot_table(index=problem, columns=optimizer, values=value, aggfunc="first", sort=False)
    costs = table.to_numpy(dtype=np.float64)
    costs = np.where(np.isnan(costs), np.inf, costs)
    best = costs.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.where(np.isfinite(costs), costs / best, np.inf)
    rows = []
    for column, name in enumerate(table.columns):
        for tau in taus:
            rows.append({optimizer: name, "tau": float(tau), "fraction": float(np.mean(ratios[:, column] <= tau))})
    return pd.DataFrame(rows)


def expected_max(scores: Sequence[float], budgets: Sequence[int] | None = None, *,
                 higher_is_better: bool = True) -> np.ndarray:
    """Dodge et al. (2019), "Show your work: improved reporting of experimental results" (EMNLP),
    eq. 1: the expected best of k trials drawn with replacement from the N observed scores
    v_(1) <= ... <= v_(N),

        E[max of k] = sum_i v_(i) [(i / N)^k - ((i - 1) / N)^k],

    for each k of ``budgets`` (default 1..N). With ``higher_is_better=False`` the expected minimum
    (the formula on -v). Scores must be finite."""
    v = np.asarray(scores, dtype=np.float64)
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError("`scores` must be a non-empty sequence of finite numbers.")
    sign = 1.0 if higher_is_better else -1.0
    ordered = np.sort(sign * v)
    n = ordered.size
    ks = np.arange(1, n + 1) if budgets is None else np.asarray(list(budgets), dtype=np.int64)
    if (ks < 1).any():
        raise ValueError(f"`budgets` must be >= 1, got {list(ks)}.")
    i = np.arange(1, n + 1, dtype=np.float64)
    weights = (i[None, :] / n) ** ks[:, None] - ((i[None, :] - 1) / n) ** ks[:, None]
    return sign * (weights @ ordered)
