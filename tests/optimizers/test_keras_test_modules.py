"""Keras's own test module of every twin, run with the lab's class in place of the built-in.

For each twin, ``keras/src/optimizers/<module>_test.py`` (shipped with Keras) is executed into a
fresh module object -- not the one in ``sys.modules``, which stays untouched -- and that module's
global of the optimiser's name (``SGD`` in ``sgd_test``, bound by its ``from ... import SGD``) is
rebound to the lab class. The test methods look the name up when they run, so every optimiser
they construct is the lab's. Each method of each ``TestCase`` becomes one pytest test, run
through ``TestCase.debug()`` (setUp, the method, tearDown and cleanups, exceptions propagated).

The pytest marks Keras puts on its methods are kept: ``skipif`` as is, and Keras's own
``requires_trainable_backend`` as the skip Keras's conftest makes of it (on the numpy backend), so
a test that needs what this backend lacks is reported as skipped with Keras's reason. A mark
this file does not know fails the collection rather than being dropped.

``EXPECTED_DIFFERENCES`` lists the Keras tests that fail on purpose (strict xfail: each must keep
failing), each with the reason; the lab class's docstring says the same.
"""

from __future__ import annotations

import importlib.util
import types
import unittest
from typing import Any

import keras
import pytest

from lab import optimizers

pytestmark = pytest.mark.backend_agnostic

# Keras's test module (keras.src.optimizers.<name>_test) -> the lab class it is run against; the
# lab class has the Keras class's name, which is the global the module is rebound at.
KERAS_TEST_MODULES: dict[str, type[keras.optimizers.Optimizer]] = {
    "sgd": optimizers.SGD,
    "adagrad": optimizers.Adagrad,
    "rmsprop": optimizers.RMSprop,
    "adam": optimizers.Adam,
    "adamw": optimizers.AdamW,
    "nadam": optimizers.Nadam,
    "lion": optimizers.Lion,
    "adadelta": optimizers.Adadelta,
    "adamax": optimizers.Adamax,
    "ftrl": optimizers.Ftrl,
    "lamb": optimizers.Lamb,
    "adafactor": optimizers.Adafactor,
    "muon": optimizers.Muon,
    "schedule_free_adamw": optimizers.ScheduleFreeAdamW,
}

EXPECTED_DIFFERENCES: dict[str, str] = {
    "sgd:SGDTest.test_invalid_momentum": (
        "Keras accepts momentum in [0, 1], the lab in [0, 1): with β = 1 the velocity never forgets a "
        "gradient; the lab's error names its range, [0, 1), which Keras's pattern '[0, 1]' does not match"
    ),
    "lion:LionTest.test_invalid_beta_1": (
        "Keras requires β₁ in (0, 1], the lab [0, 1): β₁ = 0 is signSGD, a variant the lab allows on "
        "purpose, and β₁ = 1 would drop the current gradient from the update direction"
    ),
}


def load_with_lab_class(module: str, lab_class: type) -> types.ModuleType:
    """Execute Keras's ``<module>_test.py`` into a fresh module whose optimiser name is ``lab_class``."""
    spec = importlib.util.find_spec(f"keras.src.optimizers.{module}_test")
    assert spec is not None and spec.loader is not None, f"Keras ships no {module}_test"
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    name = lab_class.__name__
    assert getattr(loaded, name) is getattr(keras.optimizers, name), f"{module}_test does not test keras.optimizers.{name}"
    setattr(loaded, name, lab_class)
    return loaded


def _marks(function: Any) -> list[Any]:
    """Keras's pytest marks on a test method, as marks this project's pytest knows."""
    marks = []
    for mark in getattr(function, "pytestmark", []):
        if mark.name == "skipif":
            marks.append(pytest.mark.skipif(*mark.args, **mark.kwargs))
        elif mark.name == "requires_trainable_backend":  # as Keras's conftest applies it
            marks.append(
                pytest.mark.skipif(keras.backend.backend() == "numpy", reason="Trainer not implemented for NumPy backend.")
            )
        else:
            raise ValueError(f"{function.__qualname__}: unknown Keras test mark {mark.name!r}; translate it here")
    return marks


def _cases() -> list[Any]:
    cases = []
    for module, lab_class in KERAS_TEST_MODULES.items():
        loaded = load_with_lab_class(module, lab_class)
        test_cases = [
            value
            for value in vars(loaded).values()
            if isinstance(value, type) and issubclass(value, unittest.TestCase) and value.__module__ == loaded.__name__
        ]
        assert test_cases, f"no TestCase in {module}_test"
        for test_case in test_cases:
            for method in unittest.TestLoader().getTestCaseNames(test_case):
                case_id = f"{module}:{test_case.__name__}.{method}"
                marks = _marks(getattr(test_case, method))
                if case_id in EXPECTED_DIFFERENCES:
                    marks.append(pytest.mark.xfail(strict=True, raises=AssertionError, reason=EXPECTED_DIFFERENCES[case_id]))
                cases.append(pytest.param(test_case, method, id=case_id, marks=marks))
    return cases


CASES = _cases()


def test_the_test_methods_see_the_lab_class():
    loaded = load_with_lab_class("adam", optimizers.Adam)
    assert loaded.AdamTest.test_single_step.__globals__["Adam"] is optimizers.Adam
    assert importlib.import_module("keras.src.optimizers.adam_test").Adam is keras.optimizers.Adam  # untouched


def test_every_expected_difference_names_a_keras_test():
    assert set(EXPECTED_DIFFERENCES) <= {case.id for case in CASES}


@pytest.mark.parametrize("test_case,method", CASES)
def test_keras_test_module(test_case: type[unittest.TestCase], method: str) -> None:
    test_case(method).debug()
