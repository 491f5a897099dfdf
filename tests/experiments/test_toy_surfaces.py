"""experiments.toy_surfaces: the lab's optimisers reproduce the notebooks' NumPy trajectories."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments import toy_surfaces
from tests.reference.notebooks import adam, momentum_gd, nonconvex_descent, ravine_grad, rmsprop, vanilla_gradient_descent

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ravine_rows():
    run = toy_surfaces.RUNS["ravine"]
    assert run.start == (8.0, 3.0) and run.steps == 50
    labels = ["sgd", "momentum", "heavy_ball", "ema_momentum", "rmsprop", "adam"]
    rows = toy_surfaces.run_surface(run, labels)
    return {label: group.sort_values("step")[["x", "y"]].to_numpy() for label, group in rows.groupby("optimizer")}


@pytest.mark.backend_agnostic
def test_ravine_matches_notebook_000(ravine_rows):
    start = np.array([8.0, 3.0])
    expected = {
        "sgd": vanilla_gradient_descent(ravine_grad, start, lr=0.05, n_iters=50),
        "heavy_ball": momentum_gd(ravine_grad, start, lr=0.05, momentum=0.9, n_iters=50),
        "rmsprop": rmsprop(ravine_grad, start, lr=0.5, n_iters=50),
        "adam": adam(ravine_grad, start, lr=0.5, n_iters=50),
    }
    for label, reference in expected.items():
        # the whole path, not only the end point: float32 variables against float64 NumPy
        np.testing.assert_allclose(ravine_rows[label], reference, atol=1e-4, err_msg=label)
    # the notebook's printed story: momentum ends farther out than vanilla GD after 50 steps
    assert np.linalg.norm(expected["heavy_ball"][-1]) > np.linalg.norm(expected["sgd"][-1])


@pytest.mark.backend_agnostic
def test_momentum_styles_coincide_at_matched_step_size(ravine_rows):
    # keras style at lr == heavy-ball at lr == EMA at lr / (1 - beta) under a constant rate
    for label in ("momentum", "ema_momentum"):
        np.testing.assert_allclose(ravine_rows[label], ravine_rows["heavy_ball"], atol=1e-4, err_msg=label)


@pytest.mark.backend_agnostic
def test_nonconvex_starts_match_notebook_001():
    runs = [toy_surfaces.RUNS[f"nonconvex_{start}"] for start in (-1, 0, 2, 4)]
    rows = pd.concat([toy_surfaces.run_surface(run, ["sgd"]) for run in runs])
    for run in runs:
        path = rows[rows["surface"] == run.label].sort_values("step")["x"].to_numpy()
        np.testing.assert_allclose(path, nonconvex_descent(run.start[0]), atol=1e-4, err_msg=run.label)
    summary = toy_surfaces.summarise(rows).set_index("surface")
    # -1 and 0 are caught by the local minimum at -0.25; 2 and 4 reach the global one at 3
    assert list(summary.loc[["nonconvex_-1", "nonconvex_0", "nonconvex_2", "nonconvex_4"], "nearest_minimum"]) == [
        "(-0.25)",
        "(-0.25)",
        "(3)",
        "(3)",
    ]
    assert (summary["distance_to_minimum"] < 1e-3).all()
    assert not summary["diverged"].any()


@pytest.mark.slow
def test_quick_cli_end_to_end(tmp_path):
    out = tmp_path / "toy"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.toy_surfaces", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trajectories = pd.read_csv(out / "trajectories.csv")
    assert list(trajectories.columns) == ["surface", "optimizer", "step", "x", "y", "loss"]
    assert set(trajectories["surface"]) == set(toy_surfaces.QUICK_RUNS)
    assert set(trajectories["optimizer"]) == set(toy_surfaces.QUICK_OPTIMIZERS)
    one_d = trajectories[trajectories["surface"] == "nonconvex_-1"]
    assert one_d["y"].isna().all() and trajectories[trajectories["surface"] == "ravine"]["y"].notna().all()
    # the loss column is the surface evaluated at the recorded point
    ravine = trajectories[trajectories["surface"] == "ravine"]
    np.testing.assert_allclose(ravine["loss"], ravine["x"] ** 2 + 10 * ravine["y"] ** 2, rtol=1e-5, atol=1e-6)
    summary = pd.read_csv(out / "final_distances.csv")
    assert len(summary) == len(toy_surfaces.QUICK_RUNS) * len(toy_surfaces.QUICK_OPTIMIZERS)
    assert (out / "final_distances.md").read_text().startswith("| surface | optimizer |")
    for label in toy_surfaces.QUICK_RUNS:
        assert (out / f"surface_{label}.png").stat().st_size > 10_000


def test_bad_surface_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        from experiments.cli import run_main

        run_main(toy_surfaces.main, ["--surfaces", "moon", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "unknown surface moon" in capsys.readouterr().err
