"""experiments.lr_sensitivity: the notebooks' learning-rate panels and the model sweep."""

import math

import numpy as np
import pandas as pd
import pytest

from experiments import lr_sensitivity
from experiments.cli import run_main


@pytest.mark.backend_agnostic
def test_surface_sweeps_follow_the_closed_form_and_flag_divergence():
    rows = pd.concat([lr_sensitivity.run_surface_sweep(s) for s in lr_sensitivity.SURFACE_SWEEPS.values()])
    for (surface, learning_rate), group in rows.groupby(["surface", "learning_rate"]):
        sweep = lr_sensitivity.SURFACE_SWEEPS[surface]
        steps = np.arange(sweep.steps + 1)
        # gradient descent on x² (+ 5) and x² + y²: x_k = x_0 (1 − 2 lr)^k, per coordinate
        expected_x = sweep.start[0] * (1 - 2 * learning_rate) ** steps
        np.testing.assert_allclose(group["x"], expected_x, rtol=1e-4, atol=1e-5, err_msg=f"{surface} {learning_rate}")
        if surface == "bowl":
            np.testing.assert_allclose(group["y"], expected_x, rtol=1e-4, atol=1e-5)
        else:
            assert group["y"].isna().all()
    summary = lr_sensitivity.summarise_surfaces(rows).set_index(["surface", "learning_rate"])
    # |1 − 2 lr| > 1 only for 1.1 on the bowl; 0.9 on x² + 5 oscillates (factor −0.8) but converges
    assert summary["diverged"].to_dict() == {
        ("bowl", 0.05): False,
        ("bowl", 0.3): False,
        ("bowl", 0.9): False,
        ("bowl", 1.1): True,
        ("quadratic", 0.01): False,
        ("quadratic", 0.1): False,
        ("quadratic", 0.5): False,
        ("quadratic", 0.9): False,
    }
    # gap 1.2^(2k) · 32 exceeds 10 · 32 first at k = 7
    assert summary.loc[("bowl", 1.1), "diverged_at_step"] == 7
    assert summary.loc[("bowl", 1.1), "final_x"] == pytest.approx(4 * 1.2**20, rel=1e-4)


def test_trainable_ranges_width_in_decades():
    finals = pd.DataFrame(
        {
            "problem": ["p"] * 5,
            "optimizer": ["sgd"] * 5,
            "learning_rate": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
            "final_loss": [0.6, 0.2, 0.1, 0.3, np.nan],
            "diverged": [False, False, False, False, True],
            "trains": [False, True, True, True, False],
        }
    )
    (row,) = lr_sensitivity.trainable_ranges(finals).to_dict("records")
    assert (row["lowest"], row["highest"], row["rates_that_train"]) == (1e-3, 1e-1, 3)
    assert row["width_decades"] == pytest.approx(2.0)
    assert row["best_learning_rate"] == 1e-2 and row["diverged_from"] == 1.0

    # a rate that fails between rates that train splits the range: the widest band counts
    gapped = finals.assign(trains=[True, False, True, True, False])
    (row,) = lr_sensitivity.trainable_ranges(gapped).to_dict("records")
    assert (row["lowest"], row["highest"], row["rates_that_train"]) == (1e-2, 1e-1, 3)
    assert row["width_decades"] == pytest.approx(1.0)
    single = finals.assign(trains=[False, False, True, False, False])
    assert lr_sensitivity.trainable_ranges(single)["width_decades"].iloc[0] == 0.0
    none = finals.assign(trains=[False] * 5)
    assert np.isnan(lr_sensitivity.trainable_ranges(none)["width_decades"].iloc[0])

    # over seeds a rate trains when every seed trains, and diverges when one diverges
    other_seed = finals.assign(seed=1, trains=[False, True, False, True, False], diverged=[False, False, False, True, True])
    (row,) = lr_sensitivity.trainable_ranges(pd.concat([finals.assign(seed=0), other_seed])).to_dict("records")
    assert (row["lowest"], row["highest"], row["rates_that_train"]) == (1e-3, 1e-3, 2)
    assert row["diverged_from"] == 1e-1


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_quick_run_in_process(tmp_path):
    out = tmp_path / "lr"
    argv = ["--quick", "--problems", "moons", "--optimizers", "sgd", "--learning-rates", "1", "10000", "--epochs", "3",
            "--no-progress"]
    with pytest.raises(SystemExit) as exit_info:
        run_main(lr_sensitivity.main, [*argv, "--out", str(out)])
    assert exit_info.value.code == 0
    surface = pd.read_csv(out / "surface_trajectories.csv")
    assert {"surface", "learning_rate", "step", "x", "y", "loss", "diverged"} <= set(surface.columns)
    sweep = pd.read_csv(out / "sweep.csv")
    assert list(sweep.columns[:5]) == ["problem", "optimizer", "set_learning_rate", "seed", "epoch"]
    assert set(sweep["epoch"]) <= {1, 2, 3} and "val_accuracy" in sweep
    finals = pd.read_csv(out / "sweep_final.csv").set_index("learning_rate")
    # diverged on every backend: on TensorFlow the loss grows without bound, on JAX (the
    # cross-entropy of clipped probabilities) it sticks at 4.35 times the untrained loss
    assert not finals.loc[1.0, "diverged"] and finals.loc[10000.0, "diverged"]
    assert not finals.loc[10000.0, "trains"]
    assert finals["threshold"].iloc[0] == pytest.approx(0.5 * math.log(2))
    ranges = pd.read_csv(out / "trainable_ranges.csv")
    assert list(ranges["optimizer"]) == ["sgd"] and ranges["diverged_from"].iloc[0] == 10000.0
    for name in ("lr_bowl.png", "lr_quadratic.png", "lr_sweep.png"):
        assert (out / name).stat().st_size > 10_000
    assert any((out / "tensorboard" / "moons").rglob("events.out.tfevents.*"))


@pytest.mark.backend_agnostic
def test_final_training_loss_scores_schedule_free_on_its_averaged_weights():
    """The after-trial hook against Keras's own evaluate, with the averaged weights put in by the
    optimiser's own context manager (another code path than the hook's)."""
    import keras

    from experiments.grid import Trial
    from lab import models
    from lab.optimizers import ScheduleFreeAdamW
    from lab.problems import PROBLEMS

    problem = lr_sensitivity.SWEEP_PROBLEMS["moons"]
    data = problem.split()
    keras.utils.set_random_seed(0)
    model = models.moons_net(0)
    optimizer = ScheduleFreeAdamW(learning_rate=0.05)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, batch_size=128, epochs=3, shuffle=False, verbose=0)
    trained_weights = [keras.ops.convert_to_numpy(v.value) for v in model.trainable_variables]

    trial = Trial(problem=problem, optimizer="schedule_free_adamw")
    (row,) = lr_sensitivity.final_training_loss(trial, model, data)[lr_sensitivity.FINAL_FILE].to_dict("records")
    for variable, value in zip(model.trainable_variables, trained_weights):  # the hook puts y back
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable.value), value)
    trained = model.evaluate(data.x_train, data.y_train, batch_size=len(data.x_train), verbose=0)
    with optimizer.use_averaged_weights():
        averaged = model.evaluate(data.x_train, data.y_train, batch_size=len(data.x_train), verbose=0)
    assert row["final_train_loss"] == pytest.approx(averaged, rel=1e-5)
    assert row["final_train_loss_at_trained_weights"] == pytest.approx(trained, rel=1e-5)
    assert abs(averaged - trained) > 1e-3  # x and y are far enough apart for the score to tell
    assert PROBLEMS["moons"].loss == "sparse_categorical_crossentropy"


@pytest.mark.slow
def test_sweep_of_the_recent_optimizers(tmp_path):
    """The sweep's trials, runner hook and tables for the new entries with their own handling:
    schedule-free AdamW (scored at x; validated there by the grid's rule, tested in
    test_averaged_evaluation) and Prodigy (a multiplier). Muon and RAdam
    are plain registry entries to the sweep (RAdam is checked against its reference on the toy
    surfaces; each TensorFlow trial costs about 4 s). The command line around them is the sgd
    run's above."""
    from experiments.grid import run_grid

    assert {"muon", "schedule_free_adamw", "radam", "prodigy"} <= set(lr_sensitivity.SWEEP_OPTIMIZERS)
    recent = ["schedule_free_adamw", "prodigy"]
    problem = lr_sensitivity.SWEEP_PROBLEMS["moons"]
    trials = lr_sensitivity.declare_sweep([problem], recent, [0.01], 1, epochs=2, jit_compile=False)
    grid = run_grid(trials, tmp_path, results_file=lr_sensitivity.SWEEP_FILE, after=lr_sensitivity.final_training_loss,
                    extra_files=[lr_sensitivity.FINAL_FILE], progress=False, tensorboard=False)
    final = pd.read_csv(tmp_path / lr_sensitivity.FINAL_FILE).set_index("optimizer")
    assert list(final.index) == recent
    losses = final[["final_train_loss", "final_train_loss_at_trained_weights"]]
    assert np.isfinite(losses).all().all() and (losses > 0).all().all()
    assert losses.loc["prodigy"].iloc[0] == losses.loc["prodigy"].iloc[1]  # no average: one number
    # schedule-free AdamW is scored at x, which differs from the y it trains
    x_loss, y_loss = losses.loc["schedule_free_adamw"]
    assert abs(x_loss - y_loss) > 1e-4 * y_loss
    sweep = pd.read_csv(tmp_path / lr_sensitivity.SWEEP_FILE)
    assert np.isfinite(sweep[["loss", "val_loss", "val_accuracy"]]).all().all() and (sweep["status"] == "ok").all()
    finals = lr_sensitivity.final_losses(sweep, {"moons": 2}, 0.5, grid.extras[lr_sensitivity.FINAL_FILE])
    finals = finals.set_index("optimizer")
    np.testing.assert_allclose(finals.loc[recent, "final_loss"], final.loc[recent, "final_train_loss"])
    assert finals.loc["prodigy", "rate_is"] == "multiplier"
    assert finals.loc["schedule_free_adamw", "rate_is"] == "learning_rate"
    ranges = lr_sensitivity.trainable_ranges(finals.reset_index()).set_index("optimizer")
    assert ranges.loc["prodigy", "rate_is"] == "multiplier"
    lr_sensitivity.plot_model_sweep(finals.reset_index(), tmp_path / "lr_sweep.png")
    assert (tmp_path / "lr_sweep.png").stat().st_size > 10_000


def test_bad_learning_rates_are_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(lr_sensitivity.main, ["--learning-rates", "0.1", "-3", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "positive" in capsys.readouterr().err
