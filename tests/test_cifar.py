"""The CIFAR-10 problem: no package ships the data, so without the official archive every study
says how to supply it; with an archive that is not the official one the md5s refuse it."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from experiments import compare_optimizers
from experiments.cli import run_main
from lab import datasets, models
from lab.problems import PROBLEMS

pytestmark = pytest.mark.backend_agnostic


def _fake_archive(path: Path) -> Path:
    """An archive in the official layout whose batches hold zeros: readable, but not CIFAR-10."""
    with tarfile.open(path, "w:gz") as archive:
        for name in datasets.CIFAR10_MD5:
            data = pickle.dumps({b"data": np.zeros((10, 3072), np.uint8), b"labels": [0] * 10})
            info = tarfile.TarInfo(f"{datasets.CIFAR10_FOLDER}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_an_archive_that_is_not_the_official_one_fails_its_md5_naming_the_batch(tmp_path):
    archive = _fake_archive(tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(datasets.DatasetChecksumError, match="data_batch_1 .* fails the official checksum"):
        datasets.load_cifar10(archive)
    with pytest.raises(datasets.DatasetNotFoundError, match="no package on the registry ships CIFAR-10"):
        datasets.load_cifar10(tmp_path / "absent.tar.gz")


def test_a_study_without_cifar10_ends_with_one_error_line_naming_the_fetch_command(tmp_path, monkeypatch, capsys):
    # in this process: a data error ending a real process is checked once, for MNIST
    # (tests/experiments/test_compare_optimizers.py)
    monkeypatch.setenv(datasets.CIFAR10_ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(SystemExit) as exit_info:
        run_main(compare_optimizers.main, ["--quick", "--problems", "cifar10_resnet", "--out", str(tmp_path / "out"),
                                           "--no-progress", "--no-tensorboard"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert exit_info.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "cifar10_resnet" in lines[0] and "python -m lab.datasets fetch-cifar10 --archive FILE" in lines[0]


def test_the_resnet_builds_for_32x32_colour_images_and_a_few_steps_train_it():
    problem = PROBLEMS["cifar10_resnet"]
    model = problem.model(0)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 10)
    assert model.count_params() == 78_714
    # no real images here: a few steps on seeded noise with two learnable classes (bright or dark)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 256).astype(np.int32)
    x = (rng.random((256, 32, 32, 3)) * 0.5 + 0.5 * y[:, None, None, None]).astype(np.float32)
    model.compile(optimizer="adam", loss=problem.loss, metrics=list(problem.metrics))
    history = model.fit(x, y, batch_size=32, epochs=3, verbose=0, shuffle=False)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0] and history.history["accuracy"][-1] > 0.9
