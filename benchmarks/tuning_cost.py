"""What a tuning budget costs: seconds per trial per problem of ``compare_optimizers --tune N``.

    python -m benchmarks.tuning_cost                          # --tune 4 on moons and mnist_mlp, --quick
    python -m benchmarks.tuning_cost -- --tune 8 --problems moons --optimizers sgd adam
    python -m benchmarks.tuning_cost --from runs/compare_optimizers/20261124-101500   # a finished run

Runs ``python -m experiments.compare_optimizers --out <tmp> --no-progress --no-tensorboard ARGS``
in a subprocess on the backend that job chooses (JAX when ``KERAS_BACKEND`` is unset), timed from
start to exit, then reads its ``tuning.csv``: per problem, the trials, the median and the mean
seconds of a trial (each trial's own ``seconds``: training and validation of a full run, the
model's compilation included) and their sum; and the whole command's wall time, which adds
process start-up, data loading, the final runs, the report and the plots. A budget of N trials
for K optimisers costs about N x K x (seconds per trial) of tuning on a problem. ``--from DIR``
reads a run already made instead (its wall time is then unknown). Rows go to
``benchmarks/results/tuning_cost.csv`` with the machine's description and its load average.
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

from benchmarks.machine import append_csv_row, describe_machine

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARGUMENTS = ["--tune", "4", "--problems", "moons", "mnist_mlp", "--optimizers", "sgd", "adam", "--seeds", "1",
                     "--quick"]  # fmt: skip


def cost_rows(tuning: pd.DataFrame) -> list[dict]:
    """Per problem: trials, median and mean seconds per trial, their sum."""
    rows = []
    for problem, group in tuning.groupby("problem", sort=False):
        rows.append({"problem": problem, "trials": len(group), "optimizers": group["optimizer"].nunique(),
                     "median_seconds_per_trial": round(float(group["seconds"].median()), 3),
                     "mean_seconds_per_trial": round(float(group["seconds"].mean()), 3),
                     "tuning_seconds": round(float(group["seconds"].sum()), 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    job = argv[argv.index("--") + 1:] if "--" in argv else None
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuning_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="folder", type=Path, default=None, metavar="DIR",
                        help="read the tuning.csv of a finished run instead of running one")
    args = parser.parse_args(own)
    load_before = os.getloadavg()[0]
    if args.folder is not None:
        info = json.loads((args.folder / "run.json").read_text())
        arguments = list(info.get("arguments", []))
        if "--out" in arguments:  # the folder is this machine's, not part of the command
            del arguments[arguments.index("--out"):arguments.index("--out") + 2]
        wall, command = float("nan"), "python -m experiments.compare_optimizers " + " ".join(arguments)
        tuning = pd.read_csv(args.folder / "tuning.csv")
    else:
        arguments = job or DEFAULT_ARGUMENTS
        command = "python -m experiments.compare_optimizers " + " ".join(arguments)
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "run"
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "experiments.compare_optimizers", "--out", str(out),
                                   "--no-progress", "--no-tensorboard", *arguments], cwd=ROOT,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                print(done.stderr[-4000:], file=sys.stderr)
                return 1
            tuning = pd.read_csv(out / "tuning.csv")
            backend = json.loads((out / "run.json").read_text())["backend"]
    if args.folder is not None:
        backend = json.loads((args.folder / "run.json").read_text())["backend"]
    machine = describe_machine()
    rows = [{**machine, "command": command, "backend": backend, **row, "wall_seconds": round(wall, 1),
             "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2)}
            for row in cost_rows(tuning)]
    append_csv_row(RESULTS / "tuning_cost.csv", rows)
    table = pd.DataFrame(rows)[["problem", "trials", "optimizers", "median_seconds_per_trial",
                                "mean_seconds_per_trial", "tuning_seconds", "wall_seconds"]]
    print(f"{command} ({backend}; load average {load_before:.1f})")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
