"""The grid's rule for optimisers that keep an averaged iterate (schedule-free AdamW and SGD): they
are validated, and scored after training, at that iterate, not at the weights they train."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from experiments import compare_optimizers
from experiments.tuning import selection as tuning_selection
from experiments.tuning import settings as tuning_settings
from experiments.grid import Trial, build_optimizer, run_grid
from experiments.training import train_run
from lab.callbacks import AveragedWeights
from lab.callbacks.averaged_weights import evaluated_weights_in, keeps_averaged_iterate
from lab.optimizers import SGD, Adam, Muon, ScheduleFreeAdamW, ScheduleFreeSGD
from lab.problems import protocol_view, resolve

EPOCHS = 4


def _train_alone(trial: Trial, data, callbacks) -> tuple[keras.Model, object]:
    """The trial trained by ``train_run`` directly: its model and rows."""
    keras.backend.clear_session()
    model = trial.problem.model(trial.seed)
    rows = train_run(model, build_optimizer(trial), data, epochs=EPOCHS, batch_size=len(data.x_train), seed=trial.seed,
                     loss=trial.problem.loss, metrics=trial.problem.metrics, callbacks=callbacks)
    return model, rows


def test_which_optimisers_keep_an_averaged_iterate():
    assert keeps_averaged_iterate(ScheduleFreeAdamW()) and keeps_averaged_iterate(ScheduleFreeSGD())
    assert not any(keeps_averaged_iterate(optimizer) for optimizer in (SGD(), Adam(), Muon()))


@pytest.mark.slow
@pytest.mark.backend_agnostic
def test_the_grid_validates_and_scores_schedule_free_runs_at_their_averaged_iterate(tmp_path):
    problem = resolve("moons")
    trial = Trial(problem=problem, optimizer="schedule_free_adamw:learning_rate=0.05", seed=0, epochs=EPOCHS,
                  labels=(("optimizer", "schedule_free_adamw"),))
    data = protocol_view(problem.split(), trial.protocol)
    # on JAX the grid would train this trial as a vectorised group, but for its averaged iterate
    grid = run_grid([trial], tmp_path, progress=False, tensorboard=False).results

    averaged_model, averaged = _train_alone(trial, data, [AveragedWeights()])
    _, raw = _train_alone(trial, data, [])
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(grid[column], averaged[column], rtol=1e-6, err_msg=column)
    np.testing.assert_allclose(grid["loss"], raw["loss"], rtol=1e-6)  # training is the same
    assert np.abs(grid["val_loss"] - raw["val_loss"]).max() > 1e-3  # x and y apart enough to tell

    # the after-trial scores: the decision boundary and the test scores at x, the weights left at y
    trained = [keras.ops.convert_to_numpy(v.value) for v in averaged_model.trainable_variables]
    boundary = compare_optimizers.boundary_rows(trial, averaged_model, data)[compare_optimizers.BOUNDARIES_FILE]
    scores = tuning_selection.test_scores(trial, averaged_model, data)[tuning_settings.TEST_FILE].iloc[0]
    points = boundary[["x", "y"]].to_numpy(np.float32)
    with averaged_model.optimizer.use_averaged_weights():  # the optimiser's own swap, another code path
        at_x = averaged_model.predict(points, batch_size=len(points), verbose=0)[:, 1]
        test_at_x = averaged_model.evaluate(data.x_test, data.y_test, batch_size=len(data.x_test), verbose=0,
                                            return_dict=True)
    at_y = averaged_model.predict(points, batch_size=len(points), verbose=0)[:, 1]
    np.testing.assert_allclose(boundary["probability"], at_x, rtol=1e-5, atol=1e-7)
    assert np.abs(at_x - at_y).max() > 1e-3
    assert scores["test_loss"] == pytest.approx(test_at_x["loss"], rel=1e-5)
    for variable, value in zip(averaged_model.trainable_variables, trained):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable.value), value)
    with evaluated_weights_in(averaged_model):
        assert not np.array_equal(keras.ops.convert_to_numpy(averaged_model.trainable_variables[0].value), trained[0])
