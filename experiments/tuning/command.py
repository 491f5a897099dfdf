"""The fair protocol from the command line: ``compare_optimizers --tune N`` (and ``--replot``),
the run folder, the local workers of ``--jobs``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from experiments import cli
from experiments.grid import RESULTS_FILE, TENSORBOARD, exit_with_parent
from experiments.tuning import report as tuning_report
from experiments.tuning.selection import finder_records, run_finals, trial_records
from experiments.tuning.settings import HOW_IT_RUNS, NAME, TUNING_FILE, Settings, check_settings
from experiments.tuning.studies import check_existing_studies, default_storage, open_studies
from experiments.tuning.trials import work


def _same_run(args: argparse.Namespace, parser: argparse.ArgumentParser, info: dict) -> bool:
    theirs = vars(parser.parse_args(info.get("arguments", [])))
    ours = vars(args)
    return all(theirs.get(k) == ours.get(k) for k in set(theirs) | set(ours) if k not in HOW_IT_RUNS)


def open_run_folder(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """``--resume``'s folder; a new one; or, with the same command, the folder of a run in
    progress that this process joins as a worker."""
    if args.resume is not None:
        return cli.open_output(args, NAME)
    out = args.out if args.out is not None else cli.default_output_dir(NAME)
    run_file = out / cli.RUN_FILE
    if run_file.exists():
        info = cli.read_run_info(out, NAME, "--out")
        if not _same_run(args, parser, info) or (out / "report.md").exists():
            raise cli.UsageError(f"{out} already holds a run; use --resume {out} to continue it or choose another --out")
        return out
    return cli.open_output(args, NAME)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser, problems, optimizers: Sequence[str],
        seeds: int, entry_point: Callable[[Sequence[str]], int]) -> int:
    """The fair protocol from the command line (``compare_optimizers --tune N``); ``entry_point``
    is the command's ``main``, which the local workers of ``--jobs`` run."""
    settings = check_settings(args, problems, optimizers, seeds)
    resume = args.resume is not None
    if settings.storage is not None and settings.method == "search":
        check_existing_studies(settings, settings.storage)  # before a run folder is made
    out = open_run_folder(args, parser)
    if settings.tensorboard:
        write_hparams_experiment(settings, out)
    if settings.method == "finder":
        tuning = finder_records(settings, out)
    else:
        url = settings.storage or default_storage(out)
        studies = open_studies(settings, url, resume=resume)
        helpers = _start_local_workers(entry_point, args.command_line, out, settings.jobs - 1) if studies.chief else []
        ran = work(settings, studies, out, wait=studies.chief)
        for helper in helpers:
            helper.join()
        if not studies.chief:
            print(f"worker: ran {ran} trials of {url}; the chief writes the report")
            return 0
        tuning = trial_records(settings, studies)
        cli.write_csv_atomic(out / TUNING_FILE, tuning)
    run_finals(settings, tuning, out)
    summary_md = tuning_report.make_outputs(out, settings, cli.read_run_info(out, NAME, "--out"))
    print(summary_md)
    print(f"results in {out} (report.md, tuning.csv, results.csv, summary.md, plots/, tensorboard/)")
    return 0


def write_hparams_experiment(settings: Settings, out: Path) -> None:
    """The HParams dashboard's columns: every tuned hyperparameter, the labels, the scores."""
    from experiments import hparams

    names = list(dict.fromkeys(d.name for pair in settings.pairs for d in pair.space))
    monitors = list(dict.fromkeys(pair.problem.monitor for pair in settings.pairs))
    metrics = [("validation", f"epoch_{m}") for m in monitors if m != "loss"]
    metrics += [("validation", "epoch_loss"), ("train", "epoch_loss")]
    hparams.write_experiment(out / TENSORBOARD, [*names, "stage", "problem", "optimizer", "trial", "seed"], metrics)


def _start_local_workers(entry_point: Callable[[Sequence[str]], int], command_line: Sequence[str], out: Path,
                         count: int) -> list:
    """``--jobs N`` with ``--tune``: N - 1 more processes of the same command, workers of this
    run (same folder, same storage); they exit with this process."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    argv = [*command_line, "--out", str(out), "--jobs", "1", "--no-progress"]
    helpers = []
    for _ in range(max(count, 0)):
        process = context.Process(target=_local_worker, args=(entry_point, argv, os.getpid()), daemon=True)
        process.start()
        helpers.append(process)
    return helpers


def _local_worker(entry_point: Callable[[Sequence[str]], int], argv: list[str], parent: int) -> None:
    exit_with_parent(parent)  # a killed chief takes its workers with it
    try:
        entry_point(argv)
    except cli.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(cli.EXIT_USAGE)


def replot(args: argparse.Namespace, out: Path, info: dict, problems, optimizers: Sequence[str]) -> int:
    """``--replot DIR`` of a tuning run: its summaries, plots and report from its files."""
    for name in (TUNING_FILE, RESULTS_FILE):
        if not (out / name).is_file():
            raise cli.UsageError(f"--replot {out}: no {name} there yet")
    seeds = int(pd.read_csv(out / RESULTS_FILE)["seed"].nunique())
    settings = check_settings(args, problems, optimizers, seeds)
    print(tuning_report.make_outputs(out, settings, info))
    print(f"re-plotted {out}")
    return 0
