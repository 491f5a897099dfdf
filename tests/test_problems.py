"""lab.problems: the registry, import paths, the validation split and the two protocols."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from lab import datasets
from lab.problems import PROBLEMS, Problem, protocol_view, resolve

pytestmark = pytest.mark.backend_agnostic
ROOT = Path(__file__).resolve().parents[1]


def test_the_suite_has_the_documented_problems_each_described():
    assert set(PROBLEMS) >= {"moons", "mnist_mlp", "mnist_cnn", "digits", "mnist_autoencoder", "noisy_quadratic"}
    for name, problem in PROBLEMS.items():
        assert problem.name == name and problem.description
    assert PROBLEMS["mnist_autoencoder"].metrics == () and PROBLEMS["mnist_autoencoder"].monitor == "loss"
    assert PROBLEMS["mnist_autoencoder"].higher_is_better is False
    # the notebooks' protocols, unchanged
    moons, mnist = PROBLEMS["moons"], PROBLEMS["mnist_mlp"]
    assert (moons.epochs, moons.batch_size, moons.learning_rate, moons.target) == (200, None, 0.01, 0.95)
    assert (mnist.epochs, mnist.batch_size, mnist.learning_rate, mnist.target) == (10, 32, None, 0.97)


def test_mnist_is_the_classic_50k_10k_10k_and_the_notebook_view_is_all_60k_in_order():
    split = PROBLEMS["mnist_mlp"].split()
    assert (len(split.x_train), len(split.x_val), len(split.x_test)) == (50_000, 10_000, 10_000)
    full = datasets.mnist_arrays()
    np.testing.assert_array_equal(split.x_val, full.x_train[50_000:])
    notebook = protocol_view(split, "notebook")
    np.testing.assert_array_equal(notebook.x_train, full.x_train)
    np.testing.assert_array_equal(notebook.y_train, full.y_train)
    np.testing.assert_array_equal(notebook.x_val, full.x_test)  # validated on the test set, as notebook 003
    held_out = protocol_view(split, "held_out")
    assert held_out.x_val is split.x_val and len(held_out.x_train) == 50_000


def test_moons_validates_on_a_fifth_of_its_training_part():
    split = PROBLEMS["moons"].split()
    assert (len(split.x_train), len(split.x_val), len(split.x_test)) == (640, 160, 200)
    original = datasets.load_moons()
    np.testing.assert_array_equal(protocol_view(split, "notebook").x_train, original.x_train)
    # the training part was shuffled by train_test_split: both classes in the validation part
    assert 0.35 < split.y_val.mean() < 0.65


def test_a_split_without_validation_gets_a_seeded_disjoint_fifth():
    x = np.arange(100, dtype=np.float32)[:, None]
    split = datasets.Split(x, np.arange(100), x[:10], np.arange(10))
    carved = split.carve_validation(0.2, seed=0)
    assert len(carved.x_val) == 20 and len(carved.x_train) == 80
    assert set(carved.x_val[:, 0]).isdisjoint(carved.x_train[:, 0])
    assert np.all(np.diff(carved.x_train[:, 0]) > 0)  # the rest keeps its order
    again = split.carve_validation(0.2, seed=0)
    np.testing.assert_array_equal(again.x_val, carved.x_val)
    assert not np.array_equal(split.carve_validation(0.2, seed=1).x_val, carved.x_val)
    assert carved.carve_validation(0.5) is carved  # a validation part is kept as it is
    own = Problem(name="own", data=lambda: split, model=lambda seed: None, loss="mse", epochs=1, batch_size=None)
    np.testing.assert_array_equal(own.split().x_val, carved.x_val)


def test_quick_versions_and_bad_problems():
    quick = PROBLEMS["mnist_mlp"].quick_version()
    assert quick.epochs == 1 and "6,000" in quick.description
    split = quick.split()
    assert (len(split.x_train), len(split.x_val), len(split.x_test)) == (5000, 1000, 1000)
    # the quick notebook view is the first 6000 training images, as before the validation split
    np.testing.assert_array_equal(protocol_view(split, "notebook").x_train, datasets.mnist_arrays(subset=6000).x_train)
    assert PROBLEMS["moons"].quick_version().epochs == 50
    base = dict(name="p", data=lambda: None, model=lambda seed: None, loss="mse", epochs=1, batch_size=None)
    for bad, message in [({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"metrics": "accuracy"}, "metrics"),
                         ({"data": 3}, "data must be callable"), ({"quick": {"loss": "x"}}, "quick overrides"),
                         ({"learning_rate": -1.0}, "learning_rate")]:
        with pytest.raises(ValueError, match=message):
            Problem(**{**base, **bad})
    with pytest.raises(TypeError, match="must return a lab.datasets.Split"):
        Problem(**base).split()


def test_resolve_names_and_import_paths_and_nothing_falls_through():
    assert resolve("moons") is PROBLEMS["moons"]
    with pytest.raises(ValueError, match="unknown problem 'moon'; valid problems: mnist_mlp, moons"):
        resolve("moon")
    with pytest.raises(ValueError, match="cannot import 'no_such_package.module'"):
        resolve("no_such_package.module:PROBLEM")
    with pytest.raises(ValueError, match="has no attribute 'NOPE'"):
        resolve("lab.problems:NOPE")
    with pytest.raises(ValueError, match="is a tuple, not a lab.problems.Problem"):
        resolve("lab.problems:PROTOCOLS")
    with pytest.raises(ValueError, match="unknown protocol"):
        protocol_view(PROBLEMS["moons"].split(), "test")


def test_noisy_quadratic_has_deepobs_spectrum_and_its_loss_is_the_quadratic():
    root = datasets.quadratic_hessian_sqrt(100)
    eigenvalues = np.sort(np.linalg.eigvalsh(root.T.astype(np.float64) @ root))
    assert ((eigenvalues[:90] >= -1e-5) & (eigenvalues[:90] <= 1 + 1e-5)).all()
    assert ((eigenvalues[90:] >= 30 - 1e-3) & (eigenvalues[90:] <= 60 + 1e-3)).all()
    model = PROBLEMS["noisy_quadratic"].model(0)
    split = PROBLEMS["noisy_quadratic"].split()
    x = split.x_train[:8]
    theta = np.ones(100)
    expected = np.mean([(theta - xi) @ (root.T.astype(np.float64) @ root) @ (theta - xi) for xi in x]) / 100
    residual = keras.ops.convert_to_numpy(model.predict(x, verbose=0))
    np.testing.assert_allclose(np.mean(residual.astype(np.float64) ** 2), expected, rtol=1e-4)


def test_importing_the_lab_never_changes_the_backend():
    script = ("import os; import experiments.compare_optimizers, experiments.lr_finder, experiments.grid, lab.problems; "
              "print(os.environ.get('KERAS_BACKEND', 'unset'))")
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "unset"


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_every_problem_pickles_with_its_quick_overrides(name):
    """A problem is data, so it travels to --jobs worker processes."""
    problem = PROBLEMS[name]
    copy = pickle.loads(pickle.dumps(problem))
    # functools.partial has no equality: the data loaders compare by what they call (the grid's
    # data cache keys them the same way)
    assert repr(copy) == repr(problem) and copy.model is problem.model
    assert repr(copy.quick_version()) == repr(problem.quick_version())
    with pytest.raises(TypeError):  # still read-only
        copy.quick["epochs"] = 1
