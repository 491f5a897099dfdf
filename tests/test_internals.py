"""lab.internals: each reach into a library's private names still does what the lab relies on.

A release of Keras, JAX or PyTorch that renames or changes one of them fails here, by name, with
the version the reach-in was checked on (``lab.internals.CHECKED_ON``)."""

from __future__ import annotations

import inspect
import sys

import keras
import numpy as np
import pytest

from lab import internals
from lab.optimizers import SGD, Adam

pytestmark = pytest.mark.backend_agnostic

BACKEND = keras.backend.backend()


def built(optimizer: keras.optimizers.Optimizer, *shapes: tuple) -> tuple[keras.optimizers.Optimizer, list]:
    variables = [keras.Variable(np.full(shape, 1.0 + k, dtype="float32")) for k, shape in enumerate(shapes)]
    optimizer.build(variables)
    return optimizer, variables


def test_learning_rate_or_schedule_is_the_object_the_optimizer_holds():
    # a float rate: the variable, the very one the public property gives and optimizer.variables holds
    optimizer, _ = built(SGD(0.25), (2,))
    rate = internals.learning_rate_or_schedule(optimizer)
    assert isinstance(rate, keras.Variable) and rate is optimizer.learning_rate
    assert optimizer.variables[internals.position_of(optimizer, rate)] is rate
    assert float(keras.ops.convert_to_numpy(rate)) == 0.25
    # a schedule: the schedule itself; the public property evaluates it at iterations instead
    schedule = keras.optimizers.schedules.ExponentialDecay(0.5, 10, 0.1)
    optimizer, _ = built(SGD(schedule), (2,))
    assert internals.learning_rate_or_schedule(optimizer) is schedule
    assert not isinstance(optimizer.learning_rate, keras.optimizers.schedules.LearningRateSchedule)
    # a callable: itself
    function = lambda: 0.125  # noqa: E731
    assert internals.learning_rate_or_schedule(SGD(function)) is function


def test_iterations_and_rate_are_keras_first_optimizer_variables():
    optimizer, _ = built(Adam(0.1), (2,), (3,))
    assert internals.position_of(optimizer, optimizer.iterations) == 0
    assert internals.position_of(optimizer, optimizer.learning_rate) == 1


def test_variable_index_orders_the_slots_as_build_got_the_variables():
    optimizer, variables = built(Adam(0.1), (2,), (3, 1), (4,))
    assert [internals.variable_index(optimizer, v) for v in variables] == [0, 1, 2]
    assert [tuple(optimizer.momentums[internals.variable_index(optimizer, v)].shape) for v in variables] == [
        (2,), (3, 1), (4,)]


def test_built_variables_are_the_model_variables_in_build_order():
    optimizer, variables = built(Adam(0.1), (2,), (3, 1), (4,))
    assert [v is w for v, w in zip(internals.built_variables(optimizer), variables, strict=True)] == [True] * 3


def test_uses_weight_decay_follows_the_exclusions():
    optimizer = Adam(0.1, weight_decay=0.01)
    optimizer, (decayed, excluded) = built(optimizer, (2,), (3,))
    optimizer.exclude_from_weight_decay(var_list=[excluded])
    assert internals.uses_weight_decay(optimizer, decayed) is True
    assert internals.uses_weight_decay(optimizer, excluded) is False


def test_moving_average_is_keras_ema_of_each_variable():
    assert internals.moving_average(built(SGD(0.1), (2,))[0], keras.Variable([1.0])) is None
    optimizer, variables = built(SGD(0.5, use_ema=True, ema_momentum=0.5), (2,), (3,))
    optimizer.apply([keras.ops.ones((2,)), keras.ops.ones((3,))], variables)
    for variable in variables:
        average = internals.moving_average(optimizer, variable)
        assert tuple(average.shape) == tuple(variable.shape)
        assert any(average is v for v in optimizer.variables)
    # Keras's first EMA update copies the weights after the step: θ − lr·g
    np.testing.assert_allclose(keras.ops.convert_to_numpy(internals.moving_average(optimizer, variables[1])), 2.0 - 0.5)


def test_tracked_variables_join_and_leave_optimizer_variables():
    optimizer, _ = built(SGD(0.1), (2,))
    extra = keras.Variable(3.0, name="extra")
    count = len(optimizer.variables)
    internals.track_variable(optimizer, extra)
    assert len(optimizer.variables) == count + 1 and optimizer.variables[-1] is extra
    internals.untrack_variable(optimizer, extra)
    assert len(optimizer.variables) == count and not any(v is extra for v in optimizer.variables)


def test_backend_update_step_and_weight_decay_hooks_are_called_by_apply():
    """Keras's ``apply`` still calls the two hooks the lab's optimisers override, with these
    arguments, and the functions reach Keras's own versions through ``super()``."""
    calls = []

    class Spy(keras.optimizers.SGD):
        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            calls.append("step")
            internals.backend_update_step(super(), grads, trainable_variables, learning_rate)

        def _apply_weight_decay(self, variables):
            calls.append("decay")
            internals.apply_weight_decay(super(), variables)

    assert list(inspect.signature(Spy.__mro__[1]._backend_update_step).parameters) == [
        "self", "grads", "trainable_variables", "learning_rate"]
    variable = keras.Variable([1.0, 2.0])
    optimizer = Spy(0.5, weight_decay=0.1)
    optimizer.apply([keras.ops.convert_to_tensor([1.0, 1.0])], [variable])
    assert calls == ["decay", "step"]
    # decay θ·(1 − wd·lr), then θ − lr·g
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), np.array([1.0, 2.0]) * 0.95 - 0.5, rtol=1e-6)


def test_in_stateless_scope():
    assert internals.in_stateless_scope() is False
    with keras.StatelessScope():
        assert internals.in_stateless_scope() is True
    assert internals.in_stateless_scope() is False


def test_plateau_hooks_are_keras_and_called_by_its_epoch_end():
    calls = []

    class Spy(keras.callbacks.ReduceLROnPlateau):
        def _is_improvement(self, monitor_value, reference_value):
            calls.append("improvement")
            return internals.plateau_is_improvement(super(), monitor_value, reference_value)

        def _reduce_optimizer_lr(self, optimizer, epoch, name=""):
            calls.append("reduce")
            return internals.plateau_reduce_learning_rate(super(), optimizer, epoch, name)

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=SGD(0.5), loss="mse")
    spy = Spy(monitor="loss", factor=0.5, patience=0, min_delta=0.0)
    spy.set_model(model)
    spy.on_train_begin()
    spy.on_epoch_end(0, {"loss": 1.0})
    assert calls == ["improvement"]
    assert bool(internals.plateau_is_improvement(super(Spy, spy), 0.5, 1.0)) is True
    spy.on_epoch_end(1, {"loss": 2.0})  # no improvement, patience 0: the rate halves
    assert calls == ["improvement", "improvement", "reduce"]
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == 0.25


def test_print_message_prints_as_keras_callbacks_do(capsys):
    internals.print_message("a line")
    assert "a line" in capsys.readouterr().out


def test_symbolic_build_builds_model_optimizer_and_metrics_without_a_step():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=Adam(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = [keras.ops.convert_to_numpy(v) for v in model.weights]
    internals.symbolic_build(model, (np.zeros((4, 3), "float32"), np.zeros((4,), "int32")))
    assert model.optimizer.built and len(model.optimizer.variables) == 2 + 2 * len(model.trainable_variables)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 0
    assert all(np.array_equal(a, keras.ops.convert_to_numpy(b)) for a, b in zip(before, model.weights))


def test_tensorflow_hidden_answers_for_keras_only_while_tensorflow_is_not_imported():
    from keras.src.utils import module_utils

    lazy = module_utils.tensorflow
    if "tensorflow" in sys.modules:
        with internals.tensorflow_hidden():
            assert lazy.available  # imported: nothing is hidden
        return
    before = lazy._available
    with internals.tensorflow_hidden():
        if before is None:
            assert lazy.available is False
            assert "tensorflow" not in sys.modules
            assert keras.optimizers.SGD(0.1).get_config()["learning_rate"] == pytest.approx(0.1)
    assert lazy._available is before and "tensorflow" not in sys.modules


def test_set_global_seed_without_tensorflow_is_keras_set_random_seed():
    def draws() -> np.ndarray:
        return keras.ops.convert_to_numpy(keras.random.normal((4,)))

    keras.utils.set_random_seed(7)
    expected = (draws(), np.random.rand())
    internals.set_global_seed_without_tensorflow(7)
    actual = (draws(), np.random.rand())
    np.testing.assert_array_equal(actual[0], expected[0])
    assert actual[1] == expected[1]


@pytest.mark.skipif(BACKEND != "jax", reason="JAX's compilation cache")
def test_reset_jax_compilation_cache_makes_jax_read_its_settings_again(tmp_path):
    import jax

    settings = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                "jax_enable_compilation_cache")
    before = {name: getattr(jax.config, name) for name in settings}
    try:
        jax.config.update("jax_enable_compilation_cache", True)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_compilation_cache_dir", str(tmp_path))
        internals.reset_jax_compilation_cache()
        jax.jit(lambda x: x * 3.0 + 1.0)(np.arange(3.0)).block_until_ready()
        assert any(tmp_path.iterdir()), "the new folder was not used: JAX kept its earlier decision"
    finally:
        for name, value in before.items():
            jax.config.update(name, value)
        internals.reset_jax_compilation_cache()


@pytest.mark.skipif(BACKEND != "torch", reason="PyTorch's multi-tensor kernels")
@pytest.mark.parametrize("name", internals.FOREACH_OPERATIONS)
def test_foreach_operations_are_the_per_tensor_operations(name):
    import torch

    xs = [torch.tensor([1.5, -2.0, 0.25]), torch.tensor([[0.5], [3.0]])]
    ys = [torch.tensor([0.5, 4.0, -1.0]), torch.tensor([[2.0], [-0.5]])]
    zs = [torch.tensor([2.0, 0.5, 4.0]), torch.tensor([[1.0], [8.0]])]
    one = {"abs": torch.abs, "sign_": torch.sign, "sqrt": lambda x: torch.sqrt(x.abs()),
           "sqrt_": lambda x: torch.sqrt(x.abs())}
    two = {"add": lambda x, y: x + 2.0 * y, "add_": lambda x, y: x + 2.0 * y, "div_": torch.div,
           "lerp": lambda x, y: torch.lerp(x, y, 0.25), "lerp_": lambda x, y: torch.lerp(x, y, 0.25),
           "maximum_": torch.maximum, "mul": torch.mul, "mul_": torch.mul, "sub_": torch.sub}
    three = {"addcdiv_": lambda x, y, z: x + 0.5 * y / z, "addcmul": lambda x, y, z: x + 0.5 * y * z,
             "addcmul_": lambda x, y, z: x + 0.5 * y * z}
    keywords = {"add": {"alpha": 2.0}, "add_": {"alpha": 2.0}, "addcdiv_": {"value": 0.5},
                "addcmul": {"value": 0.5}, "addcmul_": {"value": 0.5}}
    operation = getattr(internals.foreach, name)
    inputs = [[x.abs() for x in xs]] if name.startswith("sqrt") else [[x.clone() for x in xs]]
    if name in one:
        expected = [one[name](x) for x in xs]
    elif name in two:
        inputs.append(ys)
        expected = [two[name](x, y) for x, y in zip(xs, ys)]
        if name.startswith("lerp"):
            inputs.append(0.25)
    else:
        inputs += [ys, zs]
        expected = [three[name](x, y, z) for x, y, z in zip(xs, ys, zs)]
    result = operation(*inputs, **keywords.get(name, {}))
    actual = inputs[0] if name.endswith("_") else result
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e)
    with pytest.raises(AttributeError, match="FOREACH_OPERATIONS"):
        internals.foreach.norm  # noqa: B018
