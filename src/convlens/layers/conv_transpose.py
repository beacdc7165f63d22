"""``Conv2DTranspose`` (a learned upsampling: the adjoint of a convolution) and ``SeparableConv2D`` (a depthwise
convolution followed by a 1x1 pointwise one), with Keras's arguments, weight layouts and output sizes.

Shapes (channels_last):
    Conv2DTranspose: (N, H, W, C) -> (N, OH, OW, filters); kernel (KH, KW, filters, C); bias (filters,);
        OH from :meth:`convlens.geometry.WindowGeometry.resolve_transpose` ('same': H * SH; 'valid':
        H * SH + max(EH - SH, 0); with output_padding QH: (H - 1) * SH + EH - 2 * PAD + QH).
    SeparableConv2D: (N, H, W, C) -> (N, OH, OW, filters) with OH as Conv2D's; depthwise_kernel (KH, KW, C, M),
        pointwise_kernel (1, 1, C * M, filters), bias (filters,).

>>> import numpy as np
>>> up = Conv2DTranspose(8, 3, strides=2, padding="same", name="up")
>>> up.compute_output_shape((None, 7, 7, 16)), up(np.zeros((1, 7, 7, 16), np.float32)).shape
((None, 14, 14, 8), (1, 14, 14, 8))
>>> SeparableConv2D(8, 3, name="sep").compute_output_shape((None, 7, 7, 16))
(None, 5, 5, 8)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens import initializers
from convlens.errors import ConfigError, ShapeError, StateError, check_bool, check_int, normalize_tuple, short_repr
from convlens.geometry import WindowGeometry, normalize_padding
from convlens.layers.base import Layer, Shape, register
from convlens.layers.conv import _Conv
from convlens.ops._checks import check_channels_last
from convlens.ops.activations import get_activation, relu_backward, relu_inplace
from convlens.ops.conv import Conv2DPlan
from convlens.ops.conv_transpose import Conv2DTransposePlan
from convlens.ops.dense import dense_backward
from convlens.ops.plan_cache import ShapePlans

__all__ = ["Conv2DTranspose", "SeparableConv2D"]


@register
class Conv2DTranspose(_Conv):
    """Transposed 2-D convolution, ``keras.layers.Conv2DTranspose`` (Keras's output sizes and padding).

    Args:
        filters: output channels F.
        kernel_size, strides, dilation_rate: int or pairs.
        padding: 'valid' (default) or 'same'.
        output_padding: None or int/pair, each smaller than the stride: extra rows/columns at the bottom/right.
        activation, use_bias, initializers, regularizers, constraints: as Conv2D.

    Shapes:
        (N, H, W, C) -> (N, OH, OW, F); kernel (KH, KW, F, C).
    """

    rank = 2

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: str = "valid",
        output_padding: Any = None,
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        **kwargs: Any,
    ) -> None:
        if "groups" in kwargs:
            raise ConfigError("Conv2DTranspose: unexpected keyword argument(s): groups (Keras's has none).")
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, **kwargs)
        if self.padding not in ("valid", "same"):
            raise ConfigError(f"{self!r}: `padding` must be 'valid' or 'same', got {short_repr(padding)}.")
        self.output_padding = (
            None
            if output_padding is None
            else normalize_tuple(output_padding, 2, "output_padding", owner=repr(self), minimum=0)
        )
        if self.output_padding is not None and any(
            q >= s for q, s in zip(self.output_padding, self.strides, strict=True)
        ):
            raise ConfigError(
                f"{self!r}: `output_padding` {self.output_padding} must be smaller than `strides` {self.strides}."
            )

    def geometry(self, input_shape: Shape) -> WindowGeometry:
        """The adjoint convolution's geometry: its ``input_size`` is this layer's output size."""
        spatial, _ = self._split(input_shape)
        return WindowGeometry.resolve_transpose(
            spatial,
            self.kernel_size,
            self.strides,
            str(self.padding),
            self.output_padding,
            self.dilation_rate,
            owner=repr(self),
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self.check_input_shape(tuple(input_shape))
        _, channels = self._split(input_shape)
        if channels is None:
            raise ShapeError(f"{self!r}: the channel axis of the input must be known, got {input_shape}.")
        out = self.geometry(input_shape).input_size
        if self.data_format == "channels_first":
            return (input_shape[0], self.filters, *out)
        return (input_shape[0], *out, self.filters)

    def _kernel_shape(self, channels: int) -> tuple[int, ...]:
        return (*self.kernel_size, self.filters, channels)

    def _get_plan(self, x2d: np.ndarray) -> Any:
        def build() -> Any:  # (the same forward/backward interface as the Conv2DPlan the base class keeps)
            return Conv2DTransposePlan(
                x2d.shape,
                self.params["kernel"].shape,
                strides=self.strides,
                padding=str(self.padding),
                output_padding=self.output_padding,
                dilation_rate=self.dilation_rate,
                owner=repr(self),
            )

        plan: Any = self._plans.get(x2d.shape, build)
        self._plan = plan
        return plan

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("groups")
        config["output_padding"] = None if self.output_padding is None else list(self.output_padding)
        return config


@register
class SeparableConv2D(Layer):
    """Depthwise then pointwise convolution, ``keras.layers.SeparableConv2D``.

    The depthwise step (``depth_multiplier`` M filters per input channel, with the strides, padding and
    dilation) runs as a grouped convolution; the pointwise step is a 1x1 convolution (one GEMM) with the bias
    and the activation.

    Shapes:
        (N, H, W, C) -> (N, OH, OW, F); depthwise_kernel (KH, KW, C, M); pointwise_kernel (1, 1, C * M, F).
    """

    weight_names = ("depthwise_kernel", "pointwise_kernel", "bias")
    min_ndim = max_ndim = 4

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = (1, 1),
        padding: Any = "valid",
        data_format: str | None = None,
        dilation_rate: Any = (1, 1),
        depth_multiplier: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        depthwise_regularizer: Any = None,
        pointwise_regularizer: Any = None,
        bias_regularizer: Any = None,
        depthwise_constraint: Any = None,
        pointwise_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        self.filters = check_int(filters, "filters", owner=owner, minimum=1)
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size", owner=owner)
        self.strides = normalize_tuple(strides, 2, "strides", owner=owner)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate", owner=owner)
        self.padding = normalize_padding(padding, 2, owner=owner)
        check_channels_last(data_format, owner)
        self.depth_multiplier = check_int(depth_multiplier, "depth_multiplier", owner=owner, minimum=1)
        self.activation = get_activation(activation, owner=owner)
        self.use_bias = check_bool(use_bias, "use_bias", owner=owner)
        self.initializer_ids = {
            "depthwise_initializer": depthwise_initializer,
            "pointwise_initializer": pointwise_initializer,
            "bias_initializer": bias_initializer,
        }
        self._inits = {k: initializers.get(v, owner=owner, name=k) for k, v in self.initializer_ids.items()}
        self.set_weight_options("depthwise_kernel", depthwise_regularizer, depthwise_constraint)
        self.set_weight_options("pointwise_kernel", pointwise_regularizer, pointwise_constraint)
        self.set_weight_options("bias", bias_regularizer, bias_constraint)
        self._plan: Conv2DPlan | None = None
        self._plans: ShapePlans[Conv2DPlan] = ShapePlans()
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def option_prefix(self, weight: str) -> str:
        return weight.removesuffix("_kernel")

    def geometry(self, input_shape: Shape) -> WindowGeometry:
        """The depthwise step's window geometry."""
        return WindowGeometry.resolve(
            tuple(int(s) for s in input_shape[1:3]),  # type: ignore[arg-type]
            self.kernel_size,
            self.strides,
            self.padding,
            self.dilation_rate,
            owner=repr(self),  # type: ignore[arg-type]
        )

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        if input_shape[-1] is None:
            raise ShapeError(f"{self!r}: the channel axis of the input must be known, got {input_shape}.")
        return (input_shape[0], *self.geometry(input_shape).output_size, self.filters)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape, rng)
        rng = rng if rng is not None else np.random.default_rng()
        channels = int(input_shape[-1])  # type: ignore[arg-type]
        middle = channels * self.depth_multiplier
        self.make_weight(
            "depthwise_kernel",
            self._inits["depthwise_initializer"],
            (*self.kernel_size, channels, self.depth_multiplier),
            rng,
        )
        self.make_weight("pointwise_kernel", self._inits["pointwise_initializer"], (1, 1, middle, self.filters), rng)
        if self.use_bias:
            self.make_weight("bias", self._inits["bias_initializer"], (self.filters,), rng)

    def _depthwise_kernel(self) -> np.ndarray:
        kh, kw, channels, multiplier = self.params["depthwise_kernel"].shape
        return self.params["depthwise_kernel"].reshape(kh, kw, 1, channels * multiplier)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        kernel = self._depthwise_kernel()
        plan = self._plans.get(
            x.shape,
            lambda: Conv2DPlan(
                x.shape,
                kernel.shape,
                strides=self.strides,
                padding=self.geometry(x.shape).pads,
                dilation_rate=self.dilation_rate,
                groups=x.shape[-1],
                owner=repr(self),
            ),
        )
        self._plan = plan  # (what the next backward uses)
        middle = plan.forward(x, kernel)
        pointwise = self.params["pointwise_kernel"][0, 0]
        pre = middle.reshape(-1, pointwise.shape[0]) @ pointwise
        if self.use_bias:
            pre += self.params["bias"]
        y = relu_inplace(pre) if self.activation.name == "relu" else self.activation.forward(pre)
        if training:
            self._cache = (x, middle, pre, y)
        return np.asarray(y.reshape(*middle.shape[:3], self.filters))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._cache is None or self._plan is None:
            raise StateError(f"{self!r}: backward called without a forward(training=True) first.")
        (x, middle, pre, y), self._cache = self._cache, None
        g2d = np.asarray(grad_out, dtype=self.dtype).reshape(y.shape)
        grad_pre = relu_backward(g2d, y) if self.activation.name == "relu" else self.activation.backward(g2d, pre, y)
        pointwise = self.params["pointwise_kernel"][0, 0]
        dense = dense_backward(grad_pre, middle.reshape(-1, pointwise.shape[0]), pointwise)
        self.grads["pointwise_kernel"][...] = dense.kernel[None, None]
        if self.use_bias:
            self.grads["bias"][...] = dense.bias
        grad_middle = np.asarray(dense.x).reshape(middle.shape)
        grads = self._plan.backward(grad_middle, x, self._depthwise_kernel(), compute_grad_x=self.compute_grad_x)
        self.grads["depthwise_kernel"][...] = grads.kernel.reshape(self.params["depthwise_kernel"].shape)
        return np.zeros(0, self.dtype) if grads.x is None else grads.x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        padding = self.padding if isinstance(self.padding, str) else [list(p) for p in self.padding]
        config.update(
            filters=self.filters,
            kernel_size=list(self.kernel_size),
            strides=list(self.strides),
            padding=padding,
            dilation_rate=list(self.dilation_rate),
            depth_multiplier=self.depth_multiplier,
            activation=self.activation.name,
            use_bias=self.use_bias,
            **{k: v if isinstance(v, str) else "custom" for k, v in self.initializer_ids.items()},
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        config = dict(config)
        if isinstance(config.get("padding"), list):
            config["padding"] = tuple(tuple(p) for p in config["padding"])
        return super().from_config(config)
