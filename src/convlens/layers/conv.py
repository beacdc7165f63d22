"""Convolution layers: ``Conv1D``, ``Conv2D``, ``DepthwiseConv2D`` (Keras arguments and weight layouts).

Shapes (channels_last):
    Conv2D: (N, H, W, C) -> (N, OH, OW, filters); kernel (KH, KW, C / groups, filters); bias (filters,)
    Conv1D: (N, L, C) -> (N, OL, filters); kernel (K, C / groups, filters)
    DepthwiseConv2D: (N, H, W, C) -> (N, OH, OW, C * depth_multiplier); kernel (KH, KW, C, depth_multiplier)
    with OH from :class:`convlens.geometry.WindowGeometry` ('same': ceil(H / SH); 'valid': (H - EH) // SH + 1).

>>> import numpy as np
>>> layer = Conv2D(32, (3, 3), padding="same", activation="relu", name="c")
>>> layer.compute_output_shape((None, 28, 28, 1))
(None, 28, 28, 32)
>>> layer(np.zeros((2, 28, 28, 1), np.float32)).shape
(2, 28, 28, 32)
>>> layer.count_params()  # 3*3*1*32 + 32
320
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens import initializers
from convlens.errors import ShapeError, StateError, check_bool, check_int, normalize_tuple
from convlens.geometry import WindowGeometry, normalize_padding
from convlens.layers.base import Layer, Shape, register
from convlens.ops._checks import check_data_format
from convlens.ops.activations import get_activation, relu_inplace
from convlens.ops.conv import Conv2DPlan, conv_memory
from convlens.ops.plan_cache import ShapePlans
from convlens.resources import check_arrays, check_window

__all__ = ["Conv1D", "Conv2D", "DepthwiseConv2D"]


class _Conv(Layer):
    """Shared machinery of the convolution layers (``rank`` spatial axes, computed as 2-D)."""

    rank = 2
    weight_names = ("kernel", "bias")

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: Any = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        self.set_weight_options("kernel", kernel_regularizer, kernel_constraint)
        self.set_weight_options("bias", bias_regularizer, bias_constraint)
        self.filters = check_int(filters, "filters", owner=owner, minimum=1)
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size", owner=owner)
        check_window(self.kernel_size, "kernel_size", owner=owner)
        self.strides = normalize_tuple(strides, self.rank, "strides", owner=owner)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate", owner=owner)
        self.padding = normalize_padding(padding, self.rank, owner=owner)
        self.data_format = check_data_format("channels_last" if data_format is None else data_format, owner)
        self.groups = check_int(groups, "groups", owner=owner, minimum=1)
        if self.filters % self.groups:
            raise ShapeError(f"{owner}: `filters` ({self.filters}) must be divisible by groups={self.groups}.")
        self.activation = get_activation(activation, owner=owner)
        self.use_bias = check_bool(use_bias, "use_bias", owner=owner)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self._kernel_init = initializers.get(kernel_initializer, owner=owner, name="kernel_initializer")
        self._bias_init = initializers.get(bias_initializer, owner=owner, name="bias_initializer")
        self.min_ndim = self.max_ndim = self.rank + 2  # type: ignore[misc]
        self._plan: Conv2DPlan | None = None
        self._plans: ShapePlans[Conv2DPlan] = ShapePlans()
        self._cache: tuple[np.ndarray, np.ndarray | None, np.ndarray] | None = None

    # ----- shapes -------------------------------------------------------------------------------
    def _split(self, input_shape: Shape) -> tuple[tuple[int, ...], int | None]:
        """Spatial sizes and channel count of an input shape (batch included)."""
        if self.data_format == "channels_first":
            return tuple(input_shape[2:]), input_shape[1]  # type: ignore[arg-type]
        return tuple(input_shape[1:-1]), input_shape[-1]  # type: ignore[arg-type]

    def geometry(self, input_shape: Shape) -> WindowGeometry:
        """The window geometry for ``input_shape`` (batch included)."""
        spatial, _ = self._split(input_shape)
        return WindowGeometry.resolve(
            spatial, self.kernel_size, self.strides, self.padding, self.dilation_rate, owner=repr(self)
        )

    def _out_channels(self, channels: int) -> int:
        return self.filters

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self.check_input_shape(tuple(input_shape))
        _, channels = self._split(input_shape)
        if channels is None:
            raise ShapeError(f"{self!r}: the channel axis of the input must be known, got {input_shape}.")
        out = self.geometry(input_shape).output_size
        filters = self._out_channels(channels)
        if self.data_format == "channels_first":
            return (input_shape[0], filters, *out)
        return (input_shape[0], *out, filters)

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        if channels % self.groups:
            raise ShapeError(f"{self!r}: input channels ({channels}) must be divisible by groups={self.groups}.")
        return (*self.kernel_size, channels // self.groups, self.filters)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape, rng)
        rng = rng if rng is not None else np.random.default_rng()
        _, channels = self._split(input_shape)
        shape = self._kernel_shape(int(channels))  # type: ignore[arg-type]
        self.make_weight("kernel", self._kernel_init, shape, rng)
        if self.use_bias:
            self.make_weight("bias", self._bias_init, (self._out_channels(int(channels)),), rng)  # type: ignore[arg-type]

    # ----- compute (always as channels-last 2-D) --------------------------------------------------
    def _to_2d(self, x: np.ndarray) -> np.ndarray:
        if self.data_format == "channels_first":
            x = np.moveaxis(x, 1, -1)
        return x[:, None] if self.rank == 1 else x

    def _from_2d(self, y: np.ndarray) -> np.ndarray:
        if self.rank == 1:
            y = y[:, 0]
        if self.data_format == "channels_first":
            y = np.ascontiguousarray(np.moveaxis(y, -1, 1))
        return y

    def _kernel_2d(self) -> np.ndarray:
        kernel = self.params["kernel"]
        return kernel[None] if self.rank == 1 else kernel

    def _get_plan(self, x2d: np.ndarray) -> Conv2DPlan:
        plan = self._plans.get(x2d.shape, lambda: self._new_plan(x2d))
        self._plan = plan  # (what the next backward uses)
        return plan

    def _new_plan(self, x2d: np.ndarray) -> Conv2DPlan:
        kernel = self._kernel_2d()
        geometry = self.geometry((None, *self._split_shape_2d(x2d.shape)))
        lead = ((1,), ((0, 0),)) if self.rank == 1 else ((), ())
        check_arrays(
            conv_memory(x2d.shape, kernel.shape, geometry, self.dtype.itemsize, backward=True),
            owner=repr(self),
            hint="Use a smaller batch.",
        )
        return Conv2DPlan(
            x2d.shape,
            kernel.shape,
            strides=(*lead[0], *geometry.strides),
            padding=(*lead[1], *geometry.pads),
            dilation_rate=(*lead[0], *geometry.dilation_rate),
            groups=self.groups,
            owner=repr(self),
            dtype=self.dtype,
        )

    def _split_shape_2d(self, shape_2d: tuple[int, ...]) -> tuple[int, ...]:
        """Input shape (without batch) in this layer's data_format, from a channels-last 2-D shape."""
        spatial = shape_2d[2:-1] if self.rank == 1 else shape_2d[1:-1]
        channels = shape_2d[-1]
        return (channels, *spatial) if self.data_format == "channels_first" else (*spatial, channels)

    def _linear(
        self, x: np.ndarray, kernel: np.ndarray | None = None, bias: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(x2d, pre)``: ``x`` in the channels-last 2-D layout and its convolution plus bias (the pre-activation,
        same layout), with the layer's kernel and bias unless given (a folded batch norm's, see
        :class:`convlens.fusion.ConvBatchNorm`)."""
        x2d = self._to_2d(np.asarray(x, dtype=self.dtype))
        kernel = self._kernel_2d() if kernel is None else kernel
        bias = self.params.get("bias") if bias is None else bias
        return x2d, self._get_plan(x2d).forward(x2d, kernel, bias)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x2d, pre = self._linear(x)
        if self.activation.name == "relu":
            # In place: relu's backward needs only its output.
            y = relu_inplace(pre)
            kept_pre = None
        else:
            y = self.activation.forward(pre)
            kept_pre = pre
        if training:
            self._cache = (x2d, kept_pre, y)
        return self._from_2d(y)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad_pre = self._activation_backward(grad_out)
        return self.backward_linear(grad_pre)

    def _activation_backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise StateError(f"{self!r}: backward called without a forward(training=True) first.")
        _, pre, y = self._cache
        g2d = self._to_2d(grad_out)
        if self.activation.name == "relu":
            return np.multiply(g2d, y > 0, dtype=y.dtype)
        return self.activation.backward(g2d, pre if pre is not None else y, y)

    def backward_linear(self, grad_pre: np.ndarray) -> np.ndarray:
        """Backward from the gradient w.r.t. the pre-activation (channels-last 2-D layout)."""
        if self._cache is None or self._plan is None:
            raise StateError(f"{self!r}: backward called without a forward(training=True) first.")
        x2d = self._cache[0]
        grads = self._plan.backward(grad_pre, x2d, self._kernel_2d(), compute_grad_x=self.compute_grad_x)
        self.grads["kernel"][...] = grads.kernel[0] if self.rank == 1 else grads.kernel
        if self.use_bias:
            self.grads["bias"][...] = grads.bias
        self._cache = None
        if grads.x is None:
            return np.zeros(0, self.dtype)
        return self._from_2d(grads.x)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        padding = self.padding if isinstance(self.padding, str) else [list(p) for p in self.padding]
        config.update(
            filters=self.filters,
            kernel_size=list(self.kernel_size),
            strides=list(self.strides),
            padding=padding,
            data_format=self.data_format,
            dilation_rate=list(self.dilation_rate),
            groups=self.groups,
            activation=self.activation.name,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer if isinstance(self.kernel_initializer, str) else "custom",
            bias_initializer=self.bias_initializer if isinstance(self.bias_initializer, str) else "custom",
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        config = dict(config)
        if isinstance(config.get("padding"), list):
            config["padding"] = tuple(tuple(p) for p in config["padding"])
        return super().from_config(config)


@register
class Conv2D(_Conv):
    """2-D convolution layer, ``keras.layers.Conv2D``.

    Args:
        filters: number of output channels F.
        kernel_size: int or (KH, KW).
        strides: int or (SH, SW), default 1.
        padding: 'valid' (default), 'same', an int, (PH, PW) or ((PT, PB), (PL, PR)).
        data_format: 'channels_last' (default) or 'channels_first'.
        dilation_rate: int or (DH, DW).
        groups: channel groups (C and F divisible by it).
        activation: name ('relu', 'softmax', ...) or None.
        use_bias, kernel_initializer, bias_initializer: as Keras.
        kernel_regularizer, bias_regularizer, activity_regularizer: see :mod:`convlens.regularizers`.
        kernel_constraint, bias_constraint: see :mod:`convlens.constraints`.

    Shapes:
        (N, H, W, C) -> (N, OH, OW, F); kernel (KH, KW, C / groups, F).
    """

    rank = 2


@register
class Conv1D(_Conv):
    """1-D convolution layer, ``keras.layers.Conv1D`` (``padding`` may be 'causal').

    Shapes:
        (N, L, C) -> (N, OL, F); kernel (K, C / groups, F).
    """

    rank = 1

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        return super()._kernel_shape(channels)


@register
class DepthwiseConv2D(_Conv):
    """Depthwise 2-D convolution, ``keras.layers.DepthwiseConv2D``: each input channel gets its own filters.

    Computed as a grouped convolution with ``groups == C``; output channel ``c * M + m`` comes from input
    channel ``c`` and multiplier ``m`` (Keras's order).

    Shapes:
        (N, H, W, C) -> (N, OH, OW, C * M); kernel (KH, KW, C, M) with M = depth_multiplier.
    """

    rank = 2

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = 1,
        padding: Any = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        depthwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            filters=1,
            kernel_size=kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=depthwise_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=depthwise_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=depthwise_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        self.depth_multiplier = check_int(depth_multiplier, "depth_multiplier", owner=repr(self), minimum=1)

    def _out_channels(self, channels: int) -> int:
        return channels * self.depth_multiplier

    def option_prefix(self, weight: str) -> str:
        return "depthwise" if weight == "kernel" else weight

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        return (*self.kernel_size, channels, self.depth_multiplier)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape, rng)
        _, channels = self._split(input_shape)
        self.groups = int(channels)  # type: ignore[arg-type]
        self.filters = self._out_channels(int(channels))  # type: ignore[arg-type]

    def _kernel_2d(self) -> np.ndarray:
        kh, kw, channels, multiplier = self.params["kernel"].shape
        return self.params["kernel"].reshape(kh, kw, 1, channels * multiplier)

    def backward_linear(self, grad_pre: np.ndarray) -> np.ndarray:
        if self._cache is None or self._plan is None:
            raise StateError(f"{self!r}: backward called without a forward(training=True) first.")
        x2d = self._cache[0]
        grads = self._plan.backward(grad_pre, x2d, self._kernel_2d(), compute_grad_x=self.compute_grad_x)
        self.grads["kernel"][...] = grads.kernel.reshape(self.params["kernel"].shape)
        if self.use_bias:
            self.grads["bias"][...] = grads.bias
        self._cache = None
        return np.zeros(0, self.dtype) if grads.x is None else self._from_2d(grads.x)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        for key in ("filters", "groups"):
            config.pop(key)
        config["depth_multiplier"] = self.depth_multiplier
        config["depthwise_initializer"] = config.pop("kernel_initializer")
        return config
