"""Build a convlens ``Sequential`` from a chain of channel-first operations (ONNX nodes, torch modules).

The importers translate each node or module into one call here; this class alone tracks how the
source's tensor relates to convlens's channels-last one, so the layout logic exists once:

* ``rel``: the current convlens tensor is ``source.transpose(rel)`` (channel-first maps: (0, 2, 3, 1));
* ``index``: after a Flatten of a channel-first map, ``convlens_flat = source_flat[:, index]``; a
  following Dense or per-feature BatchNorm absorbs it by permuting its weights (exact, no extra op).

Shapes:
    source tensors (N, C, *S) for maps, (N, D) after Flatten; convlens tensors (N, *S, C) and (N, D).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from convlens.errors import ConfigError, ShapeError
from convlens.geometry import WindowGeometry
from convlens.interop.layout import (
    channels_first_perm,
    conv_kernel_from_channels_first,
    inverse_perm,
    padding_from_pads,
)
from convlens.layers.base import Layer
from convlens.models import Sequential

__all__ = ["FOLDABLE_ACTIVATIONS", "ChainBuilder"]

# Activations a Conv/Dense layer can absorb (Keras's activation= argument).
FOLDABLE_ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax", "relu6", "elu", "selu", "softplus", "gelu", "silu")


class ChainBuilder:
    """Accumulates convlens layers (with weights) for a chain read from a channel-first source.

    Args:
        input_shape: the convlens input shape without the batch axis (channels-last).
        channels_first: whether the source's input is channel-first (torch, most ONNX files).
        source: what is being converted, for error messages ("ONNX file 'm.onnx'").
    """

    def __init__(self, input_shape: Sequence[int], *, channels_first: bool, source: str) -> None:
        from convlens.layers import Input

        self.source = source
        self.model = Sequential([Input(shape=tuple(int(s) for s in input_shape))])
        rank = len(input_shape) + 1
        self.rel: tuple[int, ...] = channels_first_perm(rank) if channels_first else tuple(range(rank))
        self.index: np.ndarray | None = None
        self._fresh: Layer | None = None  # the layer whose output is the current tensor (for folding)

    # ----- state ------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The current convlens tensor's shape without the batch axis."""
        out = self.model.output_shape if self.model.layers else self.model.input_shape
        return tuple(int(s) for s in out[1:])  # type: ignore[arg-type, index]

    @property
    def source_shape(self) -> tuple[int, ...]:
        """The current source tensor's shape without the batch axis."""
        full = (1, *self.shape)
        source = [0] * len(full)
        for j, axis in enumerate(self.rel):
            source[axis] = full[j]
        return tuple(source[1:])

    def _require_channels_first(self, where: str, what: str) -> None:
        rank = len(self.shape) + 1
        if rank < 3 or self.rel != channels_first_perm(rank) or self.index is not None:
            raise ConfigError(
                f"{self.source}: {where} applies {what} to a tensor of shape {self.source_shape} that is not a "
                "channel-first map here; convlens converts chains of channel-first convolution and pooling."
            )

    def add(self, layer: Layer, weights: Sequence[np.ndarray] | None = None, where: str = "") -> Layer:
        """Append ``layer`` and set its ``weights`` (Keras layouts)."""
        try:
            self.model.add(layer)
            if weights is not None:
                layer.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
        except (ShapeError, ConfigError) as exc:
            raise type(exc)(f"{self.source}: {where}: {exc}") from None
        self._fresh = layer
        return layer

    def _spatial(self) -> tuple[int, ...]:
        return self.shape[:-1]

    # ----- layers -----------------------------------------------------------------------------------
    def conv(
        self,
        weight: np.ndarray,
        bias: np.ndarray | None,
        *,
        strides: Sequence[int],
        pads: Sequence[tuple[int, int]],
        dilation: Sequence[int],
        groups: int,
        where: str,
    ) -> None:
        """A channel-first convolution, ``weight`` (F, C / G, K...)."""
        from convlens.layers import Conv1D, Conv2D

        self._require_channels_first(where, "a convolution")
        rank = weight.ndim - 2
        kernel_size = weight.shape[2:]
        padding = padding_from_pads(tuple(pads), self._spatial(), kernel_size, strides, dilation)
        channels = self.shape[-1]
        if rank == 2 and groups == channels > 1 and weight.shape[1] == 1:
            from convlens.interop.layout import depthwise_kernel_from_channels_first
            from convlens.layers import DepthwiseConv2D

            depthwise = DepthwiseConv2D(
                tuple(int(k) for k in kernel_size),
                strides=tuple(int(s) for s in strides),
                padding=padding,
                depth_multiplier=int(weight.shape[0]) // channels,
                dilation_rate=tuple(int(d) for d in dilation),
                use_bias=bias is not None,
            )
            kernel = depthwise_kernel_from_channels_first(np.asarray(weight), channels)
            self.add(depthwise, [kernel] if bias is None else [kernel, np.asarray(bias).reshape(-1)], where)
            return
        cls = Conv1D if rank == 1 else Conv2D
        layer = cls(
            int(weight.shape[0]),
            tuple(int(k) for k in kernel_size),
            strides=tuple(int(s) for s in strides),
            padding=padding,
            dilation_rate=tuple(int(d) for d in dilation),
            groups=int(groups),
            use_bias=bias is not None,
        )
        kernel = conv_kernel_from_channels_first(np.asarray(weight))
        self.add(layer, [kernel] if bias is None else [kernel, np.asarray(bias).reshape(-1)], where)

    def pool(
        self,
        kind: str,
        pool_size: Sequence[int],
        strides: Sequence[int],
        pads: Sequence[tuple[int, int]],
        *,
        count_include_pad: bool,
        ceil_mode: bool = False,
        where: str,
    ) -> None:
        """Max or average pooling (``kind`` 'max' / 'avg') with explicit per-side ``pads``.

        ``ceil_mode`` (torch, ONNX) keeps a last, partial window: the same as more padding after.
        """
        from convlens import layers

        self._require_channels_first(where, "pooling")
        rank = len(pool_size)
        pads = tuple((int(b), int(a)) for b, a in pads)
        if ceil_mode:
            pads = self._ceil_pads(pads, pool_size, strides, kind == "avg" and count_include_pad, where)
        padding = padding_from_pads(pads, self._spatial(), pool_size, strides, (1,) * rank)
        if kind == "avg" and count_include_pad and padding != "valid":
            # Padded zeros that count in the mean: exactly a ZeroPadding layer, then 'valid' pooling.
            zero_pad = layers.ZeroPadding1D(pads[0]) if rank == 1 else layers.ZeroPadding2D(pads)
            self.add(zero_pad, where=where)
            padding = "valid"
        if not isinstance(padding, str):
            same = WindowGeometry.resolve(self._spatial(), tuple(pool_size), tuple(strides), "same").pads
            raise ConfigError(
                f"{self.source}: {where}: pooling with pads {pads} on a {self._spatial()} map is not supported; "
                f"convlens pools with 'valid' (no pads) or TensorFlow's 'same' (pads {same} here)."
            )
        names = {("max", 1): layers.MaxPooling1D, ("max", 2): layers.MaxPooling2D}
        names.update({("avg", 1): layers.AveragePooling1D, ("avg", 2): layers.AveragePooling2D})
        cls = names[(kind, rank)]
        self.add(cls(tuple(pool_size), tuple(strides), padding), where=where)

    def _ceil_pads(
        self, pads: Any, pool_size: Sequence[int], strides: Sequence[int], counted: bool, where: str
    ) -> tuple[tuple[int, int], ...]:
        result = []
        for size, k, s, (before, after) in zip(self._spatial(), pool_size, strides, pads, strict=True):
            out = -(-(size + before + after - k) // s) + 1
            if (out - 1) * s >= size + before:  # torch/ONNX: the last window starts inside the input
                out -= 1
            extra = max((out - 1) * s + k - (size + before + after), 0)
            if extra and counted:
                raise ConfigError(
                    f"{self.source}: {where}: ceil_mode with padding counted in the mean is not supported."
                )
            result.append((before, after + extra))
        return tuple(result)

    def global_pool(self, kind: str, *, keepdims: bool, where: str) -> None:
        """Global max / average pooling over every spatial axis."""
        from convlens import layers

        self._require_channels_first(where, "global pooling")
        rank = len(self.shape) - 1
        table = {("max", 1): layers.GlobalMaxPooling1D, ("max", 2): layers.GlobalMaxPooling2D}
        table.update({("avg", 1): layers.GlobalAveragePooling1D, ("avg", 2): layers.GlobalAveragePooling2D})
        self.add(table[(kind, rank)](keepdims=keepdims), where=where)
        if not keepdims:
            self.rel = (0, 1)

    def zero_pad(self, pads: Sequence[tuple[int, int]], where: str) -> None:
        """Zero padding of the spatial axes, ``pads`` ((before, after), ...)."""
        from convlens import layers

        self._require_channels_first(where, "zero padding")
        pads = tuple((int(b), int(a)) for b, a in pads)
        if len(pads) == 1:
            self.add(layers.ZeroPadding1D(pads[0]), where=where)
        else:
            self.add(layers.ZeroPadding2D(pads), where=where)

    def batch_norm(
        self, gamma: Any, beta: Any, mean: Any, var: Any, *, epsilon: float, momentum: float, where: str
    ) -> None:
        """Inference batch normalisation over the channel axis (maps) or the features (flat)."""
        from convlens.layers import BatchNormalization

        if len(self.shape) > 1:
            self._require_channels_first(where, "batch normalisation")
        vectors = [np.asarray(v, dtype=np.float32).reshape(-1) for v in (gamma, beta, mean, var)]
        if self.index is not None:
            vectors = [v[self.index] for v in vectors]
        self.add(BatchNormalization(epsilon=float(epsilon), momentum=float(momentum)), vectors, where)

    def flatten(self, where: str) -> None:
        """Flatten to (N, D) in the source's order (absorbed later through ``index``)."""
        from convlens.layers import Flatten

        if len(self.shape) == 1:
            return
        source = self.source_shape
        order = np.arange(int(np.prod(source))).reshape(1, *source).transpose(self.rel).reshape(-1)
        self.add(Flatten(), where=where)
        self.rel = (0, 1)
        self.index = None if np.array_equal(order, np.arange(order.size)) else order

    def dense(self, kernel: np.ndarray, bias: np.ndarray | None, where: str) -> None:
        """A Dense layer from a (D, U) ``kernel`` reading the source's features."""
        from convlens.layers import Dense

        if len(self.shape) != 1:
            raise ConfigError(
                f"{self.source}: {where} multiplies a tensor of shape {self.source_shape}; convlens converts "
                "matrix products of flat (N, D) features. Hint: flatten before it."
            )
        kernel = np.asarray(kernel)
        if kernel.shape[0] != self.shape[0]:
            raise ShapeError(
                f"{self.source}: {where} expects {kernel.shape[0]} input features, the tensor has {self.shape[0]}."
            )
        if self.index is not None:
            kernel = kernel[self.index]
            self.index = None
        layer = Dense(int(kernel.shape[1]), use_bias=bias is not None)
        self.add(layer, [kernel] if bias is None else [kernel, np.asarray(bias).reshape(-1)], where)

    def add_bias(self, value: np.ndarray, where: str) -> bool:
        """Fold a constant added right after a bias-free Dense into its bias; False when not possible."""
        from convlens.layers import Dense

        layer = self._fresh
        value = np.asarray(value)
        if not isinstance(layer, Dense) or layer.use_bias or value.size != layer.units:
            return False
        if layer.activation.name != "linear":
            return False
        units = layer.units
        kernel = layer.get_weights()[0]
        replacement = Dense(units, use_bias=True, name=layer.name)
        self.model.pop()
        self.add(replacement, [kernel, value.reshape(units)], where)
        return True

    def activation(self, name: str, where: str, **options: Any) -> None:
        """An element-wise activation: folded into the Conv/Dense just before it when possible."""
        from convlens import layers
        from convlens.ops.activations import get_activation

        layer = self._fresh
        if (
            not options
            and name in FOLDABLE_ACTIVATIONS
            and getattr(getattr(layer, "activation", None), "name", None) == "linear"
            and (name != "softmax" or len(self.shape) == 1)
        ):
            layer.activation = get_activation(name)  # type: ignore[union-attr]
            self._fresh = None
            return
        if name == "relu" or options:
            self.add(layers.ReLU(**options), where=where)
        else:
            self.add(layers.Activation(name), where=where)
        self._fresh = None

    def softmax(self, source_axis: int, where: str) -> None:
        """Softmax along the source's ``source_axis`` (mapped to the convlens axis)."""
        from convlens.layers import Softmax

        rank = len(self.shape) + 1
        axis = self.rel.index(source_axis % rank)
        if axis == 0:
            raise ConfigError(f"{self.source}: {where}: softmax over the batch axis is not supported.")
        if axis == rank - 1:
            self.activation("softmax", where)
            return
        self.add(Softmax(axis=axis), where=where)
        self._fresh = None

    def transpose(self, perm: Sequence[int]) -> None:
        """The source transposes its tensor: only the relation changes (no layer)."""
        self.rel = tuple(inverse_perm(perm)[r] for r in self.rel)

    def finish(self, where: str) -> Sequential:
        """The model; refuses an output whose order would differ from the source's."""
        if self.index is not None:
            raise ConfigError(
                f"{self.source}: the output is a flattened multi-channel map ({where}); convlens flattens "
                "(H, W, C), the source (C, H, W), so the outputs would be ordered differently. Hint: end with "
                "a Dense/Linear layer or global pooling."
            )
        return self.model
