"""A problem is data: the data set, the model, the loss and the protocol an optimiser is tried on.

    from lab.problems import Problem
    PROBLEM = Problem(name="cancer", data=load_cancer, model=cancer_mlp, loss="sparse_categorical_crossentropy",
                      metrics=("accuracy",), epochs=30, batch_size=32, target=0.95)

``python -m experiments.compare_optimizers --problems mymodule:PROBLEM`` then runs it like the
lab's own (``resolve`` turns a registered name or a ``package.module:ATTRIBUTE`` path into a
``Problem``). The suite (``PROBLEMS``):

    moons              notebook 004: make_moons 2-16-8-2, full batch, 200 epochs, every rate 0.01
    mnist_mlp          notebook 003: MNIST 784-128-10, batch 32, 10 epochs
    mnist_cnn          MNIST, two conv blocks, batch 32, 3 epochs
    digits             scikit-learn's 8x8 digits, 64-64-10 MLP, batch 32, 30 epochs
    mnist_autoencoder  MNIST dense autoencoder 784-128-32-128-784, mean squared error, no accuracy
    noisy_quadratic    DeepOBS's quadratic_deep: 100-d quadratic, fixed ill-conditioned spectrum,
                       noisy gradients (batch 32), loss only
    regression_000/001 the notebooks' y = 3x + 7 and y = 2x + 3, one linear unit, squared error
    cifar10_resnet     CIFAR-10 (the user's official archive: no package ships it), a small ResNet
    photo_tiles_resnet the same ResNet on colour images the registry does ship: which of seven
                       photographs (scikit-image's wheel) a 32x32 tile comes from
    shakespeare_transformer  a 2-block character transformer (width 64, context 64) on 38 plays
                       of Shakespeare, AdamW with linear warm-up + cosine, bits per character

**Validation.** ``data`` returns a ``lab.datasets.Split``; ``Problem.split()`` guarantees it has a
validation part (a seeded 20% of the training part is carved when the data has none). The lab's
MNIST problems use the classic 50,000 / 10,000 / 10,000 (the last 10,000 training images
validate); moons validates on the last 160 of its 800 training points (which ``train_test_split``
has already shuffled with seed 42, so they are a seeded random 20%). The Shakespeare corpus is
cut into contiguous blocks of 65,536 characters; of every ten consecutive blocks the fifth
validates, the tenth is test data and the other eight train (80 / 10 / 10; ``shakespeare_split``),
and no window crosses a block's end. Two protocols read it:

- ``"notebook"``: train on all the training data (training and validation parts, in their
  original order) and validate on the test set, as notebook 003 does;
- ``"held_out"``: train on the training part and validate on the validation part; the test set
  is read only to score a final model. Anything that selects (a best epoch, a tuned rate, early
  stopping) uses this one.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any

import keras
import numpy as np

from lab import datasets, metrics, models

PROTOCOLS = ("notebook", "held_out")
VALIDATION_FRACTION = 0.2
_QUICK_FIELDS = {"data", "epochs", "batch_size", "target", "learning_rate", "schedule", "description"}


@dataclass(frozen=True, kw_only=True)
class Problem:
    """A data set, a model, a loss and the protocol's defaults.

    Args:
        name: the label in results and folder names.
        data: a callable of no arguments returning a ``lab.datasets.Split``.
        model: a callable of the seed returning a new, uncompiled Keras model.
        loss: as for ``model.compile``.
        metrics: metric names as for ``model.compile``, or stateless metric functions (such as
            ``lab.metrics.bits_per_character``, named after the function); may be empty.
        epochs: epochs of the protocol, >= 1.
        batch_size: examples per step, >= 1; ``None`` for full batch.
        target: a value of the first metric (of the loss when there are no metrics) whose
            epochs and seconds to reach are reported; ``None``: none.
        higher_is_better: which way the target's quantity improves (``False`` for a loss).
        learning_rate: the rate every optimiser uses on this problem unless its spec sets one: a
            number or a ``LearningRateSchedule`` of the step (one fixed schedule).
        schedule: the protocol's schedule as a shape: ``schedule(peak, steps)`` returns the
            ``LearningRateSchedule`` of a run of ``steps`` steps peaking at ``peak`` (warm-up and
            cosine, say); ``None``: a constant rate. With a shape, the rate a run sets (the
            problem's ``learning_rate``, a spec's, a swept or a tuned one) is the schedule's peak,
            and the schedule spans the run's steps (``--epochs`` and ``--batch-size`` included),
            so a tuned trial follows the protocol's schedule rather than a constant rate.
            Schedule-free optimisers are the exception: they take the rate as it is (their design
            is a constant rate and a warm-up of their own, ``warmup_steps``). ``learning_rate``
            must then be a number.
        description: the protocol in words, for reports.
        quick: overrides for smoke runs (any of data, epochs, batch_size, target, learning_rate,
            schedule, description).
    """

    name: str
    data: Callable[[], datasets.Split]
    model: Callable[[int], keras.Model]
    loss: Any
    metrics: tuple[str | Callable, ...] = ()
    epochs: int
    batch_size: int | None
    target: float | None = None
    higher_is_better: bool = True
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None = None
    schedule: Callable[[float], keras.optimizers.schedules.LearningRateSchedule] | None = None
    description: str = ""
    quick: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        for attribute in ("data", "model"):
            if not callable(getattr(self, attribute)):
                raise ValueError(f"{attribute} must be callable, got {getattr(self, attribute)!r}")
        if isinstance(self.metrics, str) or not all(isinstance(m, str) or _is_metric_function(m) for m in self.metrics):
            raise ValueError(f"metrics must be a tuple of metric names or functions, got {self.metrics!r}")
        object.__setattr__(self, "metrics", tuple(self.metrics))
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ValueError(f"batch_size must be an integer >= 1 or None (full batch), got {self.batch_size!r}")
        if self.learning_rate is not None and not isinstance(
            self.learning_rate, keras.optimizers.schedules.LearningRateSchedule
        ) and not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0 or None, got {self.learning_rate!r}")
        if self.schedule is not None:
            fixed = isinstance(self.schedule, keras.optimizers.schedules.LearningRateSchedule)
            if fixed or not callable(self.schedule):
                raise ValueError(f"schedule must be a callable (peak, steps) returning a schedule (a shape), "
                                 f"got {self.schedule!r}; a fixed schedule goes in learning_rate")
            if not isinstance(self.learning_rate, (int, float)):
                raise ValueError(f"a problem with a schedule shape needs a number as learning_rate (its peak), "
                                 f"got {self.learning_rate!r}")
        unknown = set(self.quick) - _QUICK_FIELDS
        if unknown:
            raise ValueError(f"quick overrides {sorted(unknown)} are not allowed; allowed: {sorted(_QUICK_FIELDS)}")
        object.__setattr__(self, "quick", MappingProxyType(dict(self.quick)))

    # a read-only mapping does not pickle: ``quick`` travels as a dict (trials go to --jobs workers)
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "quick": dict(self.quick)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, quick=MappingProxyType(state["quick"]))

    @property
    def monitor(self) -> str:
        """The quantity the target refers to: the first metric, else the loss."""
        return metric_name(self.metrics[0]) if self.metrics else "loss"

    def quick_version(self) -> "Problem":
        """The problem with its ``quick`` overrides applied (the same problem when it has none)."""
        if not self.quick:
            return self
        return dataclasses.replace(self, **dict(self.quick), quick={})

    def __reduce__(self):
        # pickled for --jobs worker processes: ``quick`` is a read-only view, which pickle cannot
        # copy, so the problem travels as its fields and is rebuilt (and checked) on arrival
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return (_problem_from_fields, ({**values, "quick": dict(self.quick)},))

    def split(self) -> datasets.Split:
        """``data()`` with a validation part (carved, seeded, when the data has none)."""
        split = self.data()
        if not isinstance(split, datasets.Split):
            raise TypeError(f"problem {self.name!r}: data() must return a lab.datasets.Split, got {type(split).__name__}")
        return split.carve_validation(VALIDATION_FRACTION, seed=0)


def _is_metric_function(metric: Any) -> bool:
    return callable(metric) and not isinstance(metric, (type, keras.metrics.Metric)) and hasattr(metric, "__name__")


def metric_name(metric: str | Callable) -> str:
    """The column a metric gets in the rows: its name, or a metric function's ``__name__``."""
    return metric if isinstance(metric, str) else metric.__name__


def _problem_from_fields(values: dict) -> Problem:
    return Problem(**values)


def protocol_view(split: datasets.Split, protocol: str) -> datasets.Split:
    """The split a protocol trains on (``x_train``) and validates on (``x_val``); see the module."""
    if protocol == "held_out":
        return split
    if protocol == "notebook":
        x_train, y_train = split.all_training()
        return datasets.Split(x_train, y_train, split.x_test, split.y_test, split.x_test, split.y_test)
    raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")


# --- the suite --------------------------------------------------------------------------------

QUICK_MNIST_SUBSET = 6000  # --quick: 5,000 training, 1,000 validation and 1,000 test images
_MNIST_VALIDATION = 10_000


def mnist_split(flatten: bool = True, subset: int | None = None) -> datasets.Split:
    """MNIST with the classic validation part; ``subset`` keeps the first ``subset`` training
    images (the last sixth of them validate) and ``subset // 6`` test images."""
    split = datasets.mnist_arrays(flatten=flatten, subset=subset)
    return split.hold_out_last(_MNIST_VALIDATION if subset is None else max(1, subset // 6))


def mnist_images(subset: int | None = None) -> datasets.Split:
    """MNIST images as both input and target (the autoencoder's data)."""
    split = mnist_split(subset=subset)
    return datasets.Split(split.x_train, split.x_train, split.x_test, split.x_test, split.x_val, split.x_val)


def moons_split() -> datasets.Split:
    return datasets.load_moons().hold_out_last(160)


def regression_split(which: str) -> datasets.Split:
    """A notebook's regression data; it has no test set of its own, so its samples are the test
    set too (the regression studies measure the fit, not generalisation)."""
    data = {"000": datasets.regression_000, "001": datasets.regression_001}[which]()
    return datasets.Split(data.x, data.y, data.x, data.y)


# --- the character-level language model -----------------------------------------------------

SHAKESPEARE_BLOCK = 65_536  # characters per block of the split
SHAKESPEARE_CYCLE = 10  # of every 10 consecutive blocks:
SHAKESPEARE_VALIDATION_BLOCK = 4  # the 5th validates
SHAKESPEARE_TEST_BLOCK = 9  # the 10th is test data; the other 8 train
SHAKESPEARE_CONTEXT = 64
SHAKESPEARE_PARTS = ("train", "validation", "test")


def shakespeare_blocks(length: int, block: int = SHAKESPEARE_BLOCK) -> dict[str, list[tuple[int, int]]]:
    """The ``[start, stop)`` character ranges of each part of a corpus of ``length`` characters:
    contiguous blocks of ``block`` characters (the last one shorter), block ``k`` validating when
    ``k % 10 == 4``, test when ``k % 10 == 9``, training otherwise."""
    parts: dict[str, list[tuple[int, int]]] = {part: [] for part in SHAKESPEARE_PARTS}
    for k, start in enumerate(range(0, length, block)):
        part = {SHAKESPEARE_VALIDATION_BLOCK: "validation", SHAKESPEARE_TEST_BLOCK: "test"}.get(k % SHAKESPEARE_CYCLE, "train")
        parts[part].append((start, min(start + block, length)))
    return parts


def _evenly_spaced(x, y, count: int | None):
    """``count`` windows spread evenly over all of them (all when ``count`` is None or larger)."""
    if count is None or count >= len(x):
        return x, y
    keep = np.linspace(0, len(x) - 1, count).round().astype(np.int64)
    return x[keep], y[keep]


def shakespeare_split(
    context: int = SHAKESPEARE_CONTEXT, train_windows: int | None = None, validation_windows: int | None = None,
    test_windows: int | None = None, corpus: str | None = None,
) -> datasets.Split:
    """The Shakespeare corpus (``lab.datasets.load_shakespeare``) as next-character windows.

    Split by contiguous blocks (``shakespeare_blocks``: 80% train, 10% validation, 10% test, the
    validation and test blocks spread through the corpus); each block is cut into
    non-overlapping windows of ``context`` characters, inputs ``x[k]`` and targets ``y[k]`` (the
    same characters one later), none crossing a block's end, so no character of a test or
    validation block is ever a training input or target. The codes index the corpus's sorted 78
    distinct characters (``encode_characters``). ``train_windows`` etc. keep that many windows of
    a part, evenly spaced through it (all by default). int32 arrays of shape (windows, context).
    """
    text = datasets.load_shakespeare() if corpus is None else corpus
    codes = datasets.encode_characters(text).codes
    arrays = {}
    for part, count in zip(SHAKESPEARE_PARTS, (train_windows, validation_windows, test_windows)):
        windows = [datasets.character_windows(codes[start:stop], context) for start, stop in shakespeare_blocks(len(codes))[part]]
        x = np.concatenate([w[0] for w in windows])
        y = np.concatenate([w[1] for w in windows])
        arrays[part] = _evenly_spaced(x, y, count)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (arrays[part] for part in SHAKESPEARE_PARTS)
    return datasets.Split(x_train, y_train, x_test, y_test, x_val, y_val)


def shakespeare_model(seed: int = 0) -> keras.Model:
    """The problem's model: ``models.char_transformer`` over the corpus's 78 characters,
    context 64, width 64, 2 blocks of 4 heads (114,254 weights)."""
    return models.char_transformer(seed, vocabulary_size=78, context=SHAKESPEARE_CONTEXT, width=64, depth=2, heads=4)


def shakespeare_schedule(peak: float, steps: int, warmup_fraction: float = 0.05):
    """The reference recipe's rate: linear warm-up from 0 over ``warmup_fraction`` of the run's
    ``steps``, then cosine to 0 at its last step (``lab.schedules.WarmupCosine``): the
    problem's schedule shape."""
    from lab.schedules import WarmupCosine

    warmup = max(1, round(warmup_fraction * steps))
    return WarmupCosine(peak_learning_rate=peak, warmup_steps=warmup, decay_steps=steps - warmup)


SHAKESPEARE_TRAIN_WINDOWS = 16_384  # the default protocol: 1.05M training characters per epoch
SHAKESPEARE_EVAL_WINDOWS = 2_048  # validation and test windows scored per epoch
SHAKESPEARE_BATCH = 64
SHAKESPEARE_EPOCHS = 6
SHAKESPEARE_PEAK = 3e-3
QUICK_SHAKESPEARE_WINDOWS = (2_048, 256, 256)
QUICK_SHAKESPEARE_EPOCHS = 2
QUICK_SHAKESPEARE_BATCH = 32


# --- colour images: CIFAR-10 from its authors' archive ------------------------------------------

_CIFAR10_VALIDATION = 5_000


def cifar10_split(subset: int | None = None, test_subset: int | None = None) -> datasets.Split:
    """CIFAR-10 (``lab.datasets.load_cifar10``: the official archive, md5-checked) scaled to
    float32 in [0, 1], images (32, 32, 3); the last 5,000 of the 50,000 training images validate
    (45,000 / 5,000 / 10,000). ``subset`` keeps the first ``subset`` training images (the last
    tenth of them validate), ``test_subset`` the first ``test_subset`` test images. No package on
    the registry ships CIFAR-10, so the archive is the user's to supply (``python -m lab.datasets
    fetch-cifar10 --archive FILE``); without it this raises ``DatasetNotFoundError`` naming that
    command."""
    x_train, y_train, x_test, y_test = datasets.load_cifar10()
    validation = _CIFAR10_VALIDATION
    if subset is not None:
        x_train, y_train, validation = x_train[:subset], y_train[:subset], max(1, subset // 10)
    if test_subset is not None:
        x_test, y_test = x_test[:test_subset], y_test[:test_subset]
    scale = np.float32(255.0)
    split = datasets.Split((x_train / scale).astype(np.float32), y_train.astype(np.int32),
                           (x_test / scale).astype(np.float32), y_test.astype(np.int32))
    return split.hold_out_last(validation)


QUICK_CIFAR10_SUBSET = 2_000
CIFAR10_SUBSET = 20_000  # the default protocol: 18,000 training, 2,000 validation images
CIFAR10_EPOCHS = 6


# --- colour images the registry does ship: seven photographs cut into tiles --------------------

PHOTO_TILE = 32
PHOTO_TILES_PER_PHOTO = 400
QUICK_PHOTO_TILES_PER_PHOTO = 100
PHOTO_EPOCHS = 20
# a tile whose pixels spread less than this (of 255) is background, not the photograph: the
# black surround of the retina (363 of its tiles); every other photograph loses at most 13
_BLANK_SPREAD = 4.0


def photo_tiles(photo: np.ndarray, tile: int = PHOTO_TILE) -> np.ndarray:
    """The non-overlapping ``tile`` x ``tile`` squares of ``photo`` (height, width, channels),
    row by row from the top-left corner; what is left at the right and bottom edges is dropped."""
    rows, columns = photo.shape[0] // tile, photo.shape[1] // tile
    squares = photo[: rows * tile, : columns * tile].reshape(rows, tile, columns, tile, -1)
    return squares.swapaxes(1, 2).reshape(rows * columns, tile, tile, photo.shape[-1])


def photo_tiles_model(seed: int = 0) -> keras.Model:
    """The problem's model: ``models.cifar_resnet`` with a class per photograph (seven)."""
    return models.cifar_resnet(seed, classes=len(datasets.PHOTOS_SHA256))


def photo_tiles_split(per_photo: int = PHOTO_TILES_PER_PHOTO, photos: Mapping[str, np.ndarray] | None = None,
                      seed: int = 0) -> datasets.Split:
    """Colour-image classification from data the registry ships: which of seven photographs
    (``lab.datasets.load_photos``) a 32x32 tile comes from, class ``k`` the ``k``-th photograph.

    Each photograph is cut into non-overlapping tiles (``photo_tiles``), blank background tiles
    (pixel standard deviation under 4 of 255) dropped, and a seeded permutation keeps at most
    ``per_photo`` of them: its first tenth is test data, the second tenth validates, the rest
    trains (80 / 10 / 10 per class). The tiles do not overlap, so no pixel is in two parts. Pixels
    float32 in [0, 1]; each part's order is shuffled with ``seed``. This stands in for CIFAR-10,
    which no package on the registry ships (``cifar10_resnet``): real colour photographs, but a
    texture task (seven scenes), not object recognition.
    """
    photos = datasets.load_photos() if photos is None else photos
    rng = np.random.default_rng(seed)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"test": [], "val": [], "train": []}
    for label, photo in enumerate(photos.values()):
        tiles = photo_tiles(photo)
        tiles = tiles[tiles.reshape(len(tiles), -1).std(axis=1) >= _BLANK_SPREAD]
        kept = tiles[rng.permutation(len(tiles))[:per_photo]]
        tenth = max(1, len(kept) // 10)
        for part, chosen in zip(parts, (kept[:tenth], kept[tenth : 2 * tenth], kept[2 * tenth :])):
            parts[part].append((chosen, np.full(len(chosen), label, dtype=np.int32)))
    arrays = {}
    for part, pieces in parts.items():
        x, y = np.concatenate([x for x, _ in pieces]), np.concatenate([y for _, y in pieces])
        order = rng.permutation(len(x))
        arrays[part] = ((x[order] / np.float32(255.0)).astype(np.float32), y[order])
    return datasets.Split(*arrays["train"], *arrays["test"], *arrays["val"])


_CLASSIFICATION = {"loss": "sparse_categorical_crossentropy", "metrics": ("accuracy",)}

PROBLEMS: dict[str, Problem] = {
    problem.name: problem
    for problem in (
        Problem(
            name="mnist_mlp", data=mnist_split, model=models.mnist_mlp, **_CLASSIFICATION, epochs=10, batch_size=32,
            target=0.97, description="MNIST MLP 784-128-10, batch 32, 10 epochs (notebook 003)",
            quick={"data": partial(mnist_split, subset=QUICK_MNIST_SUBSET), "epochs": 1,
                   "description": "MNIST MLP 784-128-10 on a 6,000-image subset, 1 epoch (quick)"},
        ),
        Problem(
            name="moons", data=moons_split, model=models.moons_net, **_CLASSIFICATION, epochs=200, batch_size=None,
            target=0.95, learning_rate=0.01,
            description="make_moons 2-16-8-2, full batch, 200 epochs, every optimiser at 0.01 (notebook 004)",
            quick={"epochs": 50, "description": "make_moons 2-16-8-2, full batch, 50 epochs (quick)"},
        ),
        Problem(
            name="mnist_cnn", data=partial(mnist_split, flatten=False), model=models.mnist_cnn, **_CLASSIFICATION,
            epochs=3, batch_size=32, target=0.98, description="MNIST CNN, two conv blocks, batch 32, 3 epochs",
            quick={"data": partial(mnist_split, flatten=False, subset=QUICK_MNIST_SUBSET), "epochs": 1,
                   "description": "MNIST CNN on a 6,000-image subset, 1 epoch (quick)"},
        ),
        Problem(
            name="digits", data=datasets.load_digits, model=models.digits_mlp, **_CLASSIFICATION, epochs=30,
            batch_size=32, target=0.95,
            description="scikit-learn's 8x8 digits, MLP 64-64-10, batch 32, 30 epochs",
            quick={"epochs": 3, "description": "8x8 digits MLP, 3 epochs (quick)"},
        ),
        Problem(
            name="mnist_autoencoder", data=mnist_images, model=models.mnist_autoencoder, loss="mean_squared_error",
            epochs=5, batch_size=128, target=0.02, higher_is_better=False,
            description="MNIST dense autoencoder 784-128-32-128-784, mean squared error, batch 128, 5 epochs",
            quick={"data": partial(mnist_images, subset=QUICK_MNIST_SUBSET), "epochs": 1,
                   "description": "MNIST autoencoder on a 6,000-image subset, 1 epoch (quick)"},
        ),
        Problem(
            name="noisy_quadratic", data=datasets.noisy_quadratic, model=models.noisy_quadratic,
            loss="mean_squared_error", epochs=20, batch_size=32, target=0.5, higher_is_better=False,
            description="DeepOBS quadratic_deep: 100-d quadratic, 90% of eigenvalues in [0, 1], 10% in [30, 60], "
            "noisy gradients, batch 32, 20 epochs",
            quick={"epochs": 2, "description": "noisy quadratic, 2 epochs (quick)"},
        ),
        Problem(
            name="regression_000", data=partial(regression_split, "000"), model=models.linear_regression,
            loss="mean_squared_error", epochs=50, batch_size=None, learning_rate=0.01, higher_is_better=False,
            description="notebook 000: y = 3x + 7 + noise, one linear unit, squared error",
        ),
        Problem(
            name="regression_001", data=partial(regression_split, "001"), model=models.linear_regression,
            loss="mean_squared_error", epochs=50, batch_size=None, learning_rate=0.01, higher_is_better=False,
            description="notebook 001: y = 2x + 3 + noise, one linear unit, squared error",
        ),
        Problem(
            name="cifar10_resnet", data=partial(cifar10_split, subset=CIFAR10_SUBSET), model=models.cifar_resnet,
            **_CLASSIFICATION, epochs=CIFAR10_EPOCHS, batch_size=64,
            description=f"CIFAR-10 (official archive, md5-checked) on the first {CIFAR10_SUBSET:,} training images "
            f"(the last tenth validate), 10,000 test images, ResNet 16-32-64 with one residual block per stage, "
            f"batch 64, {CIFAR10_EPOCHS} epochs",
            quick={"data": partial(cifar10_split, subset=QUICK_CIFAR10_SUBSET, test_subset=QUICK_CIFAR10_SUBSET // 5),
                   "epochs": 1,
                   "description": f"CIFAR-10 ResNet on {QUICK_CIFAR10_SUBSET:,} images, 1 epoch (quick)"},
        ),
        Problem(
            name="photo_tiles_resnet", data=photo_tiles_split,
            model=photo_tiles_model, **_CLASSIFICATION,
            epochs=PHOTO_EPOCHS, batch_size=64, target=0.9,
            description=f"which of seven colour photographs (scikit-image's, checksum-verified) a 32x32 tile comes "
            f"from: up to {PHOTO_TILES_PER_PHOTO} tiles a photograph (80/10/10), ResNet 16-32-64, batch 64, "
            f"{PHOTO_EPOCHS} epochs",
            quick={"data": partial(photo_tiles_split, per_photo=QUICK_PHOTO_TILES_PER_PHOTO), "epochs": 2,
                   "description": f"photograph tiles ResNet on {QUICK_PHOTO_TILES_PER_PHOTO} tiles a photograph, "
                   "2 epochs (quick)"},
        ),
        Problem(
            name="shakespeare_transformer",
            data=partial(shakespeare_split, train_windows=SHAKESPEARE_TRAIN_WINDOWS,
                         validation_windows=SHAKESPEARE_EVAL_WINDOWS, test_windows=SHAKESPEARE_EVAL_WINDOWS),
            model=shakespeare_model, loss="sparse_categorical_crossentropy",
            metrics=(metrics.bits_per_character, "accuracy"), epochs=SHAKESPEARE_EPOCHS, batch_size=SHAKESPEARE_BATCH,
            target=2.5, higher_is_better=False,
            learning_rate=SHAKESPEARE_PEAK,
            schedule=shakespeare_schedule,
            description="character transformer (2 pre-norm blocks, width 64, 4 heads, context 64) on Shakespeare's "
            "plays split by contiguous 65,536-character blocks (80/10/10), 16,384 training windows, batch 64, "
            "6 epochs, warm-up (5%) + cosine from 3e-3, bits per character",
            quick={"data": partial(shakespeare_split, train_windows=QUICK_SHAKESPEARE_WINDOWS[0],
                                   validation_windows=QUICK_SHAKESPEARE_WINDOWS[1],
                                   test_windows=QUICK_SHAKESPEARE_WINDOWS[2]),
                   "epochs": QUICK_SHAKESPEARE_EPOCHS, "batch_size": QUICK_SHAKESPEARE_BATCH, "target": 4.1,
                   "description": "character transformer on 2,048 Shakespeare windows, batch 32, 2 epochs, "
                   "warm-up + cosine from 3e-3 (quick)"},
        ),
    )
}


def resolve(name: str | Problem) -> Problem:
    """A registered name or ``package.module:ATTRIBUTE`` -> its ``Problem``; ``ValueError``
    naming the valid choices otherwise. Nothing falls through to another problem."""
    if isinstance(name, Problem):
        return name
    text = str(name).strip()
    if ":" not in text:
        if text not in PROBLEMS:
            raise ValueError(
                f"unknown problem {text!r}; valid problems: {', '.join(PROBLEMS)}, "
                "or package.module:ATTRIBUTE naming a lab.problems.Problem"
            )
        return PROBLEMS[text]
    module_name, _, attribute = text.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"problem {text!r}: cannot import {module_name!r}: {error}") from None
    try:
        problem = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"problem {text!r}: module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(problem, Problem):
        raise ValueError(f"problem {text!r} is a {type(problem).__name__}, not a lab.problems.Problem")
    return problem
