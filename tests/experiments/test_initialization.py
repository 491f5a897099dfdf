"""experiments.initialization: activation statistics through deep ReLU / tanh stacks."""

import numpy as np
import pandas as pd
import pytest

from experiments import initialization
from experiments.cli import run_main


@pytest.fixture(scope="module")
def default_rows():
    return initialization.run(depth=10, width=256, batch=1000, seed=0)


def _at(rows, activation, name, layer):
    row = rows[(rows["activation"] == activation) & (rows["initializer"] == name) & (rows["layer"] == layer)]
    return row.iloc[0]


@pytest.mark.backend_agnostic
def test_statistics_match_a_numpy_forward_pass():
    rows = initialization.run(["relu", "tanh"], ["he_uniform"], depth=4, width=32, batch=128, seed=3)
    inputs = np.random.default_rng(3).standard_normal((128, 32)).astype(np.float32)
    for activation, function in (("relu", lambda z: np.maximum(z, 0.0)), ("tanh", np.tanh)):
        model = initialization.build_stack(activation, "he_uniform", depth=4, width=32, seed=3)
        values = inputs.astype(np.float64)
        for layer_index, layer in enumerate(model.layers, start=1):
            kernel, bias = (np.asarray(w, dtype=np.float64) for w in layer.get_weights())
            values = function(values @ kernel + bias)
            row = _at(rows, activation, "he_uniform", layer_index)
            assert row["mean"] == pytest.approx(values.mean(), rel=1e-4, abs=1e-6)
            assert row["std"] == pytest.approx(values.std(), rel=1e-4)
            assert row["fraction_zero"] == pytest.approx(np.mean(values == 0.0), abs=1e-3)


@pytest.mark.backend_agnostic
def test_he_keeps_relu_signal_and_glorot_halves_its_second_moment(default_rows):
    rows = default_rows

    def second_moment(name, layer):
        row = _at(rows, "relu", name, layer)
        return row["std"] ** 2 + row["mean"] ** 2

    # He: Var(w) = 2 / fan_in keeps E[a²] constant through ReLU layers (up to sampling noise)
    assert 0.5 < second_moment("he_normal", 10) / second_moment("he_normal", 1) < 2.0
    # Glorot on square layers: Var(w) = 1 / fan_in, E[a²] halves per layer -> 2^-9 over 9 layers
    ratio = second_moment("glorot_uniform", 10) / second_moment("glorot_uniform", 1)
    assert 2.0**-9 / 3 < ratio < 2.0**-9 * 3
    # the naive N(0, 0.01²): E[a²] shrinks by 0.01² · 256 / 2 = 0.0128 per layer -> vanishes
    assert _at(rows, "relu", "small_normal", 10)["std"] < 1e-6
    # about half of the ReLU outputs are exactly zero whatever the scale
    assert abs(_at(rows, "relu", "he_normal", 10)["fraction_zero"] - 0.5) < 0.1
    # tanh: Glorot keeps a spread well above the vanishing small normal and below He's
    glorot, he = _at(rows, "tanh", "glorot_normal", 10)["std"], _at(rows, "tanh", "he_normal", 10)["std"]
    assert 0.1 < glorot < he < 1.0


def test_quick_run_in_process(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        run_main(initialization.main, ["--quick", "--out", str(tmp_path)])
    assert exit_info.value.code == 0
    rows = pd.read_csv(tmp_path / "activations.csv")
    assert list(rows.columns) == [
        "activation",
        "initializer",
        "layer",
        "mean",
        "std",
        "fraction_zero",
        "fraction_saturated",
    ]
    assert len(rows) == len(initialization.ACTIVATIONS) * len(initialization.INITIALIZERS) * (6 + 1)
    assert (tmp_path / "activations.png").stat().st_size > 10_000


def test_bad_depth_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(initialization.main, ["--depth", "0", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
