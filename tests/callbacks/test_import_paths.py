"""``callbacks`` (the short path) and ``lab.callbacks`` (the one no user module can shadow) are
the same classes, and a project with a ``callbacks.py`` of its own still reaches the lab's."""

import subprocess
import sys
from pathlib import Path

import pytest

import callbacks
import lab.callbacks

pytestmark = pytest.mark.backend_agnostic

ROOT = Path(__file__).resolve().parents[2]


def test_short_path_re_exports_the_same_objects():
    assert set(callbacks.__all__) == set(lab.callbacks.__all__)
    for name in lab.callbacks.__all__:
        assert getattr(callbacks, name) is getattr(lab.callbacks, name)


def test_a_users_own_callbacks_module_does_not_hide_the_lab(tmp_path):
    (tmp_path / "callbacks.py").write_text("USERS_OWN = True\n")
    script = (
        "import callbacks, lab.callbacks, experiments.lr_finder\n"
        "assert callbacks.USERS_OWN\n"
        "print(lab.callbacks.find_lr.__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "KERAS_BACKEND": "jax", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "lab.callbacks.lr_finder"
