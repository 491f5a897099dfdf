"""Metrics of the lab's problems beyond Keras's own, as functions ``metric(y_true, y_pred)``.

A function (not a ``keras.metrics.Metric`` instance) holds no state, so one ``Problem`` can pass
it to every model it compiles; Keras averages it over an epoch as it does the loss, and names the
column after the function (``bits_per_character``, ``val_bits_per_character``).
"""

from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="lab")
def bits_per_character(y_true, y_pred):
    """Cross-entropy of the next character in bits: −log₂ p(true character) = loss / ln 2.

    ``y_pred`` are probabilities (a softmax), ``y_true`` the integer codes, as for
    ``sparse_categorical_crossentropy``; averaged over positions like the loss.
    """
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred) / math.log(2.0)
