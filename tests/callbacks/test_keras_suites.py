"""Keras's own test modules for ReduceLROnPlateau and EarlyStopping, run on the lab's classes.

Each module is loaded from the installed Keras package as a fresh module whose ``callbacks``
global is Keras's callbacks namespace with the one class rebound to the lab's; its test cases then
run unchanged. The one expected difference is on purpose: the lab's ReduceLROnPlateau accepts a
learning-rate schedule (it lowers a scale on top of it), where Keras raises.
"""

from __future__ import annotations

import importlib.util
import types
import unittest
from pathlib import Path

import keras
import pytest

import callbacks as lab_callbacks

pytestmark = pytest.mark.backend_agnostic

KERAS_TESTS = Path(keras.__file__).parent / "src" / "callbacks"
DIFFERENT_ON_PURPOSE = {"ReduceLROnPlateauTest.test_throws_when_optimizer_has_schedule"}


def keras_suite(module_file: str, class_name: str) -> list[unittest.TestCase]:
    from keras.src import callbacks as keras_callbacks

    spec = importlib.util.spec_from_file_location(f"lab_rebound_{class_name}", KERAS_TESTS / module_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebound = types.SimpleNamespace(**vars(keras_callbacks))
    setattr(rebound, class_name, getattr(lab_callbacks, class_name))
    module.callbacks = rebound
    loader = unittest.defaultTestLoader
    return [test for case in vars(module).values()
            if isinstance(case, type) and issubclass(case, unittest.TestCase)
            for test in loader.loadTestsFromTestCase(case)]


SUITES = {"ReduceLROnPlateau": "reduce_lr_on_plateau_test.py", "EarlyStopping": "early_stopping_test.py"}
CASES = [(name, test) for name, module_file in SUITES.items() for test in keras_suite(module_file, name)]


@pytest.mark.parametrize("name, test", CASES, ids=[test.id().split(".", 1)[1] for _, test in CASES])
def test_keras_test_case_passes_with_the_lab_class(name, test):
    case_id = test.id().split(".", 1)[1]
    result = unittest.TestResult()
    test.run(result)
    problems = [text for _, text in result.errors + result.failures]
    if case_id in DIFFERENT_ON_PURPOSE:
        assert problems and not result.skipped, "the lab accepts a schedule here; Keras raises"
        return
    if result.skipped:
        pytest.skip(result.skipped[0][1])
    assert not problems, problems[0]


def test_the_suites_are_found():
    assert len(CASES) >= 12
    assert any(test.id().endswith("test_throws_when_optimizer_has_schedule") for _, test in CASES)
