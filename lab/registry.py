"""Names the experiments use -> optimiser factories, with the notebooks' defaults.

A *spec* is a registry name with optional overrides of constructor arguments::

    "adam"                               Adam(learning_rate=0.001)
    "adam:learning_rate=3e-4"            Adam(learning_rate=0.0003)
    "momentum:momentum=0.95,nesterov=true"

Values are parsed as Python literals (numbers, ``true``/``false``, ``none``, quoted strings);
anything else is kept as a bare string (``momentum_style=heavy_ball``).

Beside the lab's names, a spec may name any Keras optimiser by import path, with the same
overrides: ``keras:NAME`` is ``keras.optimizers.NAME`` (``keras:Muon``, ``keras:Adam:beta_1=0.8``)
and ``package.module:Class`` a user's own ``keras.optimizers.Optimizer`` subclass; these take
their class's own defaults.

Defaults follow notebook 003: SGD 0.01, momentum = SGD 0.01 with 0.9, RMSprop 0.001,
Adam 0.001. The others use Keras's defaults (AdamW, Nadam 0.001; Adagrad 0.001; Lion 0.001;
Adadelta, Adamax, Ftrl, Lamb, Adafactor, Muon 0.001; ScheduleFreeAdamW 0.0025).
"""

from __future__ import annotations

import ast
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import keras


@dataclass(frozen=True)
class OptimizerEntry:
    """A registry entry: the lab class and the arguments that define this name."""

    class_name: str
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""

    @property
    def cls(self) -> type[keras.optimizers.Optimizer]:
        from lab import optimizers

        return getattr(optimizers, self.class_name)


OPTIMIZERS: dict[str, OptimizerEntry] = {
    "sgd": OptimizerEntry("SGD", {"learning_rate": 0.01}, "plain SGD, lr 0.01"),
    "momentum": OptimizerEntry("SGD", {"learning_rate": 0.01, "momentum": 0.9}, "SGD + momentum 0.9, lr 0.01"),
    "nesterov": OptimizerEntry(
        "SGD", {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True}, "SGD + Nesterov momentum 0.9, lr 0.01"
    ),
    "adagrad": OptimizerEntry("Adagrad", {"learning_rate": 0.001}, "AdaGrad, lr 0.001"),
    "rmsprop": OptimizerEntry("RMSprop", {"learning_rate": 0.001}, "RMSprop, lr 0.001"),
    "adam": OptimizerEntry("Adam", {"learning_rate": 0.001}, "Adam, lr 0.001"),
    "adamw": OptimizerEntry("AdamW", {"learning_rate": 0.001}, "AdamW, lr 0.001, weight decay 0.004"),
    "nadam": OptimizerEntry("Nadam", {"learning_rate": 0.001}, "Nadam, lr 0.001"),
    "lion": OptimizerEntry("Lion", {"learning_rate": 0.001}, "Lion, lr 0.001"),
}

# The other Keras built-ins' twins, with Keras's defaults.
OPTIMIZERS.update(
    {
        "adadelta": OptimizerEntry("Adadelta", {"learning_rate": 0.001}, "Adadelta, lr 0.001, rho 0.95"),
        "adamax": OptimizerEntry("Adamax", {"learning_rate": 0.001}, "Adamax, lr 0.001"),
        "ftrl": OptimizerEntry("Ftrl", {"learning_rate": 0.001}, "FTRL-Proximal, lr 0.001, power -0.5"),
        "lamb": OptimizerEntry("Lamb", {"learning_rate": 0.001}, "LAMB, lr 0.001"),
        "adafactor": OptimizerEntry("Adafactor", {"learning_rate": 0.001}, "Adafactor, relative step min(0.001, 1/sqrt(t))"),
        "muon": OptimizerEntry("Muon", {"learning_rate": 0.001}, "Muon (AdamW for non-matrices), lr 0.001, momentum 0.95"),
        "schedule_free_adamw": OptimizerEntry(
            "ScheduleFreeAdamW", {"learning_rate": 0.0025}, "schedule-free AdamW, lr 0.0025 (evaluate the average x)"
        ),
    }
)

# Beyond Keras, with their papers' (and reference implementations') defaults.
OPTIMIZERS.update(
    {
        "radam": OptimizerEntry("RAdam", {"learning_rate": 0.001}, "RAdam, lr 0.001"),
        "prodigy": OptimizerEntry("Prodigy", {"learning_rate": 1.0}, "Prodigy, lr 1 (a multiplier of its estimated step)"),
        "nadamw": OptimizerEntry("NAdamW", {"learning_rate": 0.001}, "NAdamW (AlgoPerf), lr 0.001, weight decay 0.01"),
        "schedule_free_sgd": OptimizerEntry(
            "ScheduleFreeSGD", {"learning_rate": 1.0}, "Schedule-Free SGD, lr 1, momentum 0.9"
        ),
    }
)


def _is_import_path(name: str) -> bool:
    return name.startswith("keras:") or ":" in name


def optimizer_class(name: str) -> type[keras.optimizers.Optimizer]:
    """The class of a registry name, ``keras:NAME`` or ``package.module:Class``; ``ValueError``
    saying what is wrong otherwise."""
    if not _is_import_path(name):
        if name not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {name!r}; valid names: {', '.join(OPTIMIZERS)}, "
                "keras:NAME (a Keras built-in) or package.module:Class"
            )
        return OPTIMIZERS[name].cls
    module_name, _, attribute = name.partition(":")
    if module_name == "keras":
        module_name = "keras.optimizers"
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"optimizer {name!r}: cannot import {module_name!r}: {error}") from None
    cls = getattr(module, attribute, None)
    if cls is None:
        raise ValueError(f"optimizer {name!r}: {module_name} has no attribute {attribute!r}")
    if not (isinstance(cls, type) and issubclass(cls, keras.optimizers.Optimizer)):
        raise ValueError(f"optimizer {name!r} is not a keras.optimizers.Optimizer subclass")
    return cls


@dataclass(frozen=True)
class OptimizerSpec:
    """A parsed spec: the registry name (or import path) and the overrides given with it."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The name as written, e.g. ``adam:learning_rate=0.0003`` (stable for CSV keys)."""
        if not self.overrides:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v!r}".replace("'", "") for k, v in sorted(self.overrides.items()))

    def arguments(self) -> dict[str, Any]:
        """The constructor arguments: the entry's defaults updated by the overrides."""
        defaults = {} if _is_import_path(self.name) else OPTIMIZERS[self.name].defaults
        arguments = {**defaults, **self.overrides}
        rate = arguments.get("learning_rate")
        if isinstance(rate, int) and not isinstance(rate, bool):
            arguments["learning_rate"] = float(rate)  # "learning_rate=10": Keras accepts only floats
        return arguments

    def build(self, **extra: Any) -> keras.optimizers.Optimizer:
        """A fresh optimiser; ``extra`` (e.g. a schedule as ``learning_rate``) wins over both."""
        return optimizer_class(self.name)(**{**self.arguments(), **extra})


def _parse_value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def parse_spec(spec: str) -> OptimizerSpec:
    """Parse ``name[:key=value,...]`` (``name`` may be ``keras:NAME`` or ``package.module:Class``);
    ``ValueError`` names what is wrong and what is valid."""
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    first_override = rest.split(":")[0]
    if name == "keras" or "." in name or (name.lower() not in OPTIMIZERS and rest and "=" not in first_override):
        attribute, _, rest = rest.partition(":")
        name = f"{name}:{attribute.strip()}"
    else:
        name = name.lower()
    cls = optimizer_class(name)
    overrides: dict[str, Any] = {}
    if rest.strip():
        for item in rest.split(","):
            key, equals, value = item.partition("=")
            key = key.strip()
            if not equals or not key or not value.strip():
                raise ValueError(f"malformed override {item!r} in {spec!r}; expected key=value, e.g. adam:learning_rate=3e-4")
            overrides[key] = _parse_value(value)
    valid = _constructor_arguments(cls)
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(
            f"unknown argument {', '.join(map(repr, unknown))} for {name} ({cls.__name__}); "
            f"valid arguments: {', '.join(sorted(valid))}"
        )
    parsed = OptimizerSpec(name, overrides)
    parsed.build()  # the optimiser's own checks reject bad values (ValueError) now, not mid-run
    return parsed


def _constructor_arguments(cls: type) -> set[str]:
    names = set()
    for klass in cls.__mro__:
        if klass is object:
            continue
        signature = inspect.signature(klass.__init__)
        names |= {p.name for p in signature.parameters.values() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            break
    names.discard("self")
    names.discard("kwargs")
    return names


def build_optimizer(spec: str | OptimizerSpec, **extra: Any) -> keras.optimizers.Optimizer:
    """``build_optimizer("adam:learning_rate=3e-4")`` -> a fresh ``lab.optimizers.Adam``."""
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    return parsed.build(**extra)
