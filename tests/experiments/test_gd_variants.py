"""experiments.gd_variants: batch / stochastic / mini-batch GD through model.fit recover w and b."""

import numpy as np
import pandas as pd
import pytest

from experiments import gd_variants
from experiments.cli import run_main
from lab import datasets


def numpy_batch_gd(x, y, w, b, learning_rate, epochs):
    """Full-batch gradient descent on the MSE of y = w x + b, as in the notebooks (float64)."""
    path = [(w, b)]
    for _ in range(epochs):
        error = w * x + b - y
        w, b = w - learning_rate * 2 * np.mean(error * x), b - learning_rate * 2 * np.mean(error)
        path.append((w, b))
    return np.array(path)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gd")
    with pytest.raises(SystemExit) as exit_info:
        run_main(gd_variants.main, ["--quick", "--out", str(out)])
    assert exit_info.value.code == 0
    return out


@pytest.mark.slow
def test_every_variant_recovers_w_and_b_within_0_1(quick_run):
    table = pd.read_csv(quick_run / "parameters.csv")
    assert len(table) == 6 and set(table["variant"]) == {"batch", "stochastic", "mini-batch"}
    assert set(table["batch_size"]) == {100, 1, 16}
    assert (abs(table["w"] - table["true_w"]) < 0.1).all(), table
    assert (abs(table["b"] - table["true_b"]) < 0.1).all(), table
    # and the least-squares solution is what they approach: within 0.06 of it for every variant
    assert (abs(table["w"] - table["least_squares_w"]) < 0.06).all()
    assert (abs(table["b"] - table["least_squares_b"]) < 0.06).all()


@pytest.mark.slow
def test_batch_variant_is_exactly_full_batch_gradient_descent(quick_run):
    history = pd.read_csv(quick_run / "history.csv")
    for dataset, data in (("regression_000", datasets.regression_000()), ("regression_001", datasets.regression_001())):
        rows = history[(history["dataset"] == dataset) & (history["variant"] == "batch")].sort_values("epoch")
        x, y = data.x[:, 0].astype(np.float64), data.y.astype(np.float64)
        expected = numpy_batch_gd(x, y, rows["w"].iloc[0], rows["b"].iloc[0], 0.1, len(rows) - 1)
        np.testing.assert_allclose(rows[["w", "b"]].to_numpy(), expected, atol=1e-4, err_msg=dataset)
        # the recorded loss is the MSE on all data at the recorded parameters
        np.testing.assert_allclose(rows["loss"], [np.mean((w * x + b - y) ** 2) for w, b in expected], rtol=1e-4)


@pytest.mark.slow
def test_outputs_written(quick_run):
    for name in ("history.csv", "parameters.csv", "parameters.md", "loss_curves.png", "parameters.png"):
        assert (quick_run / name).stat().st_size > 0, name
    assert any((quick_run / "tensorboard" / "regression_000" / "stochastic").rglob("events.out.tfevents.*"))
