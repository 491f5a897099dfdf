"""Weight decay on make_moons: coupled L2 (an L2 term in the loss) next to decoupled (AdamW).

Notebook 004 trains its 2-16-8-2 moons net with PyTorch ``Adam(lr=0.01, weight_decay=wd)`` for
wd in 0, 0.001, 0.01, full batch, 200 epochs, and compares train and test loss. PyTorch's Adam
*couples* the decay: it adds ``wd * w`` to the gradient before the moment estimates, so the
decay is rescaled by Adam's ``1 / (sqrt(v_hat) + eps)`` like any other gradient. AdamW (Loshchilov
& Hutter, 2019) *decouples* it: ``w <- w - lr * wd * w`` beside the Adam step, untouched by v_hat.

Coupled, exactly as PyTorch's Adam: every trainable variable -- kernels *and* biases, as PyTorch
decays all parameters -- gets ``keras.regularizers.L2(wd / 2)``. Keras adds
``(wd / 2) * sum(w ** 2)`` to the loss, whose gradient is ``wd * w``: the gradient Adam sees is
``grad(cross-entropy) + wd * w``, PyTorch's ``grad = grad.add(param, alpha=weight_decay)``.
(``L2(wd)`` would double the decay.)

Decoupled: the same optimiser spec with ``weight_decay=wd``, the decay of Keras's optimiser base
class; for Adam that is ``lab.optimizers.AdamW`` (AdamW is Adam with that argument made
first-class). The default spec is ``lab.optimizers.Adam`` with PyTorch's numerics (epsilon 1e-8
in the paper's placement), as notebook 004; the learning rate is the problem's (moons: 0.01).

The trials (problem x optimizer x method x decay x seed) run on ``experiments.grid``. Protocol:
the notebook's -- trained on all the training data and validated on the test set (the ``val_*``
columns are test scores), as notebook 004 does; nothing is selected on them (only final values
are reported, no best epoch). The losses compared are the problem's loss alone, recorded as a
metric of the same name (``sparse_categorical_crossentropy`` for moons): the quantity of the
notebook's ``criterion``; Keras's ``loss`` of a coupled run also holds the penalty. Writes:

    run.json          what was run (arguments, backend, versions)
    results.csv       problem, optimizer, method, weight_decay, seed, then train_run's epoch rows
    weight_norms.csv  the global L2 norm of the trainable variables before and after training
    summary.csv       final train/test loss and accuracy, the weight norms, the generalisation gap
    weight_decay.png  train and test loss per epoch, final weight norm against the decay
    tensorboard/      one folder per trial

    python -m experiments.weight_decay            # 004's settings: 200 full-batch epochs
    python -m experiments.weight_decay --quick    # 10 epochs
    python -m experiments.weight_decay --optimizers sgd --weight-decays 0 0.01
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import cli, report
from experiments.grid import Trial, run_grid

NAME = "weight_decay"
METHODS = ("coupled_l2", "decoupled")
WEIGHT_DECAYS = (0.0, 0.001, 0.01)  # notebook 004
DEFAULT_OPTIMIZERS = ("adam:epsilon=1e-8,epsilon_placement=paper",)  # PyTorch's Adam, notebook 004
QUICK_EPOCHS = 10
NORMS_FILE = "weight_norms.csv"
PROTOCOL = "notebook"


def with_coupled_l2(model, weight_decay: float):
    """A copy of ``model`` (same weights) whose every trainable variable carries ``L2(wd / 2)``.

    The penalty ``(wd / 2) * sum(w ** 2)`` over kernels and biases adds ``wd * w`` to each
    gradient: PyTorch ``Adam(weight_decay=wd)``'s coupled decay. ``weight_decay == 0`` returns a
    copy without regularisers.
    """
    import keras

    regularizer = keras.regularizers.L2(weight_decay / 2.0) if weight_decay > 0 else None

    def clone_layer(layer):
        config = layer.get_config()
        for key in ("kernel_regularizer", "bias_regularizer"):
            if key in config:
                config[key] = regularizer
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    regularised = [v.path for v in clone.trainable_variables if v.regularizer is not None]
    if weight_decay > 0 and len(regularised) != len(clone.trainable_variables):
        raise ValueError(f"only {regularised} of the model's variables carry the L2 penalty")
    return clone


def coupled_model(seed: int, *, build, weight_decay: float):
    """``build(seed)`` with the coupled penalty (a module-level function: trials go to processes)."""
    return with_coupled_l2(build(seed), weight_decay)


def with_loss_metric(problem):
    """The problem with its own loss also recorded as a metric (free of any penalty term)."""
    if not isinstance(problem.loss, str):
        raise cli.UsageError(f"--problems {problem.name}: weight_decay needs a loss given by name, got {problem.loss!r}")
    metrics = problem.metrics if problem.loss in problem.metrics else (*problem.metrics, problem.loss)
    return dataclasses.replace(problem, metrics=metrics)


def declare_trials(problems, optimizers: Sequence[str], weight_decays: Sequence[float], seeds: int, *,
                   epochs: int | None = None, batch_size: int | None = None, jit_compile: bool | str = "auto") -> list[Trial]:
    """Every problem x optimizer x method x decay x seed, under the notebook's protocol."""
    trials = []
    for problem in problems:
        for optimizer in optimizers:
            for method in METHODS:
                for weight_decay in weight_decays:
                    if method == "coupled_l2":
                        options = {"model": partial(coupled_model, build=problem.model, weight_decay=weight_decay)}
                    else:
                        options = {"optimizer_arguments": {"weight_decay": weight_decay}}
                    trials += [
                        Trial(problem=problem, optimizer=optimizer, seed=seed, epochs=epochs, batch_size=batch_size,
                              protocol=PROTOCOL, jit_compile=jit_compile, **options,
                              labels=(("problem", problem.name), ("optimizer", optimizer), ("method", method),
                                      ("weight_decay", weight_decay), ("seed", seed)))
                        for seed in range(seeds)
                    ]
    return trials


def weight_norm(model) -> float:
    """The global L2 norm of all trainable variables (kernels and biases)."""
    from keras import ops

    return float(np.sqrt(sum(float(np.sum(np.square(ops.convert_to_numpy(v)))) for v in model.trainable_variables)))


def weight_norms(trial: Trial, model, data) -> dict[str, pd.DataFrame]:
    """The trained model's weight norm, and that of the same seeded model before training."""
    initial = weight_norm(trial.problem.model(trial.seed))  # the coupled copy starts from these weights
    return {NORMS_FILE: pd.DataFrame([{"initial_weight_norm": initial, "final_weight_norm": weight_norm(model)}])}


# --- summary and plot ---------------------------------------------------------------------------

KEYS = ["problem", "optimizer", "method", "weight_decay", "seed"]


def summarise(results: pd.DataFrame, norms: pd.DataFrame, problems) -> pd.DataFrame:
    """Per trial: final train/test loss (the problem's loss alone) and metrics, weight norms, gap."""
    final = results.groupby(KEYS, sort=False).tail(1).set_index(KEYS)
    frames = []
    for problem in problems:
        rows = final[final.index.get_level_values("problem") == problem.name]
        columns = {"epoch": "epochs", problem.loss: "final_train_loss", f"val_{problem.loss}": "final_test_loss"}
        columns.update({m: f"final_train_{m}" for m in problem.metrics if m != problem.loss})
        columns.update({f"val_{m}": f"final_test_{m}" for m in problem.metrics if m != problem.loss})
        frames.append(rows[[*columns, "status"]].rename(columns=columns))
    summary = pd.concat(frames).join(norms.set_index(KEYS))
    summary["generalisation_gap"] = summary["final_test_loss"] - summary["final_train_loss"]
    return summary.reset_index()


def plot(results: pd.DataFrame, summary: pd.DataFrame, problems, path: Path) -> None:
    """Per problem, optimizer and method (rows): train and test loss per epoch (mean over seeds),
    and the final weight norm against the decay."""
    from matplotlib.ticker import MaxNLocator

    plt = report.pyplot()
    titles = {"coupled_l2": "coupled (L2 in the loss)", "decoupled": "decoupled (weight_decay)"}
    losses = {problem.name: problem.loss for problem in problems}
    groups = list(results.groupby(["problem", "optimizer", "method"], sort=False))
    pairs = list(dict.fromkeys((problem, optimizer) for (problem, optimizer, _), _ in groups))
    figure, axes = plt.subplots(len(groups), 3, figsize=(15, 3.8 * len(groups)), squeeze=False)
    for row, ((problem, optimizer, method), subset) in zip(axes, groups):
        title = f"{problem} {optimizer}: {titles[method]}" if len(pairs) > 1 else titles[method]
        loss = losses[problem]
        for weight_decay, group in subset.groupby("weight_decay"):
            curves = group.groupby("epoch")[[loss, f"val_{loss}"]].mean()
            row[0].plot(curves.index, curves[loss], linewidth=1.8, label=f"wd={weight_decay:g}")
            row[1].plot(curves.index, curves[f"val_{loss}"], linewidth=1.8, label=f"wd={weight_decay:g}")
        row[0].set_title(f"{title}: train loss")
        row[1].set_title(f"{title}: test loss")
        for axis in row[:2]:
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.set_ylabel(loss.replace("_", " "))
            axis.set_yscale("log")
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize=8)
        chosen = (summary["problem"] == problem) & (summary["optimizer"] == optimizer) & (summary["method"] == method)
        norms = summary[chosen].groupby("weight_decay")["final_weight_norm"].mean()
        positions = np.arange(len(norms))
        bars = row[2].bar(positions, norms.to_numpy(), color="tab:gray")
        row[2].bar_label(bars, fmt="%.3f", fontsize=8)
        row[2].set_xticks(positions, [f"{wd:g}" for wd in norms.index])
        row[2].set_xlabel("weight decay")
        row[2].set_ylabel("‖w‖₂ after training")
        row[2].set_title(f"{title}: final weight norm")
        row[2].grid(True, axis="y", alpha=0.3)
    names = "; ".join(f"{problem}, {optimizer}" for problem, optimizer in pairs)
    figure.suptitle(f"Weight decay, coupled and decoupled: {names} (notebook 004's protocol)")
    report.save_figure(figure, path, dpi=110)


# --- command line -------------------------------------------------------------------------------


def build_parser():
    parser = cli.make_parser(
        NAME,
        __doc__.split("\n\n")[0] + "\n\nDefaults: moons (full batch, 200 epochs; 10 with --quick), Adam with "
        "PyTorch's\nnumerics at the problem's rate (0.01), decays 0 0.001 0.01, 1 seed.",
    )
    cli.add_training_arguments(parser, problems=("moons",), optimizers=DEFAULT_OPTIMIZERS, seeds=1)
    parser.add_argument(
        "--weight-decays", nargs="+", type=float, default=list(WEIGHT_DECAYS), metavar="WD",
        help="decay strengths, each >= 0, used by both methods (default: 0 0.001 0.01, notebook 004)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = cli.parse_arguments(build_parser(), argv, NAME)
    bad = [wd for wd in args.weight_decays if not (np.isfinite(wd) and wd >= 0)]
    if bad:
        raise cli.UsageError(f"--weight-decays must be finite numbers >= 0, got {bad}")
    problems = [with_loss_metric(problem) for problem in cli.resolve_problems(args)]
    optimizers = cli.check_optimizers(args.optimizers)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else None)
    trials = declare_trials(problems, optimizers, sorted(set(args.weight_decays)), args.seeds, epochs=epochs,
                            batch_size=args.batch_size, jit_compile=False if args.quick else "auto")
    options = cli.grid_options(args)
    chief = options["distributed"].is_chief
    out = cli.open_output(args, NAME) if chief else Path(".")
    grid = run_grid(trials, out, after=weight_norms, extra_files=(NORMS_FILE,), **options)
    if not chief:
        return 0
    summary = summarise(grid.results, grid.extras[NORMS_FILE], problems)
    cli.write_csv_atomic(out / "summary.csv", summary)
    plot(grid.results, summary, problems, out / "weight_decay.png")
    with pd.option_context("display.width", 180, "display.max_columns", 20):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("protocol: notebook 004's -- trained on all the training data; the test columns are test-set scores, "
          "nothing is selected on them")
    print(f"results, plot and TensorBoard logs in {out}")
    return 0


if __name__ == "__main__":
    cli.run_main(main)
