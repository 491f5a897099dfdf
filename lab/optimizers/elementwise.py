"""Elementwise maximum and minimum that keep the inputs' dtype on every backend.

Keras 3.15's torch backend computes ``ops.maximum`` and ``ops.minimum`` of float64 tensors in
float32 (its ``result_type`` does not recognise torch dtypes and falls back to ``floatx``): a
float64 AMSGrad maximum of 1e57 becomes inf. ``where`` keeps the dtype; NaN propagates as in
``maximum``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


def maximum(a: Any, b: Any) -> Any:
    a, b = ops.convert_to_tensor(a), ops.convert_to_tensor(b, dtype=_dtype_of(a))
    return ops.where(ops.logical_or(a >= b, ops.isnan(a)), a, b)


def minimum(a: Any, b: Any) -> Any:
    a, b = ops.convert_to_tensor(a), ops.convert_to_tensor(b, dtype=_dtype_of(a))
    return ops.where(ops.logical_or(a <= b, ops.isnan(a)), a, b)


def _dtype_of(x: Any) -> str:
    return keras.backend.standardize_dtype(x.dtype)
