"""Run a Keras optimiser on a test function and record where it goes.

The point is a ``keras.Variable`` of shape ``(dimension,)``; each step takes the autodiff gradient
of the function at the point and calls ``optimizer.apply([gradient], [variable])`` -- exactly what
``model.fit`` does with a model's weights, so any Keras optimiser (the lab's or a built-in) can be
traced. The whole run is compiled once per call so that hundreds of steps take milliseconds:

- TensorFlow: one ``tf.function`` with a ``tf.GradientTape`` per step inside a graph loop;
- JAX: ``jax.value_and_grad`` of the function and ``optimizer.stateless_apply`` inside
  ``jax.lax.scan``, jitted; the optimiser's and the point's variables are written back at the end;
- any other backend: the same step in a plain Python loop (eager).

``evaluated=True`` records, after every step, the point the optimiser says to evaluate instead of
the variable it steps: its ``evaluation_weights([variable])`` (the lab's averaged-iterate
protocol; for the schedule-free optimisers the average ``x``, while the variable holds the
interpolation ``y`` where the gradient is taken). An optimiser without that method is recorded as
without the flag.
"""

from __future__ import annotations

import functools

from collections.abc import Callable, Sequence
from typing import NamedTuple

import keras
import numpy as np


class Trajectory(NamedTuple):
    """Positions visited (``steps + 1`` rows, the start first) and the function value at each."""

    positions: np.ndarray  # (steps + 1, dimension), float64
    losses: np.ndarray  # (steps + 1,), float64


def divergence_step(losses: Sequence[float], minimum_value: float = 0.0, growth: float = 10.0) -> int | None:
    """The first step at which a run counts as diverged, or ``None`` if it never does.

    A run diverges when its loss stops being finite or its gap to the minimum, ``f − f*``, grows to
    more than ``growth`` times the gap at the start (at least ``growth`` in absolute terms, so a
    run that starts at the minimum is not flagged for rounding noise).
    """
    gaps = np.asarray(losses, dtype=np.float64) - minimum_value
    limit = growth * max(float(gaps[0]), 1.0) if np.isfinite(gaps[0]) else np.inf
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(gaps) | (gaps > limit)
    return int(np.argmax(bad)) if bad.any() else None


def descend(
    function: Callable[[object], object],
    optimizer: keras.optimizers.Optimizer,
    start: Sequence[float],
    steps: int,
    *,
    dtype: str = "float32",
    evaluated: bool = False,
) -> Trajectory:
    """Take ``steps`` optimiser steps on ``function`` from ``start``.

    Args:
        function: maps a point (a tensor of shape ``(dimension,)``) to a scalar, in ``keras.ops``
            (a :class:`lab.surfaces.Surface` is such a function).
        optimizer: a fresh, unbuilt Keras optimiser; it is built on the point variable.
        start: the starting point, one number per dimension.
        steps: number of steps, >= 0.
        dtype: the point's dtype ("float32"; "float64" where the backend allows it).
        evaluated: record the optimiser's evaluation point (``evaluation_weights``) after each
            step rather than the variable it steps (see the module docstring).

    ``losses[i]`` is the function at ``positions[i]``. Non-finite values are not an error: a
    diverging run simply records inf/nan positions.
    """
    if steps < 0:
        raise ValueError(f"`steps` must be >= 0, got {steps!r}.")
    start = np.asarray(start, dtype=np.float64).reshape(-1)
    variable = keras.Variable(start, dtype=dtype, name="point")
    optimizer.build([variable])
    point = functools.partial(evaluation_point, optimizer, variable) if evaluated else None
    backend = keras.backend.backend()
    if backend == "tensorflow":
        positions, losses = _descend_tensorflow(function, optimizer, variable, steps, point)
    elif backend == "jax":
        positions, losses = _descend_jax(function, optimizer, variable, steps, point)
    else:
        positions, losses = _descend_eager(function, optimizer, variable, steps, point)
    positions = np.concatenate([start[None, :].astype(np.float64), np.asarray(positions, np.float64)])
    positions = positions.reshape(steps + 1, start.size)
    losses = np.asarray(losses, np.float64).reshape(-1)
    if point is None:  # the loss of each step's starting point, then of the last point
        losses = np.append(losses, np.float64(keras.ops.convert_to_numpy(function(variable.value))))
    else:  # the loss at each recorded point, after the loss at the start
        first = keras.ops.convert_to_numpy(function(keras.ops.convert_to_tensor(start.astype(dtype))))
        losses = np.concatenate([[np.float64(first)], losses])
    return Trajectory(positions, losses)


def evaluation_point(optimizer: keras.optimizers.Optimizer, variable: keras.Variable):
    """The value to evaluate ``variable`` at: the optimiser's ``evaluation_weights([variable])``
    where it has that method (an averaged iterate), else the variable's own value."""
    if hasattr(optimizer, "evaluation_weights"):
        return optimizer.evaluation_weights([variable])[0]
    return variable.value


def _descend_tensorflow(function, optimizer, variable, steps, point):
    import tensorflow as tf

    dimension = variable.shape[0]

    def run(count):
        positions = tf.TensorArray(variable.dtype, size=count, element_shape=(dimension,))
        losses = tf.TensorArray(variable.dtype, size=count, element_shape=())
        for index in tf.range(count):
            with tf.GradientTape() as tape:
                loss = function(variable.value)
            gradient = tape.gradient(loss, variable.value)
            optimizer.apply([gradient], [variable])
            if point is None:
                recorded = variable.value
            else:
                recorded = tf.convert_to_tensor(point())
                loss = function(recorded)
            losses = losses.write(index, loss)
            positions = positions.write(index, recorded)
        return positions.stack(), losses.stack()

    if steps == 0:
        return np.zeros((0, dimension)), np.zeros((0,))
    # A partial has no __code__, so TensorFlow keys its retracing statistics on this object and
    # does not warn when many trajectories (each its own graph) are traced one after another.
    compiled = tf.function(functools.partial(run))
    positions, losses = compiled(tf.constant(steps))
    return positions.numpy(), losses.numpy()


def _descend_jax(function, optimizer, variable, steps, evaluation):
    import jax

    value_and_grad = jax.value_and_grad(lambda point: function(point))

    def step(carry, _):
        point, optimizer_values = carry
        loss, gradient = value_and_grad(point)
        (point,), optimizer_values = optimizer.stateless_apply(optimizer_values, [gradient], [point])
        recorded = point
        if evaluation is not None:  # read the optimiser's state as it is after this step
            mapping = [(variable, point), *zip(optimizer.variables, optimizer_values)]
            with keras.StatelessScope(state_mapping=mapping):
                recorded = keras.ops.convert_to_tensor(evaluation())
            loss = function(recorded)
        return (point, optimizer_values), (recorded, loss)

    @jax.jit
    def run(point, optimizer_values):
        return jax.lax.scan(step, (point, optimizer_values), None, length=steps)

    if steps == 0:
        return np.zeros((0, variable.shape[0])), np.zeros((0,))
    (point, optimizer_values), (positions, losses) = run(
        variable.value, [v.value for v in optimizer.variables]
    )
    variable.assign(point)
    for slot, value in zip(optimizer.variables, optimizer_values):
        slot.assign(value)
    return np.asarray(positions), np.asarray(losses)


def _descend_eager(function, optimizer, variable, steps, point):  # pragma: no cover - other backends
    positions, losses = [], []
    for _ in range(steps):
        loss, gradient = _value_and_gradient(function, variable)
        optimizer.apply([gradient], [variable])
        recorded = variable.value
        if point is not None:
            recorded = keras.ops.stop_gradient(keras.ops.convert_to_tensor(point()))
            loss = function(recorded)
        losses.append(float(keras.ops.convert_to_numpy(loss)))
        positions.append(keras.ops.convert_to_numpy(recorded))
    return np.asarray(positions).reshape(steps, -1), np.asarray(losses)


def _value_and_gradient(function, variable):  # pragma: no cover - torch backend
    import torch

    point = variable.value.detach().requires_grad_(True)
    loss = function(point)
    (gradient,) = torch.autograd.grad(loss, point)
    return loss.detach(), gradient
