"""What a tuning budget costs: seconds per trial per problem of ``compare_optimizers --tune N``,
with vectorised groups and without, side by side, and against the compute floor.

    python -m benchmarks.tuning_cost                          # --tune 4 on moons and mnist_mlp, --quick
    python -m benchmarks.tuning_cost --vectorize auto off -- --tune 64 --problems moons
    python -m benchmarks.tuning_cost --vectorize map vmap -- --tune 16 --problems moons
    python -m benchmarks.tuning_cost --floor --keep runs/tuned -- --tune 16   # MNIST trials against the floor
    python -m benchmarks.tuning_cost --from runs/compare_optimizers/20261124-101500   # a finished run

Runs ``python -m experiments.compare_optimizers --out <tmp> --no-progress --no-tensorboard ARGS``
in a subprocess on the backend that job chooses (JAX when ``KERAS_BACKEND`` is unset), timed from
start to exit, then reads its ``tuning.csv``: per problem, the trials, the median and the mean
seconds of a trial (each trial's own ``seconds``: training and validation of a full run, the
model's compilation included; in a vectorised group every member's share of the group's time)
and their sum; and the whole command's wall time, which adds process start-up, data loading, the
final runs, the report and the plots. A budget of N trials for K optimisers costs about N x K x
(seconds per trial) of tuning on a problem.

``--vectorize MODE ...`` runs the same command once per ``--vectorize`` mode, one after another
in this process's order, and prints each mode's wall time and tuning seconds as a ratio to the
first mode's, and each mode's ranking of the optimisers per problem (by the median test metric of
the final runs, ``summary.csv``): the same ranking is what lets one mode stand in for another.

``--floor`` sets each ``mnist_mlp`` trial's seconds against its compute floor: the matrix-product
FLOPs of the epochs it trained (3 x the forward pass on every training image, the forward pass on
every validation image; ``benchmarks.matmul_floor``'s count) at the float32 rate this machine's
BLAS reaches on a training step's own matrix shapes (``matmul_floor.measure_floor``, measured in
the same run). ``--keep DIR`` keeps each run's folder as ``DIR/<mode>``. ``--from DIR`` reads a run already made instead (its wall time is then unknown).
Rows go to ``benchmarks/results/tuning_cost.csv`` with the machine's description and its load
average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks import matmul_floor
from benchmarks.machine import append_csv_row, describe_machine

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARGUMENTS = ["--tune", "4", "--problems", "moons", "mnist_mlp", "--optimizers", "sgd", "adam", "--seeds", "1",
                     "--quick"]  # fmt: skip
VECTORIZE_MODES = ("auto", "map", "vmap", "off")
FLOOR_PROBLEM = "mnist_mlp"


def cost_rows(tuning: pd.DataFrame) -> list[dict]:
    """Per problem: trials, median and mean seconds per trial, their sum."""
    rows = []
    for problem, group in tuning.groupby("problem", sort=False):
        rows.append({"problem": problem, "trials": len(group), "optimizers": group["optimizer"].nunique(),
                     "median_seconds_per_trial": round(float(group["seconds"].median()), 3),
                     "mean_seconds_per_trial": round(float(group["seconds"].mean()), 3),
                     "tuning_seconds": round(float(group["seconds"].sum()), 1)})
    return rows


def rankings(summary: pd.DataFrame) -> dict[str, str]:
    """Per problem, the tuned optimisers best first by the median test metric of their final runs."""
    ranked = {}
    if "setting" in summary and (summary["setting"] == "tuned").any():
        summary = summary[summary["setting"] == "tuned"]
    for problem, group in summary.groupby("problem", sort=False):
        lower_is_better = group["monitor"].iloc[0] == "loss" if "monitor" in group else False
        order = group.sort_values("test_median", ascending=lower_is_better, kind="stable")["optimizer"]
        ranked[problem] = " > ".join(order)
    return ranked


def mnist_mlp_trial_floor(arguments: list[str], epochs: float, rate_flops: float) -> float:
    """Seconds of matrix products an ``mnist_mlp`` trial of ``epochs`` epochs needs at
    ``rate_flops``: 3 x 2 x MACs per training image, 2 x MACs per validation image, per epoch."""
    from lab import problems

    problem = problems.resolve(FLOOR_PROBLEM)
    if "--quick" in arguments:
        problem = problem.quick_version()
    split = problems.protocol_view(problem.split(), "held_out")
    macs = matmul_floor.macs_per_example(matmul_floor.mlp_layer_sizes())
    flops_per_epoch = 2.0 * macs * (3 * len(split.x_train) + len(split.x_val))
    return epochs * flops_per_epoch / rate_flops


def run_command(arguments: list[str], keep: Path | None = None) -> tuple[float, pd.DataFrame, pd.DataFrame, str]:
    """Wall seconds, tuning.csv, summary.csv and backend of one ``compare_optimizers`` run, made
    in ``keep`` (which must not exist yet) or in a temporary folder."""
    with tempfile.TemporaryDirectory() as scratch:
        out = keep if keep is not None else Path(scratch) / "run"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "experiments.compare_optimizers", "--out", str(out),
                               "--no-progress", "--no-tensorboard", *arguments], cwd=ROOT,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-4000:])
        return (wall, pd.read_csv(out / "tuning.csv"), pd.read_csv(out / "summary.csv"),
                json.loads((out / "run.json").read_text())["backend"])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    job = argv[argv.index("--") + 1:] if "--" in argv else None
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuning_cost", description=__doc__.split("\n\n")[0],
                                     epilog="arguments after -- go to python -m experiments.compare_optimizers")
    parser.add_argument("--from", dest="folder", type=Path, default=None, metavar="DIR",
                        help="read the tuning.csv of a finished run instead of running one")
    parser.add_argument("--vectorize", nargs="+", choices=VECTORIZE_MODES, default=None, metavar="MODE",
                        help="run the command once per --vectorize mode (auto, map, vmap, off), side by side; "
                        "ratios are to the first")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep each run's folder (report, results, plots) as DIR/<mode> instead of deleting it")
    parser.add_argument("--floor", action="store_true",
                        help=f"{FLOOR_PROBLEM} trials against the compute floor of their matrix products")
    args = parser.parse_args(own)
    if args.folder is not None and args.vectorize:
        parser.error("--from reads one finished run; --vectorize runs the command: give one of them")
    machine = describe_machine()
    rate = None
    if args.floor:
        floor_row = matmul_floor.measure_floor()
        rate = floor_row["layer_shape_gflops"] * 1e9
        print(f"matmul rate at the training step's shapes: {floor_row['layer_shape_gflops']:.1f} GFLOP/s")

    runs = []  # (mode, arguments, wall, tuning, summary, backend, load before)
    if args.folder is not None:
        info = json.loads((args.folder / "run.json").read_text())
        arguments = list(info.get("arguments", []))
        if "--out" in arguments:  # the folder is this machine's, not part of the command
            del arguments[arguments.index("--out"):arguments.index("--out") + 2]
        summary_path = args.folder / "summary.csv"
        runs.append((None, arguments, float("nan"), pd.read_csv(args.folder / "tuning.csv"),
                     pd.read_csv(summary_path) if summary_path.exists() else None, info["backend"],
                     os.getloadavg()[0]))
    else:
        arguments = job or DEFAULT_ARGUMENTS
        for mode in args.vectorize or [None]:
            command_arguments = arguments + (["--vectorize", mode] if mode else [])
            load_before = os.getloadavg()[0]
            print(f"running python -m experiments.compare_optimizers {' '.join(command_arguments)}", flush=True)
            try:
                keep = None if args.keep is None else args.keep / (mode or "run")
                wall, tuning, summary, backend = run_command(command_arguments, keep)
            except RuntimeError as error:
                print(error, file=sys.stderr)
                return 1
            runs.append((mode, command_arguments, wall, tuning, summary, backend, load_before))

    tables, first = [], None
    for mode, command_arguments, wall, tuning, summary, backend, load_before in runs:
        command = "python -m experiments.compare_optimizers " + " ".join(command_arguments)
        ranked = rankings(summary) if summary is not None else {}
        rows = []
        for row in cost_rows(tuning):
            # the file's columns in every row: empty where --floor was not asked (or not MNIST)
            row["floor_seconds_per_trial"] = row["ratio_to_floor"] = float("nan")
            if rate is not None and row["problem"] == FLOOR_PROBLEM:
                trials = tuning[tuning["problem"] == FLOOR_PROBLEM]
                floor = mnist_mlp_trial_floor(command_arguments, float(trials["epochs"].median()), rate)
                row["floor_seconds_per_trial"] = round(floor, 3)
                row["ratio_to_floor"] = round(row["median_seconds_per_trial"] / floor, 2)
            rows.append({**machine, "command": command, "backend": backend, "vectorize": mode or "", **row,
                         "ranking": ranked.get(row["problem"], ""), "wall_seconds": round(wall, 1),
                         "load_average_before": round(load_before, 2),
                         "load_average_after": round(os.getloadavg()[0], 2)})
        if first is None:
            first = rows
        for row, reference in zip(rows, first):
            row["wall_vs_first"] = round(row["wall_seconds"] / reference["wall_seconds"], 2)
            row["tuning_vs_first"] = round(row["tuning_seconds"] / max(reference["tuning_seconds"], 1e-9), 2)
            row["same_ranking_as_first"] = row["ranking"] == reference["ranking"]
        append_csv_row(RESULTS / "tuning_cost.csv", rows)
        tables.extend(rows)
        print(f"{command} ({backend}; load average {load_before:.1f}): {wall:.1f} s")

    columns = ["vectorize", "problem", "trials", "optimizers", "median_seconds_per_trial", "tuning_seconds",
               "wall_seconds", "wall_vs_first", "tuning_vs_first", "same_ranking_as_first", "ranking"]
    if rate is not None:
        columns[5:5] = ["floor_seconds_per_trial", "ratio_to_floor"]
    table = pd.DataFrame(tables)
    print(table[[c for c in columns if c in table]].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
