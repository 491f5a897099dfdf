"""experiments.weight_decay: the coupled L2 penalty is PyTorch Adam's weight_decay; a run end to end."""

import numpy as np
import pandas as pd
import pytest

from experiments import weight_decay as experiment

CROSS_ENTROPY = "sparse_categorical_crossentropy"


@pytest.mark.backend_agnostic
def test_coupled_l2_adds_weight_decay_times_w_to_every_gradient():
    """One full-batch step of plain SGD (lr η) on the regularised copy lands exactly η·λ·w0 below
    the step on the plain model, for kernels and biases alike: the gradient is ∇CE + λ·w, which is
    what PyTorch's Adam(weight_decay=λ) feeds its moments."""
    import keras

    from lab import datasets, models

    data = datasets.load_moons()
    weight_decay, rate = 0.3, 0.5
    plain = models.moons_net(seed=3)
    # biases start at zero; give them values so that their decay is visible too
    plain.set_weights([w + 0.25 if w.ndim == 1 else w for w in plain.get_weights()])
    start = [np.array(w) for w in plain.get_weights()]
    coupled = experiment.with_coupled_l2(plain, weight_decay)
    for before, copied in zip(start, coupled.get_weights()):
        np.testing.assert_array_equal(before, copied)
    assert all(v.regularizer is not None for v in coupled.trainable_variables)
    # the penalty is (λ / 2)·Σ w², kernels and biases
    penalty = float(sum(keras.ops.convert_to_numpy(loss) for loss in coupled.losses))
    assert penalty == pytest.approx(weight_decay / 2 * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in start), rel=1e-5)

    after = {}
    for name, model in (("plain", plain), ("coupled", coupled)):
        model.compile(optimizer=keras.optimizers.SGD(rate), loss="sparse_categorical_crossentropy")
        model.train_on_batch(data.x_train, data.y_train)
        after[name] = model.get_weights()
    for w0, w_plain, w_coupled in zip(start, after["plain"], after["coupled"]):
        np.testing.assert_allclose(w_coupled - w_plain, -rate * weight_decay * w0, rtol=1e-4, atol=1e-6)

    unregularised = experiment.with_coupled_l2(models.moons_net(seed=3), 0.0)
    assert all(v.regularizer is None for v in unregularised.trainable_variables)


@pytest.mark.backend_agnostic
def test_the_decoupled_trials_optimizer_steps_as_adamw():
    """A decoupled trial is its spec with weight_decay=wd: for Adam, lab.optimizers.AdamW's steps."""
    import keras

    from experiments.grid import build_optimizer
    from lab.optimizers import AdamW
    from lab.problems import PROBLEMS

    trials = experiment.declare_trials([PROBLEMS["moons"]], experiment.DEFAULT_OPTIMIZERS, [0.01], 1)
    (decoupled,) = [trial for trial in trials if dict(trial.labels)["method"] == "decoupled"]
    ours = build_optimizer(decoupled)
    twin = AdamW(0.01, weight_decay=0.01, epsilon=1e-8, epsilon_placement="paper")
    start = np.array([[0.5, -1.5], [2.0, 0.25]], dtype=np.float32)
    gradient = np.array([[0.1, -0.3], [0.02, 0.7]], dtype=np.float32)
    values = []
    for optimizer in (ours, twin):
        variable = keras.Variable(start)
        for _ in range(3):
            optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient), variable)])
        values.append(keras.ops.convert_to_numpy(variable))
    np.testing.assert_array_equal(values[0], values[1])
    assert not np.allclose(values[0], start)


@pytest.mark.slow
@pytest.mark.xdist_group("weight_decay_run")  # on the worker that made the run (tests/experiments/conftest.py)
def test_a_run_end_to_end_in_a_subprocess(weight_decay_run):
    out = weight_decay_run.out
    assert "coupled_l2" in weight_decay_run.stdout

    results = pd.read_csv(out / "results.csv")
    assert list(results.columns[:5]) == ["problem", "optimizer", "method", "weight_decay", "seed"]
    # loss: Keras's objective; the cross-entropy alone is a metric of the loss's name
    for column in ("epoch", "loss", CROSS_ENTROPY, "accuracy", "val_loss", f"val_{CROSS_ENTROPY}", "val_accuracy"):
        assert column in results.columns
    assert len(results) == 2 * 2 * 30  # methods x decays x epochs
    assert (results["status"] == "ok").all()
    assert (results["learning_rate"] == 0.01).all()
    assert set(results["optimizer"]) == {"adam:epsilon=1e-08,epsilon_placement=paper"}

    # the coupled runs' Keras objective holds the penalty on top of the cross-entropy
    coupled = results[results["method"] == "coupled_l2"]
    gap = coupled["loss"] - coupled[CROSS_ENTROPY]
    assert np.allclose(gap[coupled["weight_decay"] == 0], 0.0, atol=1e-6)
    assert (gap[coupled["weight_decay"] > 0] > 0).all()
    decoupled = results[results["method"] == "decoupled"]
    np.testing.assert_allclose(decoupled["loss"], decoupled[CROSS_ENTROPY], rtol=1e-5)

    # with no decay both methods are the same Adam from the same weights: the same curves
    zero = results[results["weight_decay"] == 0].pivot(index="epoch", columns="method", values=f"val_{CROSS_ENTROPY}")
    np.testing.assert_allclose(zero["coupled_l2"], zero["decoupled"], rtol=1e-5)

    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4
    for method, group in summary.groupby("method"):
        norms = group.sort_values("weight_decay")["final_weight_norm"].to_numpy()
        assert np.all(np.diff(norms) < 0), (method, norms)  # more decay, smaller weights
    final = summary.set_index(["method", "weight_decay"])["final_weight_norm"]
    # at the same nominal λ the coupled penalty, rescaled by Adam, shrinks far more than AdamW's
    # lr·λ = 1e-4 per step
    assert final[("decoupled", 0.0)] - final[("decoupled", 0.01)] < final[("coupled_l2", 0.0)] - final[("coupled_l2", 0.01)]

    assert (out / "weight_decay.png").stat().st_size > 20_000
    events = [path for path in (out / "tensorboard").rglob("events.out.tfevents.*") if path.parent.name == "validation"]
    assert len(events) == 4
    assert not {"best_test_loss"} & set(summary.columns)  # no best epoch on the test set
    from lab import models

    np.testing.assert_allclose(summary["initial_weight_norm"], experiment.weight_norm(models.moons_net(0)), rtol=1e-7)


def test_negative_weight_decay_is_a_usage_error(tmp_path, capsys):
    from experiments.cli import run_main

    with pytest.raises(SystemExit) as exit_info:
        run_main(experiment.main, ["--quick", "--weight-decays", "0", "-0.1", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--weight-decays" in capsys.readouterr().err
