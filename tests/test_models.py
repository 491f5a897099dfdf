import numpy as np
import pytest

from lab import models

BUILDERS = [models.mnist_mlp, models.mnist_cnn, models.moons_net, models.linear_regression]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_same_seed_gives_identical_weights(build):
    first = [w.copy() for w in build(seed=3).get_weights()]
    np.random.seed(999)  # global state must not matter
    second = build(seed=3).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    third = build(seed=4).get_weights()
    assert not np.array_equal(first[0], third[0])


@pytest.mark.backend_agnostic
def test_architectures_match_the_notebooks():
    mlp = models.mnist_mlp()
    assert [w.shape for w in mlp.get_weights()] == [(784, 128), (128,), (128, 10), (10,)]
    moons = models.moons_net()
    assert [w.shape for w in moons.get_weights()] == [(2, 16), (16,), (16, 8), (8,), (8, 2), (2,)]
    assert models.mnist_cnn().output_shape == (None, 10)
    assert models.linear_regression().count_params() == 2
