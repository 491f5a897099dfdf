"""experiments.gd_variants: batch / stochastic / mini-batch GD through model.fit recover w and b."""

import keras
import numpy as np
import pandas as pd
import pytest

from experiments import gd_variants
from experiments.cli import run_main
from lab import datasets, models

pytestmark = pytest.mark.xdist_group("gd_variants_quick_run")


def numpy_batch_gd(x, y, w, b, learning_rate, epochs):
    """Full-batch gradient descent on the MSE of y = w x + b, as in the notebooks (float64)."""
    path = [(w, b)]
    for _ in range(epochs):
        error = w * x + b - y
        w, b = w - learning_rate * 2 * np.mean(error * x), b - learning_rate * 2 * np.mean(error)
        path.append((w, b))
    return np.array(path)


# session, on one worker: a module fixture is made again on every worker its module's tests reach
@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gd")
    with pytest.raises(SystemExit) as exit_info:
        run_main(gd_variants.main, ["--quick", "--no-progress", "--out", str(out)])
    assert exit_info.value.code == 0
    return out


@pytest.mark.slow
def test_every_variant_recovers_w_and_b(quick_run):
    table = pd.read_csv(quick_run / "parameters.csv")
    assert len(table) == 6 and set(table["variant"]) == {"batch", "stochastic", "mini-batch"}
    assert set(table["batch_size"]) == {100, 1, 16}
    # a constant-rate stochastic step ends in a noise ball around the least-squares fit: about
    # +-0.15 for mini-batches at 0.1 (the last batch of an epoch holds 4 examples)
    for reference in ("true", "least_squares"):
        assert (abs(table["w"] - table[f"{reference}_w"]) < 0.2).all(), table
        assert (abs(table["b"] - table[f"{reference}_b"]) < 0.2).all(), table
    # batch GD has no noise: within 0.06 of least squares
    batch = table[table["variant"] == "batch"]
    assert (abs(batch["w"] - batch["least_squares_w"]) < 0.06).all()
    assert (abs(batch["b"] - batch["least_squares_b"]) < 0.06).all()


@pytest.mark.slow
def test_the_stochastic_iterates_scatter_around_least_squares(quick_run):
    """Over the last half of regression_000's 30 epochs the epoch-end w and b of the stochastic
    variants average to the least-squares fit within 0.03: the noise ball's centre."""
    results = pd.read_csv(quick_run / "results.csv")
    table = pd.read_csv(quick_run / "parameters.csv").set_index(["problem", "variant"])
    for variant in ("stochastic", "mini-batch"):
        rows = results[(results["problem"] == "regression_000") & (results["variant"] == variant)]
        assert len(rows) == 30
        late = rows[rows["epoch"] > 15]
        fit = table.loc[("regression_000", variant)]
        assert abs(late["w"].mean() - fit["least_squares_w"]) < 0.03, variant
        assert abs(late["b"].mean() - fit["least_squares_b"]) < 0.03, variant


@pytest.mark.slow
def test_batch_variant_is_exactly_full_batch_gradient_descent(quick_run):
    results = pd.read_csv(quick_run / "results.csv")
    for problem, data in (("regression_000", datasets.regression_000()), ("regression_001", datasets.regression_001())):
        rows = results[(results["problem"] == problem) & (results["variant"] == "batch")].sort_values("epoch")
        x, y = data.x[:, 0].astype(np.float64), data.y.astype(np.float64)
        # the run starts from the seeded model's weights (seed 0)
        kernel, bias = models.linear_regression(0).get_weights()
        keras.backend.clear_session()
        expected = numpy_batch_gd(x, y, float(kernel[0, 0]), float(bias[0]), 0.1, len(rows))[1:]
        np.testing.assert_array_equal(rows["epoch"], np.arange(1, len(rows) + 1))
        np.testing.assert_allclose(rows[["w", "b"]].to_numpy(), expected, atol=1e-4, err_msg=problem)
        # val_loss is the MSE on all data at the end of the epoch, at the recorded parameters
        np.testing.assert_allclose(rows["val_loss"], [np.mean((w * x + b - y) ** 2) for w, b in expected], rtol=1e-4)


@pytest.mark.slow
def test_outputs_written(quick_run):
    for name in ("run.json", "results.csv", "parameters.csv", "parameters.md", "loss_curves.png", "parameters.png"):
        assert (quick_run / name).stat().st_size > 0, name
    assert list(pd.read_csv(quick_run / "results.csv").columns[:4]) == ["problem", "variant", "optimizer", "seed"]
    assert any((quick_run / "tensorboard" / "regression_000" / "stochastic").rglob("events.out.tfevents.*"))


def test_other_problems_and_batch_sizes_are_usage_errors(tmp_path, capsys):
    for argv, message in ((["--problems", "moons"], "variants of regression_000, regression_001 only"),
                          (["--batch-size", "8"], "--batch-size")):
        with pytest.raises(SystemExit) as exit_info:
            run_main(gd_variants.main, [*argv, "--out", str(tmp_path / "out")])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
