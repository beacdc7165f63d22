"""Keras-style layers (see :mod:`convlens.layers.base` for the contract)."""

from convlens.layers.base import LAYER_REGISTRY, Layer, register
from convlens.layers.conv import Conv1D, Conv2D, DepthwiseConv2D
from convlens.layers.core import Activation, Dense, Dropout, Flatten, Input, InputLayer, ReLU, Softmax
from convlens.layers.merging import Add, Average, Concatenate, Multiply, Subtract
from convlens.layers.normalization import BatchNormalization
from convlens.layers.pooling import (
    AveragePooling1D,
    AveragePooling2D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    MaxPooling1D,
    MaxPooling2D,
)
from convlens.layers.reshaping import ZeroPadding1D, ZeroPadding2D
from convlens.layers.symbolic import KerasTensor

# Keras's aliases.
MaxPool2D = MaxPooling2D
MaxPool1D = MaxPooling1D
AvgPool2D = AveragePooling2D
AvgPool1D = AveragePooling1D

__all__ = [
    "LAYER_REGISTRY",
    "Activation",
    "Add",
    "Average",
    "AveragePooling1D",
    "AveragePooling2D",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNormalization",
    "Concatenate",
    "Conv1D",
    "Conv2D",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Layer",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "Multiply",
    "ReLU",
    "Softmax",
    "Subtract",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "register",
]
