"""Keras-style layers (see :mod:`convlens.layers.base` for the contract)."""

from convlens.layers.base import LAYER_REGISTRY, Layer, register
from convlens.layers.conv import Conv1D, Conv2D, DepthwiseConv2D
from convlens.layers.conv_transpose import Conv2DTranspose, SeparableConv2D
from convlens.layers.core import Activation, Dense, Dropout, Flatten, Input, InputLayer, ReLU, Softmax
from convlens.layers.merging import Add, Average, Concatenate, Multiply, Subtract
from convlens.layers.normalization import BatchNormalization, LayerNormalization
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
from convlens.layers.preprocessing import RandomFlip, RandomTranslation, Rescaling
from convlens.layers.regularization import SpatialDropout2D
from convlens.layers.reshaping import Cropping2D, UpSampling2D, ZeroPadding1D, ZeroPadding2D
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
    "Conv2DTranspose",
    "Cropping2D",
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
    "LayerNormalization",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "Multiply",
    "RandomFlip",
    "RandomTranslation",
    "ReLU",
    "Rescaling",
    "SeparableConv2D",
    "Softmax",
    "SpatialDropout2D",
    "Subtract",
    "UpSampling2D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "register",
]
