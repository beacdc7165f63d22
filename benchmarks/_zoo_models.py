"""The five classic CNNs of benchmarks/zoo.py, written once in Keras code, plus their PyTorch twins.

``build(k, name)`` takes a module with Keras's API (``keras`` itself or ``convlens``: ``k.Sequential``,
``k.layers.*``) and builds the same model in either. ``build_torch(name)`` is the equivalent PyTorch model
(same parameter count, BatchNorm with Keras's epsilon and momentum); zoo.py asserts the counts are equal.
"""

from __future__ import annotations

from typing import Any

MODELS = ("course", "simple_convnet", "lenet5", "vgg_bn", "depthwise_separable")
TITLES = {
    "course": "course (Conv 32 3x3 same relu, MaxPool, Dense 10)",
    "simple_convnet": 'Keras "simple MNIST convnet"',
    "lenet5": "LeNet-5 (5x5, tanh, average pooling)",
    "vgg_bn": "small VGG + BatchNorm (32x32x3)",
    "depthwise_separable": "depthwise-separable (32x32x3)",
}
INPUT_SHAPES = {
    "course": (28, 28, 1),
    "simple_convnet": (28, 28, 1),
    "lenet5": (28, 28, 1),
    "vgg_bn": (32, 32, 3),
    "depthwise_separable": (32, 32, 3),
}


def build(k: Any, name: str) -> Any:
    """The model ``name`` in Keras code, for ``k`` = keras or convlens."""
    L = k.layers

    def conv_bn_relu(filters: int, size: int, **kw: Any) -> list[Any]:
        return [L.Conv2D(filters, size, **kw), L.BatchNormalization(), L.ReLU()]

    def dw_bn_relu(**kw: Any) -> list[Any]:
        return [L.DepthwiseConv2D(3, **kw), L.BatchNormalization(), L.ReLU()]

    body: list[Any]
    if name == "course":
        body = [L.Conv2D(32, 3, padding="same", activation="relu"), L.MaxPooling2D(2), L.Flatten()]
    elif name == "simple_convnet":
        body = [
            L.Conv2D(32, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dropout(0.5),
        ]
    elif name == "lenet5":
        body = [
            L.Conv2D(6, 5, padding="same", activation="tanh"),
            L.AveragePooling2D(2),
            L.Conv2D(16, 5, activation="tanh"),
            L.AveragePooling2D(2),
            L.Flatten(),
            L.Dense(120, activation="tanh"),
            L.Dense(84, activation="tanh"),
        ]
    elif name == "vgg_bn":
        body = [
            *conv_bn_relu(32, 3, padding="same"),
            *conv_bn_relu(32, 3, padding="same"),
            L.MaxPooling2D(2),
            *conv_bn_relu(64, 3, padding="same"),
            *conv_bn_relu(64, 3, padding="same"),
            L.MaxPooling2D(2),
            L.Flatten(),
        ]
    elif name == "depthwise_separable":
        body = [
            L.Conv2D(32, 3, strides=2),
            *dw_bn_relu(),
            *conv_bn_relu(64, 1),
            *dw_bn_relu(strides=2),
            *conv_bn_relu(128, 1),
            L.GlobalAveragePooling2D(),
        ]
    else:
        raise ValueError(f"unknown model {name!r}; one of {MODELS}")
    return k.Sequential([L.Input(shape=INPUT_SHAPES[name]), *body, L.Dense(10, activation="softmax")])


def build_torch(name: str) -> Any:
    """The PyTorch twin of :func:`build` (logits out: CrossEntropyLoss applies the softmax)."""
    import torch
    from torch import nn

    def bn(c: int) -> nn.Module:
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)  # Keras: epsilon 1e-3, momentum 0.99

    def conv_bn_relu(cin: int, cout: int, size: int, padding: int = 0) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, size, padding=padding), bn(cout), nn.ReLU()]

    def dw_bn_relu(c: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(c, c, 3, stride=stride, groups=c), bn(c), nn.ReLU()]

    if name == "course":
        layers = [nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6272, 10)]
    elif name == "simple_convnet":
        layers = [
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(1600, 10),
        ]
    elif name == "lenet5":
        layers = [
            nn.Conv2d(1, 6, 5, padding=2),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(400, 120),
            nn.Tanh(),
            nn.Linear(120, 84),
            nn.Tanh(),
            nn.Linear(84, 10),
        ]
    elif name == "vgg_bn":
        layers = [
            *conv_bn_relu(3, 32, 3, 1),
            *conv_bn_relu(32, 32, 3, 1),
            nn.MaxPool2d(2),
            *conv_bn_relu(32, 64, 3, 1),
            *conv_bn_relu(64, 64, 3, 1),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4096, 10),
        ]
    elif name == "depthwise_separable":
        layers = [
            nn.Conv2d(3, 32, 3, stride=2),
            *dw_bn_relu(32),
            *conv_bn_relu(32, 64, 1),
            *dw_bn_relu(64, stride=2),
            *conv_bn_relu(64, 128, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, 10),
        ]
    else:
        raise ValueError(f"unknown model {name!r}; one of {MODELS}")
    return torch.nn.Sequential(*layers)


def torch_param_count(model: Any) -> int:
    """Weights as Keras counts them: parameters plus BatchNorm's moving statistics."""
    params = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return int(params + stats)
