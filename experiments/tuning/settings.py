"""The fair protocol's settings: its constants, the problem x optimiser pairs with their search
spaces, and the command-line flags that choose them (``--tune``, ``--tune-by``, ``--search-space``,
``--storage``, ``--prune``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiments import cli
from lab.search_spaces import SearchSpace, load_search_spaces, space_for, space_to_dict

NAME = "compare_optimizers"
TUNING_FILE = "tuning.csv"
TEST_FILE = "test.csv"
METHODS = ("search", "finder")
PRUNERS = ("median", "halving")
SAMPLER_SEED = 0
TRIAL_SEED = 0
FINDER_STEPS = 100
FINDER_SUGGESTION = "minimum"  # a tenth of the rate at the lowest smoothed loss
STATUSES = ("ok", "diverged", "pruned")
SETTINGS = ("tuned", "default")
# settings of a run that do not change its numbers: a process joining the run may differ in them
HOW_IT_RUNS = ("out", "resume", "no_progress", "jobs", "command_line", "replot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tune N``, ``--tune-by``, ``--search-space``, ``--storage``, ``--prune``."""
    group = parser.add_argument_group("the fair protocol (experiments.tuning)")
    group.add_argument(
        "--tune", type=int, default=None, metavar="N",
        help="tune every optimizer with N trials of the same quasi-random sampler over its search space, each "
        "scored on the validation split; re-train the best over --seeds and score it on the test set",
    )
    group.add_argument(
        "--tune-by", choices=METHODS, default="search",
        help="search: N trials (with --tune N); finder: each optimizer's rate from the LR range test "
        "(lab.callbacks.find_lr), no budget (default: search)",
    )
    group.add_argument(
        "--search-space", type=Path, default=None, metavar="FILE",
        help="a JSON or TOML file of search spaces ({optimizer: {hyperparameter: {low, high, scale}}}) that "
        "replaces the registry's for the optimizers it names (see lab.search_spaces)",
    )
    group.add_argument(
        "--storage", default=None, metavar="URL",
        help="the Optuna storage of the studies (default: sqlite:///<out>/tuning.db); the same command started "
        "by several processes with one storage shares the trials",
    )
    group.add_argument(
        "--prune", nargs="?", const="median", choices=PRUNERS, default=None,
        help="stop hopeless trials early with Optuna's median pruner (or successive halving); a pruned trial "
        "counts against the budget (default: off)",
    )


def requested(args: argparse.Namespace) -> bool:
    """Whether the command line asks for the fair protocol."""
    return getattr(args, "tune", None) is not None or getattr(args, "tune_by", "search") == "finder"


@dataclass(frozen=True)
class Pair:
    """One problem x optimiser of the protocol, with its search space."""

    problem: Any  # lab.problems.Problem
    optimizer: str
    space: SearchSpace

    @property
    def study_name(self) -> str:
        return f"{NAME}:{self.problem.name}:{self.optimizer}"

    @property
    def monitor(self) -> str:
        return f"val_{self.problem.monitor}"


@dataclass(frozen=True)
class Settings:
    """What the protocol runs: the pairs, the budget and the protocol's settings."""

    pairs: tuple[Pair, ...]
    method: str
    budget: int | None
    seeds: int
    epochs: int | None
    batch_size: int | None
    prune: str | None
    storage: str | None
    tensorboard: bool = True
    progress: bool = True
    jobs: int = 1
    target: float | None = None
    vectorize: str = "auto"  # --vectorize (experiments.grid): how a study's trials train together

    def study_attributes(self, pair: Pair) -> dict[str, Any]:
        """What a study must agree on with every process that joins it."""
        return {"budget": self.budget, "search_space": space_to_dict(pair.space), "epochs": self.epochs,
                "batch_size": self.batch_size, "prune": self.prune, "sampler": sampler_description(),
                "trial_seed": TRIAL_SEED, "protocol": "held_out"}


def sampler_description() -> str:
    return f"QMCSampler(qmc_type='sobol', scramble=True, seed={SAMPLER_SEED})"


def check_settings(args: argparse.Namespace, problems: Sequence, optimizers: Sequence[str], seeds: int) -> Settings:
    """The fair protocol's settings from the command line; ``UsageError`` on bad input."""
    if args.tune_by == "finder":
        if args.tune is not None:
            raise cli.UsageError("--tune-by finder takes no budget: drop --tune (or use --tune-by search)")
        if args.prune is not None:
            raise cli.UsageError("--prune prunes the trials of a search; --tune-by finder has none")
    elif args.tune < 1:
        raise cli.UsageError(f"--tune: the budget must be at least 1 trial per optimizer, got {args.tune}")
    if getattr(args, "strategy", "none") != "none":
        raise cli.UsageError("--tune and --tune-by train every trial on one device; drop --strategy")
    overrides = None
    if args.search_space is not None:
        try:
            overrides = load_search_spaces(args.search_space)
        except ValueError as error:
            raise cli.UsageError(f"--search-space {error}") from None
    pairs = []
    for problem in problems:
        for optimizer in optimizers:
            try:
                space = space_for(optimizer, overrides)
            except ValueError as error:
                raise cli.UsageError(f"--search-space: {error}") from None
            if args.tune_by == "finder" and not any(d.name == "learning_rate" and d.scale == "log" for d in space):
                raise cli.UsageError(f"--tune-by finder: {optimizer} has no log-scale learning_rate in its search space")
            pairs.append(Pair(problem, optimizer, space))
    return Settings(tuple(pairs), args.tune_by, args.tune, seeds, args.epochs, args.batch_size, args.prune,
                    args.storage, not args.no_tensorboard, not args.no_progress, args.jobs, args.target,
                    getattr(args, "vectorize", "auto"))
