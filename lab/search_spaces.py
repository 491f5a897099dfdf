"""Search spaces of the fair protocol: which hyperparameters of each optimiser are tuned, over what.

A search space is data: for each hyperparameter (a constructor argument of the optimiser) a range
and a scale. Every optimiser's learning rate is log-uniform over 1e-5 to 10 (six decades: every
rate that trains the lab's problems lies inside it); beside it the one or two hyperparameters
that matter, where the optimiser has them:

    scale             the sampler draws u uniformly in [0, 1) and the value is
    "linear"          low + u (high - low)
    "log"             exp(log low + u (log high - log low))          (log-uniform)
    "log_one_minus"   1 - v with v log-uniform over [1 - high, 1 - low]   (for momentum and the
                      betas, whose effect lies in 1 - beta: 0.9, 0.99, 0.999 are evenly spaced)

``SEARCH_SPACES`` holds the registry names' spaces; an optimiser without one (``keras:NAME``,
``package.module:Class``) gets the learning rate alone. A spec's own overrides are fixed and not
tuned (``adam:beta_2=0.99`` tunes the learning rate and beta_1). A file (``--search-space FILE``,
JSON or TOML) replaces the space of every optimiser it names::

    {"adam": {"learning_rate": {"low": 1e-4, "high": 1.0, "scale": "log"},
              "beta_1": {"low": 0.5, "high": 0.99, "scale": "log_one_minus"}}}

    [sgd.learning_rate]
    low = 1e-3
    high = 3.0
    scale = "log"

The ranges follow Choi et al. (2019), "On empirical comparisons of optimizers for deep
learning" (arXiv:1910.05446), who tune 1 - momentum and 1 - beta on a log scale, and Schmidt et
al. (2021), "Descending through a crowded valley" (ICML), whose learning-rate range is as wide.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.checks import check_choice

SCALES = ("linear", "log", "log_one_minus")
LEARNING_RATE_RANGE = (1e-5, 10.0)


@dataclass(frozen=True)
class Dimension:
    """One tuned hyperparameter: ``low <= value <= high`` on ``scale`` (see the module).

    Args:
        name: the optimiser's constructor argument, e.g. ``"learning_rate"``.
        low, high: the range, ``low < high``; both > 0 for ``"log"``; ``high < 1`` for
            ``"log_one_minus"``.
        scale: ``"linear"``, ``"log"`` or ``"log_one_minus"``.
    """

    name: str
    low: float
    high: float
    scale: str = "log"

    def __post_init__(self) -> None:
        check_choice("scale", self.scale, SCALES)
        for side in ("low", "high"):
            value = getattr(self, side)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{self.name}: `{side}` must be a finite number, got {value!r}.")
            object.__setattr__(self, side, float(value))
        if not self.low < self.high:
            raise ValueError(f"{self.name}: empty range, `low` must be < `high`, got [{self.low:g}, {self.high:g}].")
        if self.scale == "log" and self.low <= 0:
            raise ValueError(f"{self.name}: a log scale needs `low` > 0, got {self.low:g}.")
        if self.scale == "log_one_minus" and self.high >= 1:
            raise ValueError(f"{self.name}: a log_one_minus scale needs `high` < 1, got {self.high:g}.")

    @property
    def sampled_name(self) -> str:
        """The name of what the sampler draws: ``one_minus_<name>`` on the ``log_one_minus`` scale."""
        return f"one_minus_{self.name}" if self.scale == "log_one_minus" else self.name

    def sampled_range(self) -> tuple[float, float, bool]:
        """``(low, high, log)`` of what the sampler draws (``optuna.distributions.FloatDistribution``)."""
        if self.scale == "log_one_minus":
            return 1.0 - self.high, 1.0 - self.low, True
        return self.low, self.high, self.scale == "log"

    def value(self, sampled: float) -> float:
        """The hyperparameter's value from the sampler's draw."""
        return 1.0 - sampled if self.scale == "log_one_minus" else float(sampled)

    def describe(self) -> str:
        scale = {"linear": "uniform", "log": "log-uniform", "log_one_minus": "1 - value log-uniform"}[self.scale]
        return f"[{self.low:g}, {self.high:g}], {scale}"

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "scale": self.scale}


SearchSpace = tuple[Dimension, ...]


def _rate() -> Dimension:
    return Dimension("learning_rate", *LEARNING_RATE_RANGE, scale="log")


_MOMENTUM = Dimension("momentum", 0.0, 0.999, scale="log_one_minus")
_BETA_1 = Dimension("beta_1", 0.5, 0.999, scale="log_one_minus")
_BETA_2 = Dimension("beta_2", 0.9, 0.9999, scale="log_one_minus")

SEARCH_SPACES: dict[str, SearchSpace] = {
    "sgd": (_rate(),),
    "momentum": (_rate(), _MOMENTUM),
    "nesterov": (_rate(), _MOMENTUM),
    "adagrad": (_rate(),),
    "rmsprop": (_rate(), Dimension("rho", 0.5, 0.999, scale="log_one_minus")),
    "adam": (_rate(), _BETA_1, _BETA_2),
    "adamw": (_rate(), _BETA_1, _BETA_2),
    "nadam": (_rate(), _BETA_1, _BETA_2),
    "lion": (_rate(), Dimension("beta_1", 0.5, 0.99, scale="log_one_minus")),
    "adadelta": (_rate(), Dimension("rho", 0.5, 0.999, scale="log_one_minus")),
    "adamax": (_rate(), _BETA_1, _BETA_2),
    "ftrl": (_rate(),),
    "lamb": (_rate(), _BETA_1, _BETA_2),
    "adafactor": (_rate(),),
    "muon": (_rate(), Dimension("momentum", 0.5, 0.999, scale="log_one_minus")),
    "schedule_free_adamw": (_rate(), _BETA_1, _BETA_2),
    "radam": (_rate(), _BETA_1, _BETA_2),
    "prodigy": (_rate(),),  # the rate multiplies Prodigy's own estimate of the step size
    "nadamw": (_rate(), _BETA_1, _BETA_2),
    "schedule_free_sgd": (_rate(), Dimension("momentum", 0.5, 0.999, scale="log_one_minus")),
}


def space_for(spec: str, overrides: Mapping[str, SearchSpace] | None = None) -> SearchSpace:
    """The space tuned for an optimiser spec: ``overrides``' (a file's) or the registry's for its
    name, else the learning rate alone; minus what the spec fixes. ``ValueError`` when nothing is
    left to tune or a hyperparameter is not an argument of the optimiser."""
    from lab.registry import _constructor_arguments, optimizer_class, parse_spec

    parsed = parse_spec(spec)
    space = (overrides or {}).get(parsed.name, SEARCH_SPACES.get(parsed.name, (_rate(),)))
    valid = _constructor_arguments(optimizer_class(parsed.name))
    unknown = [dimension.name for dimension in space if dimension.name not in valid]
    if unknown:
        raise ValueError(
            f"{parsed.name}: unknown hyperparameter {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(sorted(valid))}"
        )
    tuned = tuple(dimension for dimension in space if dimension.name not in parsed.overrides)
    if not tuned:
        raise ValueError(f"{spec}: every hyperparameter of its search space is fixed by the spec; nothing to tune")
    return tuned


def parse_search_spaces(data: Any, source: str = "search space") -> dict[str, SearchSpace]:
    """``{optimizer: {hyperparameter: {"low", "high", "scale"}}}`` -> spaces; ``ValueError``
    naming the optimiser and the hyperparameter otherwise (unknown optimisers and arguments are
    checked against the registry and the optimiser's constructor)."""
    from lab.registry import _constructor_arguments, optimizer_class

    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{source}: expected a table of optimizers, got {type(data).__name__}")
    spaces: dict[str, SearchSpace] = {}
    for optimizer, table in data.items():
        try:
            valid = _constructor_arguments(optimizer_class(str(optimizer)))
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
        if not isinstance(table, Mapping) or not table:
            raise ValueError(f"{source}: {optimizer}: expected a table of hyperparameters, got {table!r}")
        dimensions = []
        for name, bounds in table.items():
            if name not in valid:
                raise ValueError(
                    f"{source}: {optimizer}: unknown hyperparameter {name!r}; valid: {', '.join(sorted(valid))}"
                )
            if not isinstance(bounds, Mapping) or not {"low", "high"} <= set(bounds):
                raise ValueError(f"{source}: {optimizer}.{name}: expected low, high (and scale), got {bounds!r}")
            extra = set(bounds) - {"low", "high", "scale"}
            if extra:
                raise ValueError(f"{source}: {optimizer}.{name}: unknown keys {sorted(extra)}; valid: low, high, scale")
            try:
                dimensions.append(Dimension(name, bounds["low"], bounds["high"], bounds.get("scale", "log")))
            except ValueError as error:
                raise ValueError(f"{source}: {optimizer}.{error}") from None
        spaces[str(optimizer)] = tuple(dimensions)
    return spaces


def load_search_spaces(path: str | Path) -> dict[str, SearchSpace]:
    """A JSON (``.json``) or TOML (any other suffix) file of spaces; see ``parse_search_spaces``."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror or error}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text.decode())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {error}") from None
    return parse_search_spaces(data, str(path))


def space_to_dict(space: SearchSpace) -> dict[str, dict[str, Any]]:
    """A space as plain data (what ``parse_search_spaces`` reads back, and what a study records)."""
    return {dimension.name: dimension.to_dict() for dimension in space}
