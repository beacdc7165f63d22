"""Execution stages for ``Sequential``: layers run one by one, except patterns that fuse.

Three patterns fuse: ``Conv2D(activation=monotonic) -> MaxPooling2D(non-overlapping, 'valid')`` (see
:mod:`convlens.ops.fused`), the core of the course model; ``BatchNormalization -> ReLU`` (a plain ReLU
layer or ``Activation('relu')``: the ReLU runs inside the batch norm's passes, see
:mod:`convlens.ops.batch_norm_plans`); and a linear convolution followed by either, whose batch norm folds into
the convolution's kernel and bias at inference (:class:`ConvBatchNorm`). Fusion changes speed, not results:
``tests/models`` compare fused and unfused training step by step (bit for bit), and inference (the folded
batch norm: to float rounding). Set ``model.fuse = False`` (or the
environment variable ``CONVLENS_FUSE=0``) to run every layer on its own.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from convlens import switches
from convlens.layers.base import Layer
from convlens.ops.activations import relu_inplace
from convlens.ops.fused import MONOTONIC_ACTIVATIONS, ConvMaxPoolPlan
from convlens.ops.plan_cache import ShapePlans

__all__ = ["ConvBatchNorm", "FusedBatchNormReLU", "FusedConvMaxPool", "Stage", "fusion_enabled", "plan_stages"]


class Stage(Protocol):
    """What the model's training loop calls."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray: ...

    def backward(self, grad_out: np.ndarray) -> np.ndarray: ...


def fusion_enabled() -> bool:
    """False when the environment sets ``CONVLENS_FUSE=0``."""
    return switches.FUSE.is_on()


def _fusable(conv: Layer, pool: Layer) -> bool:
    from convlens.layers.conv import Conv2D
    from convlens.layers.pooling import MaxPooling2D

    return (
        type(conv) is Conv2D
        and type(pool) is MaxPooling2D
        and conv.groups == 1
        and conv.data_format == "channels_last"
        and conv.activation.name in MONOTONIC_ACTIVATIONS
        and pool.data_format == "channels_last"
        and tuple(pool.strides) == tuple(pool.pool_size)
        and pool.padding == "valid"
        and conv.built
        and pool.built
        and not _blocked_winograd(conv)
    )


def _blocked_winograd(conv: Layer) -> bool:
    """Whether ``conv`` on its own runs the blocked Winograd (wide 3x3, stride 1): then it stays unfused.

    The fused stage computes its convolution by im2col + GEMM; for those layers the blocked Winograd plus a
    separate pooling is faster. Measured on Keras's simple MNIST convnet, its (13x13, 32->64) conv + 2x2 pool,
    Intel Xeon, 2 threads (benchmarks/zoo_profile.py, CONVLENS_FUSE=1 vs 0): training step 18.6 -> 14.6 ms
    (fwd+bwd), inference of 1000 images 94 -> 45 ms.
    """
    from convlens.ops.conv_plan import Conv2DPlan

    shape = conv.input_shape
    kernel = conv.params.get("kernel")
    if shape is None or kernel is None or len(shape) != 4 or any(s is None for s in shape[1:]):
        return False
    sample = tuple(int(s) for s in shape[1:])  # type: ignore[arg-type]  # (no None: checked above)
    geometry = conv.geometry((None, *sample))  # type: ignore[attr-defined]  # (a Conv2D: checked by the caller)
    plan = Conv2DPlan(
        (1, *sample),
        kernel.shape,
        strides=geometry.strides,
        padding=geometry.pads,
        dilation_rate=geometry.dilation_rate,
        dtype=conv.dtype,
    )
    return plan.algorithms.forward in ("winograd_blocked", "winograd4_blocked")


class FusedConvMaxPool:
    """``Conv2D`` followed by ``MaxPooling2D`` run as one stage; fills the conv layer's grads."""

    def __init__(self, conv: Any, pool: Any) -> None:
        self.conv = conv
        self.pool = pool
        self.name = f"{conv.name}+{pool.name}"
        self._plan: ConvMaxPoolPlan | None = None
        self._plans: ShapePlans[ConvMaxPoolPlan] = ShapePlans()

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        conv = self.conv
        x = np.asarray(x, dtype=conv.dtype)
        plan = self._plans.get(
            (x.shape, conv.compute_grad_x),
            lambda: ConvMaxPoolPlan(
                x.shape,
                conv.params["kernel"].shape,
                conv.geometry(x.shape),
                tuple(self.pool.pool_size),
                conv.activation,
                owner=f"{conv!r} + {self.pool!r}",
                dtype=conv.dtype,
                compute_grad_x=conv.compute_grad_x,
            ),
        )
        self._plan = plan  # (what the next backward uses)
        return plan.forward(
            x,
            conv.params["kernel"],
            conv.params.get("bias"),
            training=training,
            compute_grad_x=conv.compute_grad_x,
        )

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        conv = self.conv
        if self._plan is None:  # pragma: no cover - guarded by the plan itself
            raise RuntimeError("backward before forward")
        grads = self._plan.backward(grad_out, conv.params["kernel"], compute_grad_x=conv.compute_grad_x)
        conv.grads["kernel"][...] = grads.kernel
        if conv.use_bias:
            conv.grads["bias"][...] = grads.bias
        return np.zeros(0, conv.dtype) if grads.x is None else grads.x


def _plain_relu(layer: Layer) -> bool:
    from convlens.layers.core import Activation, ReLU

    if type(layer) is ReLU:
        return layer._plain
    return type(layer) is Activation and layer.activation.name == "relu"


def _bn_relu(bn: Layer, relu: Layer) -> bool:
    from convlens.layers.normalization import BatchNormalization

    return type(bn) is BatchNormalization and bn.built and relu.built and _plain_relu(relu)


class FusedBatchNormReLU:
    """``BatchNormalization`` followed by a plain ReLU, run as one stage; fills the batch norm's grads."""

    def __init__(self, bn: Any, relu: Any) -> None:
        self.bn = bn
        self.relu = relu
        self.name = f"{bn.name}+{relu.name}"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y: np.ndarray = self.bn.forward_fused(x, training=training, relu=True)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad: np.ndarray = self.bn.backward(grad_out)
        return grad


def _conv_then_norm(conv: Any, norm: Any) -> bool:
    """Whether ``norm`` (a batch norm, or a fused batch norm + ReLU) can fold into ``conv`` at inference: a linear
    2-D ``Conv2D``/``DepthwiseConv2D`` in channels_last, normalised over its channels, in the same dtype."""
    from convlens.layers.conv import Conv2D, DepthwiseConv2D
    from convlens.layers.normalization import BatchNormalization

    bn = norm.bn if isinstance(norm, FusedBatchNormReLU) else norm
    return (
        type(conv) in (Conv2D, DepthwiseConv2D)
        and type(bn) is BatchNormalization
        and conv.built
        and bn.built
        and conv.data_format == "channels_last"
        and conv.activation.name == "linear"
        and bn._channel_axis == 3
        and conv.dtype == bn.dtype
    )


class ConvBatchNorm:
    """A linear ``Conv2D``/``DepthwiseConv2D`` followed by ``BatchNormalization`` (and maybe a ReLU fused into it).

    Training runs the two as before (batch statistics need the convolution's output). Inference folds the
    normalisation into the convolution: with s = gamma / sqrt(moving_variance + epsilon), the kernel's output
    channel f is scaled by s[f] and the bias becomes (bias - moving_mean) * s + beta, so the normalisation pass
    over the activations disappears (the ReLU is applied in place). The result equals the unfolded one to
    float rounding (the products are formed in another order). Measured on the zoo's small VGG and
    depthwise-separable models (benchmarks/zoo_profile.py, 2 threads, predict of 1000 images): see the README.
    """

    def __init__(self, conv: Any, norm: Any) -> None:
        self.conv = conv
        self.norm = norm
        self.bn = norm.bn if isinstance(norm, FusedBatchNormReLU) else norm
        self.relu = isinstance(norm, FusedBatchNormReLU)
        self.name = f"{conv.name}+{norm.name}"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if training:
            y: np.ndarray = self.norm.forward(self.conv.forward(x, training=True), training=True)
            return y
        conv = self.conv
        scale, shift = self.bn.inference_affine()
        if conv.use_bias:
            shift += conv.params["bias"] * scale
        _, pre = conv._linear(x, conv._kernel_2d() * scale, shift)
        if self.relu:
            relu_inplace(pre)
        out: np.ndarray = conv._from_2d(pre)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad: np.ndarray = self.conv.backward(self.norm.backward(grad_out))
        return grad


def plan_stages(layers: list[Layer], fuse: bool = True) -> list[Any]:
    """The stages that run ``layers``; adjacent fusable pairs become one :class:`FusedConvMaxPool` or
    :class:`FusedBatchNormReLU`, and a convolution followed by a batch norm (stage) one :class:`ConvBatchNorm`."""
    stages: list[Any] = []
    fusing = fuse and fusion_enabled()
    i = 0
    while i < len(layers):
        pair = layers[i : i + 2] if fusing and i + 1 < len(layers) else []
        if pair and _fusable(*pair):
            stages.append(FusedConvMaxPool(*pair))
            i += 2
        elif pair and _bn_relu(*pair):
            stages.append(FusedBatchNormReLU(*pair))
            i += 2
        else:
            stages.append(layers[i])
            i += 1
        if fusing and len(stages) > 1 and _conv_then_norm(stages[-2], stages[-1]):
            stages[-2:] = [ConvBatchNorm(stages[-2], stages[-1])]
    return stages
