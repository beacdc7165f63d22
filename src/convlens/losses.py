"""Losses by Keras name (``convlens.losses.get('mse')``); the functions live in :mod:`convlens.ops.losses`."""

from convlens.ops.losses import (
    LOSSES,
    Loss,
    binary_crossentropy,
    categorical_crossentropy,
    mean_squared_error,
    sparse_categorical_crossentropy,
)
from convlens.ops.losses import get_loss as get

__all__ = [
    "LOSSES",
    "Loss",
    "binary_crossentropy",
    "categorical_crossentropy",
    "get",
    "mean_squared_error",
    "sparse_categorical_crossentropy",
]
