"""Test functions for watching optimisers move: 2-D surfaces and 1-D curves.

Each :class:`Surface` is written once, with ``keras.ops``, as a function of its coordinates, so
the same definition gives an autodiff gradient on a ``keras.Variable`` (any backend) and the
values on a plotting grid. A surface knows its minima (the global one first) and a sensible
plotting box.

=================  ==========================  ===============================  ==============
name               f                           minima                           notebook
=================  ==========================  ===============================  ==============
``bowl``           x² + y²                     (0, 0)                           000, 001
``ravine``         x² + 10 y²                  (0, 0)                           000
``rosenbrock``     (1 − x)² + 100 (y − x²)²    (1, 1)                           002
``beale``          see :func:`beale`           (3, 0.5)                         --
``nonconvex``      x⁴ − 5x³ + 4x² + 3x         x = 3 (global), x = −0.25        001
``quadratic``      x² + 5                      x = 0                            001
=================  ==========================  ===============================  ==============
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from keras import ops


def bowl(x, y):
    """f(x, y) = x² + y²: round, convex; the minimum is at the origin."""
    return ops.square(x) + ops.square(y)


def ravine(x, y):
    """f(x, y) = x² + 10 y²: ten times steeper across than along (condition number 10)."""
    return ops.square(x) + 10.0 * ops.square(y)


def rosenbrock(x, y, a: float = 1.0, b: float = 100.0):
    """f(x, y) = (a − x)² + b (y − x²)²: a curved, flat-bottomed valley; minimum at (a, a²)."""
    return ops.square(a - x) + b * ops.square(y - ops.square(x))


def beale(x, y):
    """f(x, y) = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²; minimum at (3, 0.5)."""
    return (
        ops.square(1.5 - x + x * y)
        + ops.square(2.25 - x + x * ops.square(y))
        + ops.square(2.625 - x + x * y * ops.square(y))
    )


def nonconvex(x):
    """f(x) = x⁴ − 5x³ + 4x² + 3x: f'(x) = (x − 1)(4x² − 11x − 3), minima at −0.25 and 3, maximum at 1."""
    square = ops.square(x)
    return ops.square(square) - 5.0 * square * x + 4.0 * square + 3.0 * x


def quadratic(x):
    """f(x) = x² + 5: the 1-D parabola of notebook 001; minimum value 5 at x = 0."""
    return ops.square(x) + 5.0


@dataclass(frozen=True)
class Surface:
    """A test function with its minima and plotting box.

    ``function`` takes one coordinate per dimension (tensors or arrays of any matching shape) and
    is written with ``keras.ops``; calling the surface on a point of shape ``(dimension,)`` gives
    the scalar value at that point.
    """

    name: str
    formula: str
    function: Callable[..., object]
    dimension: int
    minima: tuple[tuple[float, ...], ...]
    box: tuple[tuple[float, float], ...]

    def __call__(self, point):
        """f(point) for a point of shape ``(dimension,)``: a scalar tensor of the backend."""
        return self.function(*(point[i] for i in range(self.dimension)))

    @property
    def minimum_value(self) -> float:
        """f at the global minimum (the first of ``minima``)."""
        return float(self.values(*(np.asarray([c]) for c in self.minima[0]))[0])

    def values(self, *coordinates: np.ndarray) -> np.ndarray:
        """f evaluated elementwise on NumPy coordinate arrays (e.g. a meshgrid), as a float64 array."""
        if len(coordinates) != self.dimension:
            raise ValueError(f"{self.name} takes {self.dimension} coordinate(s), got {len(coordinates)}.")
        # backend tensors, not NumPy arrays: PyTorch refuses ``ndarray - Tensor`` (NumPy's operator
        # runs first and does not defer to a torch tensor), which a surface's ``a - x`` would be
        tensors = [ops.convert_to_tensor(np.asarray(c, dtype=np.float64)) for c in coordinates]
        return np.asarray(ops.convert_to_numpy(self.function(*tensors)), dtype=np.float64)

    def grid(self, resolution: int = 200) -> tuple[np.ndarray, ...]:
        """Coordinates over the plotting box and f on them: ``(xs, f)`` in 1-D, ``(X, Y, f)`` in 2-D."""
        axes = [np.linspace(low, high, resolution) for low, high in self.box]
        if self.dimension == 1:
            return axes[0], self.values(axes[0])
        mesh_x, mesh_y = np.meshgrid(*axes)
        return mesh_x, mesh_y, self.values(mesh_x, mesh_y)

    def distance_to_minimum(self, point: Sequence[float]) -> float:
        """Euclidean distance from ``point`` to the nearest of the minima (nan/inf when it diverged)."""
        point = np.asarray(point, dtype=np.float64).reshape(-1)
        return float(min(np.linalg.norm(point - np.asarray(m)) for m in self.minima))


SURFACES: dict[str, Surface] = {
    "bowl": Surface("bowl", "x² + y²", bowl, 2, ((0.0, 0.0),), ((-5.0, 5.0), (-5.0, 5.0))),
    "ravine": Surface("ravine", "x² + 10y²", ravine, 2, ((0.0, 0.0),), ((-10.0, 10.0), (-5.0, 5.0))),
    "rosenbrock": Surface(
        "rosenbrock", "(1 − x)² + 100(y − x²)²", rosenbrock, 2, ((1.0, 1.0),), ((-2.0, 2.0), (-1.0, 3.0))
    ),
    "beale": Surface(
        "beale",
        "(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²",
        beale,
        2,
        ((3.0, 0.5),),
        ((-4.5, 4.5), (-4.5, 4.5)),
    ),
    "nonconvex": Surface("nonconvex", "x⁴ − 5x³ + 4x² + 3x", nonconvex, 1, ((3.0,), (-0.25,)), ((-2.0, 5.0),)),
    "quadratic": Surface("quadratic", "x² + 5", quadratic, 1, ((0.0,),), ((-10.0, 10.0),)),
}


def get_surface(name: str) -> Surface:
    """The surface called ``name``; ``ValueError`` lists the valid names."""
    try:
        return SURFACES[name]
    except KeyError:
        raise ValueError(f"unknown surface {name!r}; valid surfaces: {', '.join(SURFACES)}") from None


__all__ = [
    "SURFACES",
    "Surface",
    "beale",
    "bowl",
    "get_surface",
    "nonconvex",
    "quadratic",
    "ravine",
    "rosenbrock",
]
