"""convlens ``Sequential`` -> a plan of standard torch modules (pure NumPy until it is materialised).

Each convlens layer becomes one or more :class:`ModuleSpec` (a torch class name, its arguments, its
tensors in torch layouts, and how to turn those tensors back into the layer's Keras-layout weights).
:func:`convlens.interop.torch.to_module` builds the modules, ``to_state_dict`` names the tensors
``"{index}.{name}"`` like ``nn.Sequential``, and ``load_state_dict`` reads them back through the same plan.

The torch module takes channel-first input, torch's convention ((N, C, H, W)); a Flatten keeps (C, H, W)
order and the next Linear (or per-feature BatchNorm1d) gets its weights permuted so the numbers agree.

Shapes:
    torch module input (N, C, *S), convlens input (N, *S, C); flat features (N, D) in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens.errors import ConfigError
from convlens.geometry import WindowGeometry
from convlens.interop.layout import (
    channels_first_perm,
    conv_kernel_from_channels_first,
    conv_kernel_to_channels_first,
    depthwise_kernel_from_channels_first,
    depthwise_kernel_to_channels_first,
    flatten_index,
)
from convlens.layers.base import Layer
from convlens.models import Sequential

__all__ = ["ACTIVATION_MODULES", "ModuleSpec", "plan_modules"]

# convlens activation name -> (torch.nn class, arguments)
ACTIVATION_MODULES: dict[str, tuple[str, dict[str, Any]]] = {
    "relu": ("ReLU", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "relu6": ("ReLU6", {}),
    "leaky_relu": ("LeakyReLU", {"negative_slope": 0.2}),
    "elu": ("ELU", {}),
    "selu": ("SELU", {}),
    "gelu": ("GELU", {}),
    "silu": ("SiLU", {}),
    "softplus": ("Softplus", {}),
}


@dataclass
class ModuleSpec:
    """One torch module: ``torch.nn.<cls>(**kwargs)`` with ``tensors`` (torch layouts) and their inverse."""

    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    layer: Layer | None = None
    to_weights: Callable[[dict[str, np.ndarray]], list[np.ndarray]] | None = None


class _Plan:
    def __init__(self) -> None:
        self.specs: list[ModuleSpec] = []
        self.index: np.ndarray | None = None  # convlens_flat = torch_flat[index] after a Flatten

    def add(self, cls: str, **kwargs: Any) -> ModuleSpec:
        spec = ModuleSpec(cls, kwargs)
        self.specs.append(spec)
        return spec

    def activation(self, name: str, channel_axis: int, owner: Layer) -> None:
        if name == "linear":
            return
        if name == "softmax":
            self.add("Softmax", dim=channel_axis)
            return
        if name not in ACTIVATION_MODULES:
            raise ConfigError(f"{owner!r}: activation {name!r} has no torch module; supported: {_names()}.")
        cls, kwargs = ACTIVATION_MODULES[name]
        self.add(cls, **kwargs)


def _names() -> str:
    return ", ".join(sorted([*ACTIVATION_MODULES, "softmax", "linear"]))


def _pad_module(plan: _Plan, pads: tuple[tuple[int, int], ...], value: float = 0.0) -> None:
    """torch's pad order is the last axis first: (left, right, top, bottom)."""
    flat = tuple(p for pair in reversed(pads) for p in pair)
    plan.add("ConstantPad1d" if len(pads) == 1 else "ConstantPad2d", padding=flat, value=value)


def _symmetric(pads: tuple[tuple[int, int], ...]) -> tuple[int, ...] | None:
    return tuple(b for b, _ in pads) if all(b == a for b, a in pads) else None


def _conv(plan: _Plan, layer: Any, shape: tuple[int, ...]) -> None:
    geometry = layer.geometry(layer.input_shape)
    depthwise = type(layer).__name__ == "DepthwiseConv2D"
    rank = len(geometry.kernel_size)
    channels = int(shape[-1])
    padding = _symmetric(geometry.pads)
    if padding is None:
        _pad_module(plan, geometry.pads)
        padding = (0,) * rank
    kernel = layer.params["kernel"]
    out = channels * layer.depth_multiplier if depthwise else layer.filters
    spec = plan.add(
        "Conv1d" if rank == 1 else "Conv2d",
        in_channels=channels,
        out_channels=int(out),
        kernel_size=geometry.kernel_size,
        stride=geometry.strides,
        padding=padding,
        dilation=geometry.dilation_rate,
        groups=channels if depthwise else int(layer.groups),
        bias=bool(layer.use_bias),
    )
    spec.tensors["weight"] = (
        depthwise_kernel_to_channels_first(kernel) if depthwise else conv_kernel_to_channels_first(kernel)
    )
    if layer.use_bias:
        spec.tensors["bias"] = layer.params["bias"]
    spec.layer = layer

    def to_weights(t: dict[str, np.ndarray]) -> list[np.ndarray]:
        w = (
            depthwise_kernel_from_channels_first(t["weight"], channels)
            if depthwise
            else conv_kernel_from_channels_first(t["weight"])
        )
        return [w, t["bias"]] if layer.use_bias else [w]

    spec.to_weights = to_weights
    plan.activation(layer.activation.name, 1, layer)


def _pool(plan: _Plan, layer: Any, shape: tuple[int, ...]) -> None:
    spatial = shape[:-1]
    geometry = WindowGeometry.resolve(spatial, layer.pool_size, layer.strides, layer.padding, owner=repr(layer))
    rank = len(spatial)
    cls = ("MaxPool" if layer.kind == "max" else "AvgPool") + f"{rank}d"
    kwargs: dict[str, Any] = {"kernel_size": geometry.kernel_size, "stride": geometry.strides}
    if layer.kind == "avg":
        kwargs["count_include_pad"] = False
    symmetric = _symmetric(geometry.pads)
    kernel = geometry.kernel_size
    if symmetric is not None and all(2 * p <= k for p, k in zip(symmetric, kernel, strict=True)):
        plan.add(cls, padding=symmetric, **kwargs)
        return
    before = tuple(b for b, _ in geometry.pads)
    if (
        all(2 * p <= k for p, k in zip(before, kernel, strict=True))
        and _ceil_sizes(spatial, geometry) == geometry.output_size
    ):
        plan.add(cls, padding=before, ceil_mode=True, **kwargs)  # the partial last window = TF's extra pad
        return
    if layer.kind == "max":  # padded cells never win
        _pad_module(plan, geometry.pads, value=float("-inf"))
        plan.add(cls, **kwargs)
        return
    # torch's AvgPool pads symmetrically: a small module of convlens's own (see interop.torch.AvgPoolSame)
    plan.add("AvgPoolSame", kernel_size=geometry.kernel_size, stride=geometry.strides, pads=geometry.pads)


def _ceil_sizes(spatial: tuple[int, ...], geometry: WindowGeometry) -> tuple[int, ...]:
    sizes = []
    for size, (before, _), k, s in zip(spatial, geometry.pads, geometry.kernel_size, geometry.strides, strict=True):
        out = -(-(size + 2 * before - k) // s) + 1
        sizes.append(out - 1 if (out - 1) * s >= size + before else out)
    return tuple(sizes)


def _batch_norm(plan: _Plan, layer: Any, shape: tuple[int, ...]) -> None:
    if layer._channel_axis != len(shape):
        raise ConfigError(
            f"{layer!r}: torch conversion normalises the last (channel) axis only, got axis={layer.axis}."
        )
    channels = int(shape[-1])
    spec = plan.add(
        "BatchNorm2d" if len(shape) == 3 else "BatchNorm1d",
        num_features=channels,
        eps=float(layer.epsilon),
        momentum=round(1.0 - float(layer.momentum), 12),
        affine=bool(layer.scale and layer.center),
    )
    if layer.scale != layer.center:
        raise ConfigError(f"{layer!r}: torch BatchNorm has both scale and center or neither (affine).")
    index = plan.index if len(shape) == 1 else None
    forward = (lambda v: v) if index is None else (lambda v: _scatter(v, index))
    names = (("weight", "gamma"), ("bias", "beta")) if layer.scale else ()
    for torch_name, name in names:
        spec.tensors[torch_name] = forward(layer.params[name])
    spec.tensors["running_mean"] = forward(layer.state["moving_mean"])
    spec.tensors["running_var"] = forward(layer.state["moving_variance"])
    spec.layer = layer

    def to_weights(t: dict[str, np.ndarray]) -> list[np.ndarray]:
        keys = ["weight", "bias"] if layer.scale else []
        return [t[k] if index is None else t[k][index] for k in [*keys, "running_mean", "running_var"]]

    spec.to_weights = to_weights


def _scatter(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Torch-order array ``t`` with ``t[index] == values`` (axis 0)."""
    out = np.empty_like(values)
    out[index] = values
    return out


def _dense(plan: _Plan, layer: Any, shape: tuple[int, ...]) -> None:
    if len(shape) != 1:
        raise ConfigError(f"{layer!r}: torch conversion needs Dense on flat (N, D) input, got (None, *{shape}).")
    index = plan.index
    plan.index = None
    spec = plan.add("Linear", in_features=int(shape[0]), out_features=int(layer.units), bias=bool(layer.use_bias))
    kernel = layer.params["kernel"]
    spec.tensors["weight"] = np.ascontiguousarray((kernel if index is None else _scatter(kernel, index)).T)
    if layer.use_bias:
        spec.tensors["bias"] = layer.params["bias"]
    spec.layer = layer

    def to_weights(t: dict[str, np.ndarray]) -> list[np.ndarray]:
        k = t["weight"].T
        k = np.ascontiguousarray(k if index is None else k[index])
        return [k, t["bias"]] if layer.use_bias else [k]

    spec.to_weights = to_weights
    plan.activation(layer.activation.name, -1, layer)


def _flatten(plan: _Plan, layer: Layer, shape: tuple[int, ...]) -> None:
    if len(shape) == 1:
        return
    plan.add("Flatten")
    index = flatten_index(shape[:-1], int(shape[-1]))
    plan.index = None if np.array_equal(index, np.arange(index.size)) else index


def _relu(plan: _Plan, layer: Any, shape: tuple[int, ...]) -> None:
    if layer.threshold == 0.0 and layer.max_value is None:
        plan.add("LeakyReLU", negative_slope=layer.negative_slope) if layer.negative_slope else plan.add("ReLU")
    elif layer.threshold == 0.0 and layer.negative_slope == 0.0:
        plan.add("Hardtanh", min_val=0.0, max_val=float(layer.max_value))
    else:
        raise ConfigError(f"{layer!r}: a ReLU with threshold={layer.threshold} and a slope or cap has no torch module.")


def _softmax(plan: _Plan, layer: Any, shape: tuple[int, ...]) -> None:
    rank = len(shape) + 1
    plan.add("Softmax", dim=channels_first_perm(rank)[layer.axis % rank])


def _global_pool(plan: _Plan, layer: Any, shape: tuple[int, ...]) -> None:
    rank = len(shape) - 1
    plan.add(("AdaptiveAvgPool" if layer.kind == "avg" else "AdaptiveMaxPool") + f"{rank}d", output_size=1)
    if not layer.keepdims:
        plan.add("Flatten")


def _dropout(plan: _Plan, layer: Any) -> None:
    plan.add("Dropout", p=float(layer.rate))


TORCH_LAYERS: dict[str, Callable[[_Plan, Any, tuple[int, ...]], None]] = {
    "Conv1D": _conv,
    "Conv2D": _conv,
    "DepthwiseConv2D": _conv,
    "MaxPooling1D": _pool,
    "MaxPooling2D": _pool,
    "AveragePooling1D": _pool,
    "AveragePooling2D": _pool,
    "GlobalMaxPooling1D": _global_pool,
    "GlobalMaxPooling2D": _global_pool,
    "GlobalAveragePooling1D": _global_pool,
    "GlobalAveragePooling2D": _global_pool,
    "BatchNormalization": _batch_norm,
    "Dense": _dense,
    "Flatten": _flatten,
    "Dropout": lambda plan, layer, shape: _dropout(plan, layer),
    "Activation": lambda plan, layer, shape: plan.activation(layer.activation.name, 1 if len(shape) > 1 else -1, layer),
    "ReLU": _relu,
    "Softmax": _softmax,
    "ZeroPadding1D": lambda plan, layer, shape: _pad_module(plan, layer.padding),
    "ZeroPadding2D": lambda plan, layer, shape: _pad_module(plan, layer.padding),
}


def plan_modules(model: Sequential) -> list[ModuleSpec]:
    """The torch modules, in order, that compute what ``model`` computes (on channel-first input).

    Raises:
        ConfigError: for a layer without a torch form, or a model whose output would be a flattened
            multi-channel map (torch's (C, H, W) order differs from convlens's (H, W, C)).
    """
    model._require_built("torch conversion")
    plan = _Plan()
    for layer in model.layers:
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise ConfigError(f"{layer!r}: torch conversion supports data_format='channels_last' only.")
        convert = TORCH_LAYERS.get(type(layer).__name__)
        if convert is None:
            raise ConfigError(
                f"{layer!r}: no torch module for {type(layer).__name__}; supported layers: "
                f"{', '.join(sorted(TORCH_LAYERS))}."
            )
        shape = tuple(int(s) for s in layer.input_shape[1:])  # type: ignore[index, arg-type]
        convert(plan, layer, shape)
    if plan.index is not None:
        raise ConfigError(
            f"{model!r}: the output is a flattened multi-channel map; torch would order it (C, H, W), convlens "
            "(H, W, C). Hint: end with a Dense layer or global pooling."
        )
    return plan.specs
