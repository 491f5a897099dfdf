"""The main job: SGD, momentum, RMSprop and Adam compared on MNIST and make_moons, over seeds.

Notebook 003's protocol (MNIST MLP 784-128-10, batch 32, 10 epochs, validated on the 10k test
set; SGD 0.01, momentum 0.9, RMSprop 0.001, Adam 0.001) and notebook 004's (make_moons 2-16-8-2,
full batch, 200 epochs, all four at learning rate 0.01), 3 seeds each, with the lab's own
optimisers. Any problem of ``lab.problems`` (or a user's own, by import path) and any optimiser
spec (``keras:NAME`` and ``package.module:Class`` too) can be compared the same way. This is the
notebooks' protocol: trained on all the training data and validated on the test set, so nothing
here selects (no best epoch, no tuned rate). Writes to ``--out`` (default ``runs/compare_optimizers/<timestamp>/``):

    run.json        what was run (arguments, backend, versions, processor): identifies the run
    results.csv     problem, optimizer, seed, epoch, loss, <metrics>, val_loss, val_<metrics>,
                    learning_rate, seconds, status (ok / diverged) -- rewritten after every run
    boundaries.csv  moons: probability of class 1 on a grid, first seed of each optimizer
    summary.csv, summary.md, plots/*.png, report.md   made from the CSV files only
    tensorboard/<problem>/<optimizer>/seed<k>/         ``tensorboard --logdir <out>/tensorboard``
    checkpoints/    the per-epoch checkpoint of the run in progress (removed when it finishes)

    python -m experiments.compare_optimizers                   # the default comparison
    python -m experiments.compare_optimizers --quick           # a smoke run, well under a minute
    python -m experiments.compare_optimizers --problems moons --optimizers sgd adam:learning_rate=0.03
    python -m experiments.compare_optimizers --problems digits mymodule:PROBLEM --optimizers sgd keras:Adam
    python -m experiments.compare_optimizers --jobs 2                # two runs at a time, same numbers
    python -m experiments.compare_optimizers --resume runs/compare_optimizers/20250101-120000
    python -m experiments.compare_optimizers --replot runs/compare_optimizers/20250101-120000
    python -m experiments.compare_optimizers --tune 16         # the fair protocol: experiments.tuning

Backend: ``KERAS_BACKEND`` as everywhere in Keras; when it is unset this job uses JAX if it is
installed (on a 2-core CPU it trains these models several times faster than TensorFlow, mostly
through lower per-step overhead), else TensorFlow. The backend is recorded in ``run.json``.
Numbers are reproducible on the same backend (``seconds`` aside), not across backends.
"""

from __future__ import annotations

if __name__ == "__main__":  # the command line's default backend, chosen before Keras is imported
    from experiments.cli import prefer_jax_backend

    prefer_jax_backend()

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import cli, report, tuning
from experiments.grid import Trial, run_grid

NAME = "compare_optimizers"
DEFAULT_OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
DEFAULT_PROBLEMS = ("mnist_mlp", "moons")
DEFAULT_SEEDS = 3
BOUNDARY_GRID = 60  # points per axis of the moons decision-boundary grid
BOUNDARIES_FILE = "boundaries.csv"


def declare_trials(problems, optimizers: Sequence[str], seeds: int, epochs: int | None = None,
                   batch_size: int | None = None) -> list[Trial]:
    """Every problem x optimizer x seed, under the notebooks' protocol."""
    return [
        Trial(problem=problem, optimizer=optimizer, seed=seed, epochs=epochs, batch_size=batch_size,
              labels=(("problem", problem.name), ("optimizer", optimizer), ("seed", seed)))
        for problem in problems
        for optimizer in optimizers
        for seed in range(seeds)
    ]


def boundary_rows(trial: Trial, model, data) -> dict[str, pd.DataFrame] | None:
    """Moons, first seed: P(class 1) of the trained model on a grid around the data."""
    if trial.problem.name != "moons" or trial.seed != 0:
        return None
    from lab.callbacks.averaged_weights import evaluated_weights_in

    x = np.concatenate([data.x_train, data.x_test])
    low, high = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    xs = np.linspace(low[0], high[0], BOUNDARY_GRID, dtype=np.float32)
    ys = np.linspace(low[1], high[1], BOUNDARY_GRID, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)
    with evaluated_weights_in(model):  # a schedule-free optimiser's averaged iterate
        probability = model.predict(points, batch_size=len(points), verbose=0)[:, 1]
    frame = pd.DataFrame({"x": points[:, 0], "y": points[:, 1], "probability": probability.astype(np.float64)})
    return {BOUNDARIES_FILE: frame}


# --- summary, plots, report ----------------------------------------------------------------------


def make_outputs(out: Path, problems, target: float | None, run_info: dict) -> pd.DataFrame:
    """summary.csv, summary.md, plots/*.png and report.md from the CSV files in ``out``."""
    results = pd.read_csv(out / "results.csv")
    targets = {problem.name: report.Target.of(problem, target) for problem in problems}
    summary = report.summarize(results, targets)
    cli.write_csv_atomic(out / "summary.csv", summary)
    table_md = report.markdown_table(report.summary_table(summary))
    cli.write_text_atomic(out / "summary.md", table_md)
    plots_dir = out / "plots"
    plots_dir.mkdir(exist_ok=True)
    plots = [
        report.plot_curves(results, name, plots_dir / f"curves_{name}.png", targets[name].monitor)
        for name in results["problem"].unique()
    ]
    plots.append(report.plot_time_to_target(summary, plots_dir / "time_to_target.png"))
    boundaries_path = out / BOUNDARIES_FILE
    if boundaries_path.is_file():
        moons = next(problem for problem in problems if problem.name == "moons").split()
        plots.append(
            report.plot_boundaries(
                pd.read_csv(boundaries_path), (moons.x_test, moons.y_test), plots_dir / "moons_boundaries.png", results
            )
        )
    settings = {
        "protocol": "the notebooks': every run trains on all the training data and is validated on the test set "
        "(val_* columns are test scores), as notebook 003 does; nothing is selected on them",
        "problems": "; ".join(f"{p.name} ({p.description}; target {targets[p.name].describe()})" for p in problems),
        "optimizers": ", ".join(dict.fromkeys(results["optimizer"])),
        "seeds": int(results["seed"].nunique()),
        "backend": run_info.get("backend"),
        "machine": f"{run_info.get('processor')}, {run_info.get('threads')} threads",
        "versions": ", ".join(f"{k} {v}" for k, v in run_info.get("versions", {}).items()),
    }
    notes = [
        f"{row['problem']} {row['optimizer']}: diverged in {row['diverged']} of {row['seeds']} seeds "
        f"(epoch {row['diverged_epochs']})"
        for _, row in summary.iterrows()
        if row["diverged"]
    ]
    relative = [plot.relative_to(out) for plot in plots]
    cli.write_text_atomic(out / "report.md", report.report_markdown(table_md, relative, settings, notes))
    return summary


# --- command line ------------------------------------------------------------------------------


def build_parser():
    parser = cli.make_parser(
        NAME,
        __doc__.split("\n\n")[0]
        + "\n\nDefaults: problems mnist_mlp (10 epochs, batch 32, target 97%) and moons (200 epochs,\n"
        "full batch, learning rate 0.01 for every optimizer, target 95%); optimizers sgd momentum\n"
        "rmsprop adam with the registry's defaults; 3 seeds (1 with --quick).",
    )
    cli.add_training_arguments(parser, problems=DEFAULT_PROBLEMS, optimizers=DEFAULT_OPTIMIZERS, seeds=DEFAULT_SEEDS)
    parser.add_argument(
        "--target", "--target-accuracy", dest="target", type=cli.positive_float, default=None, metavar="VALUE",
        help="the validation score whose epochs/seconds to reach are reported, for every problem: an accuracy in "
        "(0, 1], or a loss for problems without metrics (default: each problem's own, e.g. 0.97 MNIST MLP, 0.95 moons)",
    )
    parser.add_argument(
        "--replot", type=Path, default=None, metavar="DIR",
        help="re-make summary, plots and report of DIR from its CSV files (no training)",
    )
    tuning.add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = cli.parse_arguments(parser, argv, NAME)
    if args.replot is not None:
        folder = args.replot
        info = cli.read_run_info(folder, NAME, "--replot")
        if not (folder / "results.csv").is_file():
            raise cli.UsageError(f"--replot {folder}: no results.csv there yet")
        args = parser.parse_args(info.get("arguments", []))
        out = folder
    else:
        info = None
    problems = cli.resolve_problems(args)
    if args.target is not None and args.target > 1 and any(p.monitor == "accuracy" for p in problems):
        raise cli.UsageError(f"--target must be in (0, 1] for an accuracy, got {args.target}")
    if tuning.requested(args):  # the fair protocol: experiments.tuning
        if info is not None:
            return tuning.replot(args, out, info, problems, cli.check_optimizers(args.optimizers))
        return tuning.run(args, parser, problems, cli.check_optimizers(args.optimizers), _seeds(args), main)
    if info is not None:
        summary = make_outputs(out, problems, args.target, info)
        print(report.markdown_table(report.summary_table(summary)))
        print(f"re-plotted {out}")
        return 0
    optimizers = cli.check_optimizers(args.optimizers)
    trials = declare_trials(problems, optimizers, _seeds(args), args.epochs, args.batch_size)
    options = cli.grid_options(args)
    if not options["distributed"].is_chief:  # a cluster worker: trains in step, keeps nothing
        run_grid(trials, Path("."), after=boundary_rows, extra_files=(BOUNDARIES_FILE,), **options)
        return 0
    out = cli.open_output(args, NAME)
    run_grid(trials, out, after=boundary_rows, extra_files=(BOUNDARIES_FILE,), **options)
    summary = make_outputs(out, problems, args.target, cli.read_run_info(out, NAME, "--out"))
    print(report.markdown_table(report.summary_table(summary)))
    print(f"results in {out} (report.md, results.csv, summary.md, plots/, tensorboard/)")
    return 0


def _seeds(args) -> int:
    return args.seeds if "--seeds" in args.command_line or not args.quick else 1


if __name__ == "__main__":
    cli.run_main(main)
