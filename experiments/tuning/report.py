"""Summaries, statistics, plots and the report of the fair protocol, made from its saved files.

Reads ``tuning.csv`` (one row per trial) and ``results.csv`` (the final runs: ``setting`` tuned
or default, one row per epoch, ``test_<metric>`` on each run's last row); Optuna's own plots read
the studies in the storage. Nothing trains, so ``--replot DIR`` re-makes everything.

Per problem x optimiser x setting, over the final seeds (``experiments.statistics``):
    the test score (``test_<monitor>`` of the last row): median, the 95% percentile bootstrap
    interval of the median, mean and sample standard deviation; the validation score of the last
    row (median); epochs and seconds to the problem's target on the validation split, median
    over seeds with a seed that missed the target counted as infinitely slow (so "not reached"
    when half the seeds or more missed it); the seeds that diverged.
Tuned setting only:
    each optimiser against the problem's best (best median test score), paired by seed: the mean
    difference and its 95% bootstrap interval, "indistinguishable" when it spans 0;
    the expected best validation score of k = 1..N trials (Dodge et al. 2019; a trial whose score
    is not finite counts as the worst finite score of its problem's trials);
    performance profiles over problems of the seconds and the epochs to the target (Dolan & Moré).
Rankings: the optimisers of each problem by median test score, defaults and tuned side by side,
and one sentence per problem on what tuning changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import cli, report, statistics
from experiments.grid import RESULTS_FILE
from experiments.tuning.selection import select_best
from experiments.tuning.settings import FINDER_STEPS, FINDER_SUGGESTION, TRIAL_SEED, TUNING_FILE, sampler_description
from experiments.tuning.studies import STORAGE_FILE, default_storage, open_storage, quiet_optuna

SUMMARY_FILE = "summary.csv"
EXPECTED_BEST_FILE = "expected_best.csv"
PROFILE_FILE = "performance_profile.csv"
NOT_REACHED = report.NOT_REACHED


def _targets(settings) -> dict[str, report.Target]:
    return {pair.problem.name: report.Target.of(pair.problem, settings.target) for pair in settings.pairs}


def final_runs(results: pd.DataFrame, targets: dict[str, report.Target]) -> pd.DataFrame:
    """One row per final run: problem, optimizer, setting, seed, ``test``, ``val``, epochs and
    seconds to the target on validation (``inf``: not reached), diverged."""
    frames = []
    for setting, group in results.groupby("setting", sort=False):
        runs = report.per_run(group.drop(columns="setting"), targets)
        runs.insert(2, "setting", setting)
        frames.append(runs)
    runs = pd.concat(frames, ignore_index=True)
    keys = ["problem", "optimizer", "setting", "seed"]
    last = results.sort_values("epoch", kind="stable").groupby(keys, sort=False).tail(1)
    tests = []
    for _, row in last.iterrows():
        tests.append({**{k: row[k] for k in keys}, "test": float(row.get(f"test_{targets[row['problem']].monitor}", np.nan))})
    runs = runs.merge(pd.DataFrame(tests), on=keys, how="left").rename(columns={"final_val": "val"})
    for column in ("epochs_to_target", "seconds_to_target"):
        runs[column] = runs[column].fillna(np.inf)
    return runs


def summarize_finals(runs: pd.DataFrame) -> pd.DataFrame:
    """Per problem x optimizer x setting: the test score's statistics and the time to target."""
    keys = ["problem", "optimizer", "setting"]
    stats = statistics.seed_summary(runs, "test", keys).rename(
        columns={"median": "test_median", "low": "test_low", "high": "test_high", "mean": "test_mean",
                 "std": "test_std", "n": "seeds"})
    grouped = runs.groupby(keys, sort=False)
    extra = grouped.agg(val_median=("val", "median"), epochs_to_target=("epochs_to_target", "median"),
                        seconds_to_target=("seconds_to_target", "median"), diverged=("diverged", "sum"),
                        monitor=("monitor", "first"), target=("target", "first")).reset_index()
    extra["reached"] = grouped["epochs_to_target"].apply(lambda x: int(np.isfinite(x).sum())).to_numpy()
    return stats.merge(extra, on=keys, how="left")


def ranking(summary: pd.DataFrame, problem: str, setting: str, higher_is_better: bool) -> list[str]:
    """The optimisers of ``problem`` under ``setting``, best median test score first."""
    rows = summary[(summary["problem"] == problem) & (summary["setting"] == setting)]
    return rows.sort_values("test_median", ascending=not higher_is_better, kind="stable")["optimizer"].tolist()


def _score(value: float, monitor: str) -> str:
    if not np.isfinite(value):
        return "n/a"
    return f"{value * 100:.2f}" if monitor == "accuracy" else f"{value:.4g}"


def _unit(monitor: str) -> str:
    return "test accuracy %" if monitor == "accuracy" else f"test {monitor}"


def ranking_text(summary: pd.DataFrame, problem: str, setting: str, higher_is_better: bool) -> str:
    rows = summary[(summary["problem"] == problem) & (summary["setting"] == setting)].set_index("optimizer")
    order = ranking(summary, problem, setting, higher_is_better)
    return " > ".join(f"{name} {_score(rows.loc[name, 'test_median'], rows.loc[name, 'monitor'])}" for name in order)


def what_changed(summary: pd.DataFrame, problem: str, higher_is_better: bool, tuned: dict[str, dict],
                 budget_words: str) -> str:
    """One sentence: the first place and the order before and after tuning, and who gained most."""
    before = ranking(summary, problem, "default", higher_is_better)
    after = ranking(summary, problem, "tuned", higher_is_better)
    rows = summary[summary["problem"] == problem]
    monitor = rows["monitor"].iloc[0]
    median = {(r.optimizer, r.setting): r.test_median for r in rows.itertuples()}
    sign = 1.0 if higher_is_better else -1.0
    gains = {name: sign * (median[(name, "tuned")] - median[(name, "default")]) for name in after}
    gainer = max(gains, key=lambda name: -np.inf if np.isnan(gains[name]) else gains[name])
    scale, unit = (100, " points") if monitor == "accuracy" else (1, "")
    order = "the order is unchanged" if before == after else f"the order changes from {' > '.join(before)} to {' > '.join(after)}"
    rate = tuned.get(gainer, {}).get("learning_rate")
    rate_words = f" at learning rate {rate:.3g}" if rate is not None else ""
    return (f"{problem}: with the defaults {before[0]} ranks first, after {budget_words} {after[0]} does; {order}; "
            f"{gainer} gains the most ({gains[gainer] * scale:+.2f}{unit} of median {_unit(monitor)}{rate_words}).")


def expected_best(tuning: pd.DataFrame, settings) -> pd.DataFrame:
    """``problem, optimizer, k, expected_best`` for k = 1..N (module docstring)."""
    rows = []
    for problem, group in tuning.groupby("problem", sort=False):
        pair = next(p for p in settings.pairs if p.problem.name == problem)
        scores = group[pair.monitor].to_numpy(dtype=float)
        finite = scores[np.isfinite(scores)]
        if finite.size == 0:
            continue
        worst = finite.min() if pair.problem.higher_is_better else finite.max()
        for optimizer, trials in group.groupby("optimizer", sort=False):
            values = trials[pair.monitor].to_numpy(dtype=float)
            values = np.where(np.isfinite(values), values, worst)
            curve = statistics.expected_max(values, higher_is_better=pair.problem.higher_is_better)
            rows += [{"problem": problem, "optimizer": optimizer, "k": k, "expected_best": float(v)}
                     for k, v in enumerate(curve, start=1)]
    return pd.DataFrame(rows)


def profiles(summary: pd.DataFrame) -> pd.DataFrame:
    """Performance profiles of the tuned runs, on seconds and on epochs to the target."""
    tuned = summary[summary["setting"] == "tuned"]
    frames = []
    for measure in ("seconds_to_target", "epochs_to_target"):
        values = tuned[measure].to_numpy(dtype=float)
        best = tuned.groupby("problem")[measure].transform("min").to_numpy(dtype=float)
        ratios = values[np.isfinite(values)] / best[np.isfinite(values)]
        top = max(2.0, float(ratios.max()) * 1.1) if ratios.size else 2.0
        taus = np.unique(np.concatenate([np.geomspace(1.0, top, 60), ratios]))
        frame = statistics.performance_profile(tuned.rename(columns={measure: "time"}), taus)
        frame.insert(0, "measure", measure)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --- tables ------------------------------------------------------------------------------------


def _hyperparameter_text(values: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4g}" for name, value in values.items())


def _time_text(value: float, reached: int, seeds: int, digits: int) -> str:
    if not np.isfinite(value):
        return NOT_REACHED
    suffix = "" if reached == seeds else f" ({reached}/{seeds} seeds)"
    return f"{value:.{digits}f}{suffix}"


def tuned_table(summary: pd.DataFrame, comparison: pd.DataFrame, tuned: dict, tuning: pd.DataFrame,
                settings) -> pd.DataFrame:
    """The report's main table: one row per problem x optimiser, tuned."""
    rows = []
    compared = comparison.set_index(["problem", "optimizer"])
    for s in summary[summary["setting"] == "tuned"].itertuples():
        pair = next(p for p in settings.pairs if p.problem.name == s.problem and p.optimizer == s.optimizer)
        percent = s.monitor == "accuracy"
        scale = 100 if percent else 1
        digits = 2 if percent else 4
        trials = tuning[(tuning["problem"] == s.problem) & (tuning["optimizer"] == s.optimizer)]
        best_val = trials.loc[trials["trial"] == tuned[(s.problem, s.optimizer)]["trial"], pair.monitor]
        c = compared.loc[(s.problem, s.optimizer)]
        if c["best"] == s.optimizer:
            versus = "best"
        elif np.isnan(c["low"]):
            versus = "n/a"
        else:
            verdict = "indistinguishable" if c["indistinguishable"] else ("worse" if c["difference"] * (1 if pair.problem.higher_is_better else -1) < 0 else "better")
            versus = f"{c['difference'] * scale:+.{digits}f} [{c['low'] * scale:+.{digits}f}, {c['high'] * scale:+.{digits}f}] {verdict}"
        status = "ok" if not s.diverged else f"diverged {s.diverged}/{s.seeds}"
        if settings.method == "search" and not tuned[(s.problem, s.optimizer)]["ok"]:
            status += "; no trial finished ok"
        rows.append({
            "problem": s.problem,
            "optimizer": s.optimizer,
            "tuned hyperparameters": _hyperparameter_text(tuned[(s.problem, s.optimizer)]["values"]),
            "best trial val": "n/a" if best_val.empty or not np.isfinite(best_val.iloc[0])
            else f"{best_val.iloc[0] * scale:.{digits}f}",
            f"{_unit(s.monitor)}: median [95% CI]": f"{s.test_median * scale:.{digits}f} "
            f"[{s.test_low * scale:.{digits}f}, {s.test_high * scale:.{digits}f}]" if np.isfinite(s.test_median) else "n/a",
            "mean ± std": report.mean_std(s.test_mean, s.test_std, scale, digits),
            "epochs to target (val)": _time_text(s.epochs_to_target, s.reached, s.seeds, 0),
            "seconds to target (val)": _time_text(s.seconds_to_target, s.reached, s.seeds, 1),
            "vs best: difference [95% CI]": versus,
            "status": status,
        })
    return pd.DataFrame(rows)


def cost_table(tuning: pd.DataFrame, results: pd.DataFrame, settings) -> pd.DataFrame:
    """What the protocol cost per problem: trials, seconds per trial, tuning and final seconds."""
    rows = []
    finals = results.groupby(["problem", "optimizer", "setting", "seed"], sort=False)["seconds"].max().reset_index()
    for problem, group in tuning.groupby("problem", sort=False):
        row = {"problem": problem, "trials": len(group)}
        if settings.method == "finder":
            row["range-test steps per optimizer"] = " / ".join(f"{r.optimizer} {int(r.steps)}" for r in group.itertuples())
        row["median s per trial"] = f"{group['seconds'].median():.2f}"
        row["tuning s (sum)"] = f"{group['seconds'].sum():.1f}"
        statuses = group["status"].value_counts()
        row["trials ok / diverged / pruned"] = " / ".join(str(int(statuses.get(s, 0))) for s in ("ok", "diverged", "pruned"))
        row["final runs s (sum)"] = f"{finals.loc[finals['problem'] == problem, 'seconds'].sum():.1f}"
        rows.append(row)
    return pd.DataFrame(rows)


def space_table(settings) -> pd.DataFrame:
    rows = []
    seen = set()
    for pair in settings.pairs:
        if pair.optimizer in seen:
            continue
        seen.add(pair.optimizer)
        for dimension in pair.space:
            rows.append({"optimizer": pair.optimizer, "hyperparameter": dimension.name, "range": dimension.describe()})
    return pd.DataFrame(rows)


# --- plots -------------------------------------------------------------------------------------


def plot_expected_best(curves: pd.DataFrame, settings, path: Path) -> Path:
    plt = report.pyplot()
    problems = list(dict.fromkeys(curves["problem"]))
    figure, axes = plt.subplots(1, len(problems), figsize=(5.5 * len(problems), 3.8), squeeze=False)
    for axis, problem in zip(axes[0], problems):
        pair = next(p for p in settings.pairs if p.problem.name == problem)
        for optimizer, rows in curves[curves["problem"] == problem].groupby("optimizer", sort=False):
            axis.plot(rows["k"], rows["expected_best"], marker="o", markersize=3, label=optimizer)
        axis.set(title=f"{problem}: expected best of k trials", xlabel="trials k (budget)",
                 ylabel=f"expected best {pair.monitor}")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_profiles(frame: pd.DataFrame, path: Path) -> Path:
    plt = report.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8), squeeze=False)
    for axis, (measure, rows) in zip(axes[0], frame.groupby("measure", sort=False)):
        for optimizer, curve in rows.groupby("optimizer", sort=False):
            axis.step(curve["tau"], curve["fraction"], where="post", label=optimizer)
        axis.set(title=f"performance profile: {measure.replace('_', ' ')}", xlabel="tau (ratio to the best)",
                 ylabel="fraction of problems", xscale="log", ylim=(-0.02, 1.02))
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_optuna(settings, url: str, folder: Path) -> list[Path]:
    """Optuna's optimisation history, slice and parameter importances of every study, through
    its matplotlib backend (importances need two dimensions and two finished trials)."""
    optuna = quiet_optuna()
    from optuna.visualization import matplotlib as optuna_plots

    plt = report.pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    storage = open_storage(url)
    for pair in settings.pairs:
        try:
            study = optuna.load_study(study_name=pair.study_name, storage=storage)
        except KeyError:
            continue
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        plots = {"history": optuna_plots.plot_optimization_history, "slice": optuna_plots.plot_slice}
        if len(pair.space) > 1 and len(complete) >= 2:
            plots["importances"] = optuna_plots.plot_param_importances
        for kind, function in plots.items():
            if not complete:
                continue
            axes = function(study)
            figure = np.ravel(axes)[0].figure
            figure.suptitle(f"{pair.problem.name} / {pair.optimizer}", fontsize="small")
            path = folder / f"{report_safe(pair.problem.name)}_{report_safe(pair.optimizer)}_{kind}.png"
            figure.savefig(path, dpi=80, bbox_inches="tight")
            plt.close(figure)
            paths.append(path)
    return paths


def report_safe(text: str) -> str:
    from experiments.grid import _safe

    return _safe(text)


# --- the report ----------------------------------------------------------------------------------


def make_outputs(out: Path, settings, run_info: dict) -> str:
    """summary.csv/.md, expected_best.csv, performance_profile.csv, plots/ and report.md from the
    files in ``out``; the summary table (Markdown)."""
    tuning = pd.read_csv(out / TUNING_FILE)
    results = pd.read_csv(out / RESULTS_FILE)
    targets = _targets(settings)
    higher = {name: target.higher_is_better for name, target in targets.items()}
    runs = final_runs(results, targets)
    summary = summarize_finals(runs)
    tuned_runs = runs[runs["setting"] == "tuned"]
    comparison = statistics.paired_comparison(tuned_runs, "test", higher_is_better=higher)
    summary = summary.merge(
        comparison.rename(columns={"difference": "vs_best", "low": "vs_best_low", "high": "vs_best_high"})
        .drop(columns=["pairs"]).assign(setting="tuned"),
        on=["problem", "optimizer", "setting"], how="left")
    tuned = {}
    for pair in settings.pairs:
        values, trial, ok = select_best(tuning, pair)
        tuned[(pair.problem.name, pair.optimizer)] = {"values": values, "trial": trial, "ok": ok}
    cli.write_csv_atomic(out / SUMMARY_FILE, summary)
    table_md = report.markdown_table(tuned_table(summary, comparison, tuned, tuning, settings))
    cli.write_text_atomic(out / "summary.md", table_md)

    plots_dir = out / "plots"
    plots_dir.mkdir(exist_ok=True)
    plots = []
    for problem in dict.fromkeys(results["problem"]):
        plots.append(report.plot_curves(results[results["setting"] == "tuned"].drop(columns="setting"), problem,
                                        plots_dir / f"curves_{report_safe(problem)}.png", targets[problem].monitor))
    profile = profiles(summary)
    cli.write_csv_atomic(out / PROFILE_FILE, profile)
    plots.append(plot_profiles(profile, plots_dir / "performance_profiles.png"))
    optuna_plots: list[Path] = []
    if settings.method == "search":
        curves = expected_best(tuning, settings)
        cli.write_csv_atomic(out / EXPECTED_BEST_FILE, curves)
        if not curves.empty:
            plots.append(plot_expected_best(curves, settings, plots_dir / "expected_best.png"))
        optuna_plots = plot_optuna(settings, settings.storage or default_storage(out), plots_dir / "optuna")

    budget_words = (f"{settings.budget} trials each" if settings.method == "search"
                    else "the range test's rate")
    rank_rows, sentences = [], []
    for problem in dict.fromkeys(results["problem"]):
        rank_rows.append({"problem": problem,
                          "defaults (the registry's, as the notebooks)": ranking_text(summary, problem, "default", higher[problem]),
                          f"tuned ({budget_words})": ranking_text(summary, problem, "tuned", higher[problem])})
        per_optimizer = {opt: tuned[(problem, opt)]["values"] for (p, opt) in tuned if p == problem}
        sentences.append(what_changed(summary, problem, higher[problem], per_optimizer, budget_words))
    text = report_markdown(out, settings, run_info, table_md, pd.DataFrame(rank_rows), sentences,
                           cost_table(tuning, results, settings), plots, optuna_plots, tuned)
    cli.write_text_atomic(out / "report.md", text)
    return table_md


def report_markdown(out: Path, settings, run_info: dict, table_md: str, ranks: pd.DataFrame,
                    sentences: Sequence[str], cost: pd.DataFrame, plots: Sequence[Path],
                    optuna_plots: Sequence[Path], tuned: dict) -> str:
    if settings.method == "search":
        method = (f"{settings.budget} trials per problem x optimizer, the first {settings.budget} points of "
                  f"{sampler_description()} over each optimizer's search space (below), the same for "
                  "every optimizer")
        if settings.prune:
            method += f"; Optuna's {settings.prune} pruner on the validation score of each epoch (a pruned trial counts)"
    else:
        method = (f"one LR range test per problem x optimizer (lab.callbacks.find_lr, {FINDER_STEPS} "
                  f"steps at most, seed 0, on the training part), rate = its {FINDER_SUGGESTION} "
                  "suggestion; the other hyperparameters at their defaults")
    targets = _targets(settings)
    own = "each problem's own"
    problems = list(dict.fromkeys(pair.problem.name for pair in settings.pairs))
    descriptions = {pair.problem.name: pair.problem.description for pair in settings.pairs}
    settings_lines = {
        "protocol": "the fair one (experiments.tuning): every trial trains on the training part and is scored on the "
        "validation split; the best trial (highest validation score at the last epoch among the trials that "
        "finished ok, ties to the lower index) is re-trained over the seeds under the same protocol and scored "
        "once on the test set. The defaults are re-trained the same way. Nothing that selects reads the test set",
        "tuning": method,
        "problems": "; ".join(f"{p} ({descriptions[p]}; target {targets[p].describe()})" for p in problems),
        "epochs, batch size": f"{settings.epochs or own}, {settings.batch_size or own}",
        "seeds": f"{settings.seeds} final seeds (0..{settings.seeds - 1}); trials train from seed {TRIAL_SEED}",
        "statistics": "median and 95% percentile bootstrap interval (10,000 resamples) over seeds; differences paired "
        "by seed against the best median (a tie goes to the optimizer listed first), 'indistinguishable' when their "
        "interval spans 0",
        "storage": settings.storage or f"{STORAGE_FILE} (SQLite, in this folder)",
        "backend": run_info.get("backend"),
        "machine": f"{run_info.get('processor')}, {run_info.get('threads')} threads",
        "versions": ", ".join(f"{k} {v}" for k, v in run_info.get("versions", {}).items()),
    }
    lines = ["# Optimizer comparison: equal tuning budgets", "", "## Settings", ""]
    lines += [f"- **{key}**: {value}" for key, value in settings_lines.items()]
    lines += ["", "## Search spaces", "", report.markdown_table(space_table(settings))]
    lines += ["## Tuned results", "", table_md]
    lines += ["## Rankings: defaults and tuned", "", report.markdown_table(ranks)]
    lines += [f"- {sentence}" for sentence in sentences] + [""]
    not_ok = [f"{p} {o}" for (p, o), t in tuned.items() if not t["ok"]]
    if not_ok and settings.method == "search":
        lines += [f"No trial finished ok for: {', '.join(not_ok)}; the best finite validation score was taken.", ""]
    lines += ["## Cost", "", report.markdown_table(cost)]
    lines += ["## Plots", ""]
    for plot in plots:
        lines += [f"![{plot.stem}]({plot.relative_to(out).as_posix()})", ""]
    if optuna_plots:
        lines += ["## Optuna's plots", ""]
        lines += [f"- [{plot.stem}]({plot.relative_to(out).as_posix()})" for plot in optuna_plots] + [""]
    return "\n".join(lines)
