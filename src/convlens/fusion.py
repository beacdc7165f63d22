"""Execution stages for ``Sequential``: layers run one by one, except patterns that fuse.

The one fused pattern today is ``Conv2D(activation=monotonic) -> MaxPooling2D(non-overlapping, 'valid')``
(see :mod:`convlens.ops.fused`), the core of the course model. Fusion changes speed, never results:
``tests/models`` compare fused and unfused training step by step. Set ``model.fuse = False`` (or the
environment variable ``CONVLENS_FUSE=0``) to run every layer on its own.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from convlens import switches
from convlens.layers.base import Layer
from convlens.ops.fused import MONOTONIC_ACTIVATIONS, ConvMaxPoolPlan

__all__ = ["FusedConvMaxPool", "Stage", "fusion_enabled", "plan_stages"]


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
    )


class FusedConvMaxPool:
    """``Conv2D`` followed by ``MaxPooling2D`` run as one stage; fills the conv layer's grads."""

    def __init__(self, conv: Any, pool: Any) -> None:
        self.conv = conv
        self.pool = pool
        self._plan: ConvMaxPoolPlan | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        conv = self.conv
        x = np.asarray(x, dtype=conv.dtype)
        plan = self._plan
        if plan is None or plan.x_shape != x.shape:
            geometry = conv.geometry(x.shape)
            plan = ConvMaxPoolPlan(
                x.shape,
                conv.params["kernel"].shape,
                geometry,
                tuple(self.pool.pool_size),
                conv.activation,
                owner=f"{conv!r} + {self.pool!r}",
                dtype=conv.dtype,
                compute_grad_x=conv.compute_grad_x,
            )
            self._plan = plan
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


def plan_stages(layers: list[Layer], fuse: bool = True) -> list[Any]:
    """The stages that run ``layers``; adjacent fusable pairs become one :class:`FusedConvMaxPool`."""
    stages: list[Any] = []
    i = 0
    while i < len(layers):
        if fuse and fusion_enabled() and i + 1 < len(layers) and _fusable(layers[i], layers[i + 1]):
            stages.append(FusedConvMaxPool(layers[i], layers[i + 1]))
            i += 2
        else:
            stages.append(layers[i])
            i += 1
    return stages
