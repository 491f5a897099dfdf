"""Configs round-trip, and model.save() / keras.models.load_model() mid-training (without
custom_objects) restores the slots and the iteration count: training continues on exactly the
trajectory of an uninterrupted run."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lab import optimizers
from tests.optimizers import harness

pytestmark = pytest.mark.backend_agnostic

# one configuration per class, with the variants that add slots or change the rule
CONFIGURED = {
    "SGD": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True, momentum_style="heavy_ball"),
    "Adagrad": lambda: optimizers.Adagrad(0.1, initial_accumulator_value=0.2),
    "RMSprop": lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    "Adam": lambda: optimizers.Adam(0.01, amsgrad=True, epsilon_placement="paper"),
    "AdamW": lambda: optimizers.AdamW(0.01, weight_decay=0.02),
    "Nadam": lambda: optimizers.Nadam(0.01),
    "Lion": lambda: optimizers.Lion(0.003),
    "Adadelta": lambda: optimizers.Adadelta(1.0, rho=0.9),
    "Adamax": lambda: optimizers.Adamax(0.01, beta_2=0.99),
    "Ftrl": lambda: optimizers.Ftrl(0.1, l1_regularization_strength=0.01, l2_shrinkage_regularization_strength=0.01, beta=0.1),
    "Lamb": lambda: optimizers.Lamb(0.01),
    "Adafactor": lambda: optimizers.Adafactor(0.05, clip_threshold=0.5),
    "Muon": lambda: optimizers.Muon(0.02, exclude_layers=["dense_1"], rms_rate=None, nesterov=False),
    "ScheduleFreeAdamW": lambda: optimizers.ScheduleFreeAdamW(0.01, warmup_steps=3, weight_decay=0.01),
}
CONFIGURED.update(
    {
        "RAdam": lambda: optimizers.RAdam(0.05, weight_decay=0.01, decoupled_weight_decay=True),
        "NAdamW": lambda: optimizers.NAdamW(0.01, weight_decay=0.02, momentum_decay=0.004),
        "Prodigy": lambda: optimizers.Prodigy(1.0, d0=1e-3, growth_rate=2.0, weight_decay=0.01),
        "ScheduleFreeSGD": lambda: optimizers.ScheduleFreeSGD(0.5, warmup_steps=3, weight_decay=0.001),
    }
)


@pytest.mark.parametrize("name", list(CONFIGURED))
def test_config_round_trip(name):
    optimizer = CONFIGURED[name]()
    config = optimizer.get_config()
    assert type(optimizer).from_config(config).get_config() == config
    serialized = keras.saving.serialize_keras_object(optimizer)
    assert serialized["registered_name"] == f"lab>{name}"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(optimizer) and restored.get_config() == config


def test_schedule_round_trips():
    optimizer = optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5), epsilon_placement="paper")
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
    assert isinstance(restored._learning_rate, keras.optimizers.schedules.ExponentialDecay)
    assert restored.epsilon_placement == "paper"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGURED))
def test_save_load_resumes_exact_trajectory(name, tmp_path):
    x, y = harness.tiny_data()
    model = harness.tiny_model(0)
    model.compile(optimizer=CONFIGURED[name](), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path)  # no custom_objects: the classes are registered
    assert type(restored.optimizer) is type(model.optimizer)
    assert int(restored.optimizer.iterations) == int(model.optimizer.iterations) == 8
    saved_slots = [np.array(v) for v in model.optimizer.variables]
    restored_slots = [np.array(v) for v in restored.optimizer.variables]
    assert len(saved_slots) == len(restored_slots) > 2
    assert any(np.abs(s).max() > 0 for s in saved_slots[2:])  # the slots hold state worth restoring
    for saved, loaded in zip(saved_slots, restored_slots):
        np.testing.assert_array_equal(loaded, saved)
    # continue both: the uninterrupted model and the reloaded one
    model.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    restored.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    harness.assert_same_weights(restored.get_weights(), model.get_weights(), rtol=1e-6, atol=1e-7)
