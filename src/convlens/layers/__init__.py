"""Keras-style layers (see :mod:`convlens.layers.base` for the contract)."""

from convlens.layers.base import LAYER_REGISTRY, Layer, register

__all__ = ["LAYER_REGISTRY", "Layer", "register"]
