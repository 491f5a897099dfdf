"""experiments.schedules: the curve table against the notebooks' formulas, and training with them."""


import numpy as np
import pandas as pd
import pytest

from experiments import schedules as experiment
from tests.reference import schedules as reference

EPOCHS = np.arange(100)
LR = 0.1


def notebook_000(name: str, epoch: np.ndarray) -> np.ndarray:
    """Notebook 000, Part 6, transcribed (initial_lr 0.1, total_epochs 100)."""
    if name == "constant":
        return np.full(epoch.shape, LR)
    if name == "step":  # drop=0.5, epochs_drop=10
        return LR * 0.5 ** (epoch // 10)
    if name == "exponential":  # decay_rate=0.95
        return LR * 0.95**epoch
    if name == "cosine":
        return LR * 0.5 * (1 + np.cos(np.pi * epoch / 100))
    if name == "warmup_cosine":  # warmup_epochs=10
        progress = (epoch - 10) / 90
        return np.where(epoch < 10, LR * epoch / 10, LR * 0.5 * (1 + np.cos(np.pi * progress)))
    raise KeyError(name)


def expected_curve(label: str, epoch: np.ndarray) -> np.ndarray:
    """Every curve of the figure from an independent formula: the notebooks' own code where they
    have the schedule, else the NumPy references of tests/reference/schedules.py."""
    floor = 0.001
    if label in {"constant", "step", "exponential", "cosine", "warmup_cosine"}:
        return notebook_000(label, epoch)
    if label == "cosine_floor":  # notebook 004's cosine_lr list / PyTorch eta_min=0.001
        return floor + 0.5 * (LR - floor) * (1 + np.cos(np.pi * epoch / 100))
    if label == "warmup_cosine_floor":  # notebook 002's warmup_lr
        return np.where(
            epoch < 10, LR * epoch / 10, floor + 0.5 * (LR - floor) * (1 + np.cos(np.pi * (epoch - 10) / 90))
        )
    if label == "one_cycle_cos":
        return reference.one_cycle(epoch, LR, 100)
    if label == "one_cycle_linear":
        return reference.one_cycle(epoch, LR, 100, anneal="linear")
    if label.startswith("cyclical_"):
        mode = label.removeprefix("cyclical_")
        return reference.cyclic_lr(epoch, floor, LR, 10, mode=mode, gamma=0.97 if mode == "exp_range" else 1.0)
    if label == "warm_restarts_t_mul_2":
        return reference.cosine_warm_restarts_pytorch(epoch, LR, 10, t_mul=2)
    if label == "warm_restarts_t_mul_1_m_mul_0.7":
        return reference.sgdr(epoch, LR, 20, t_mul=1.0, m_mul=0.7, min_learning_rate=floor)
    if label == "sequential":
        pieces = [
            lambda t: reference.constant(t, LR / 10),
            lambda t: reference.cosine_annealing(t, LR, 60, floor),
            lambda t: reference.exponential_decay(t, floor, 1, 0.97),
        ]
        return reference.sequential(epoch, pieces, [10, 70])
    if label == "linear_warmup":
        return reference.linear_warmup(epoch, LR, 10)
    if label == "linear_decay":
        return reference.polynomial_decay(epoch, LR, 100, end_learning_rate=0.0)
    if label == "polynomial_power_2":
        return reference.polynomial_decay(epoch, LR, 100, end_learning_rate=floor, power=2.0)
    if label == "polynomial_cycle":
        return reference.polynomial_decay(epoch, LR, 30, end_learning_rate=floor, cycle=True)
    if label == "piecewise_constant":
        return reference.piecewise_constant(epoch, [30, 60, 80], [LR, LR / 2, LR / 10, floor])
    if label == "multi_step":
        return reference.multi_step(epoch, LR, [30, 60, 80], gamma=0.1)
    if label.startswith("inverse_time"):
        return reference.inverse_time_decay(epoch, LR, 10, 0.5, staircase=label.endswith("staircase"))
    if label.startswith("wsd_"):
        return reference.warmup_stable_decay(epoch, LR, 100, warmup_steps=10, decay_shape=label.removeprefix("wsd_"))
    raise KeyError(label)


@pytest.mark.backend_agnostic
def test_curves_csv_matches_the_notebooks_and_the_references(tmp_path):
    assert experiment.main(["--curves-only", "--out", str(tmp_path)]) == 0
    assert {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")} == {
        "schedules.csv",
        "schedules.json",
        "schedules.png",
        "run.json",
    }
    frame = pd.read_csv(tmp_path / "schedules.csv")
    assert list(frame.columns) == ["schedule", "panel", "epoch", "learning_rate"]
    labels = [curve.label for curve in experiment.curve_catalogue()]
    assert list(dict.fromkeys(frame["schedule"])) == labels
    assert len(labels) == 26 and frame["panel"].nunique() == 9
    for label, group in frame.groupby("schedule"):
        np.testing.assert_array_equal(group["epoch"], EPOCHS)
        # float32 schedules against float64 formulas
        np.testing.assert_allclose(group["learning_rate"], expected_curve(label, EPOCHS), rtol=2e-6, atol=1e-8, err_msg=label)
    assert (tmp_path / "schedules.png").stat().st_size > 20_000


GOLDEN = {
    "linear_warmup": {5: 0.05, 10: 0.1, 99: 0.1},
    "linear_decay": {50: 0.05, 99: 0.001},
    "polynomial_power_2": {50: 0.001 + 0.099 * 0.25},
    "polynomial_cycle": {30: 0.001, 31: 0.001 + 0.099 * (1 - 31 / 60)},
    "piecewise_constant": {30: 0.1, 31: 0.05, 61: 0.01, 81: 0.001},  # a boundary belongs to the piece before
    "multi_step": {29: 0.1, 30: 0.01, 60: 0.001, 80: 0.0001},  # PyTorch switches at the milestone
    "inverse_time": {10: 0.1 / 1.5, 30: 0.1 / 2.5},
    "inverse_time_staircase": {9: 0.1, 19: 0.1 / 1.5},
    "wsd_linear": {5: 0.05, 79: 0.1, 80: 0.1, 90: 0.05},
    "wsd_cosine": {90: 0.05},
    "wsd_1-sqrt": {85: 0.1 * (1 - 0.25**0.5)},
}


@pytest.mark.backend_agnostic
def test_curve_values_are_what_the_optimizer_gets_step_by_step():
    """The table calls each schedule once on a vector of steps; an optimizer calls it with one
    scalar step at a time. Both must give the same numbers."""
    import keras

    catalogue = experiment.curve_catalogue()
    frame, configs = experiment.curve_table(100, catalogue)
    for curve in catalogue:
        schedule = curve.build(100)
        values = frame.loc[frame["schedule"] == curve.label, "learning_rate"].to_numpy()
        for step in (0, 9, 10, 29, 30, 31, 60, 61, 69, 70, 80, 81, 90, 99):
            scalar = float(keras.ops.convert_to_numpy(schedule(step)))
            assert values[step] == pytest.approx(scalar, rel=1e-6, abs=1e-9), (curve.label, step)
        if curve.label in GOLDEN:  # hand-computed values of the newer schedules at their switches
            for step, expected in GOLDEN[curve.label].items():
                assert values[step] == pytest.approx(expected, rel=1e-6), (curve.label, step)
        # the JSON config rebuilds the same schedule
        rebuilt = keras.optimizers.schedules.deserialize(configs[curve.label])
        assert float(keras.ops.convert_to_numpy(rebuilt(37))) == pytest.approx(values[37], rel=1e-6)


@pytest.mark.slow
def test_quick_training_records_each_schedule_at_the_end_of_every_epoch(tmp_path):
    out = tmp_path / "run"
    code = experiment.main(
        ["--quick", "--problems", "moons", "--schedules", "constant", "step", "warmup_cosine", "one_cycle",
         "warmup_stable_decay", "--no-progress", "--out", str(out)]
    )
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns[:5]) == ["problem", "schedule", "optimizer", "seed", "epoch"]
    for column in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds", "status"):
        assert column in results.columns
    assert set(results["schedule"]) == {"constant", "step", "warmup_cosine", "one_cycle", "warmup_stable_decay"}
    assert (results["status"] == "ok").all() and np.isfinite(results[["loss", "val_loss"]]).all().all()

    # --quick moons, held out: 4 epochs of the 640 training examples in batches of 32 -> 20 steps
    # per epoch, 80 steps; the row of epoch e shows the rate of its last step, 20 e - 1.
    peak, steps_per_epoch, total = 0.05, 20, 80
    last_steps = np.arange(1, 5) * steps_per_epoch - 1
    expected = {
        "constant": reference.constant(last_steps, peak),
        "step": reference.step_decay(last_steps, peak, 0.5, total // 4),
        "warmup_cosine": reference.warmup_cosine(last_steps, peak, total // 10, total - total // 10),
        "one_cycle": reference.one_cycle(last_steps, peak, total),
        # warm-up over 8 steps, the peak to step 64, a linear cool-down over the last 16: 0.05 x 1/16 at step 79
        "warmup_stable_decay": [peak, peak, peak, peak / 16],
    }
    for schedule, group in results.groupby("schedule"):
        np.testing.assert_array_equal(group["epoch"], [1, 2, 3, 4])
        np.testing.assert_allclose(group["learning_rate"], expected[schedule], rtol=1e-5, atol=1e-9, err_msg=schedule)

    # every run starts from the same seeded weights and visits the same batches; the first
    # epoch's loss is lowest where the first epoch's rates are highest (constant) and highest
    # where they start near zero (one-cycle starts at peak / 25, warm-up from 0)
    first = results[results["epoch"] == 1].set_index("schedule")["loss"]
    assert first["constant"] < first["warmup_cosine"] and first["constant"] < first["one_cycle"]

    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 5 and (summary["epochs"] == 4).all()
    assert summary.set_index("schedule")["final_learning_rate"]["one_cycle"] == pytest.approx(peak / 25 / 1e4, rel=1e-4)
    assert (out / "training.png").stat().st_size > 20_000
    events = list((out / "tensorboard" / "moons").glob("*/momentum/seed0/train/events.out.tfevents.*"))
    assert len(events) == 5


def test_bad_input_exits_with_code_2(tmp_path, capsys):
    from experiments.cli import run_main

    with pytest.raises(SystemExit) as exit_info:
        run_main(experiment.main, ["--quick", "--optimizers", "nosuch", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "unknown optimizer 'nosuch'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse's own check
        experiment.main(["--learning-rate", "-1"])
    assert exit_info.value.code == 2
