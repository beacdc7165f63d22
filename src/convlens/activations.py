"""Activations by Keras name (``convlens.activations.get("relu")``).

The functions live in :mod:`convlens.ops.activations`.
"""

from convlens.ops.activations import (
    ACTIVATIONS,
    Activation,
    gelu,
    leaky_relu,
    linear,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from convlens.ops.activations import get_activation as get

__all__ = ["ACTIVATIONS", "Activation", "gelu", "get", "leaky_relu", "linear", "relu", "sigmoid", "softmax", "tanh"]
