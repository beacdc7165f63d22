"""Compile every Numba kernel once, up front (they are cached on disk afterwards).

Each kernel otherwise compiles on its first call, inside whatever runs first: a training step, a test,
a sweep worker (where two processes may compile the same kernel at once). :func:`precompile` runs every
algorithm that has compiled kernels on tiny inputs, so each kernel compiles for the argument types it
meets in real use, and reports each step.

>>> precompile([], report=print)
[]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops.activations import get_activation
from convlens.ops.conv_plan import Conv2DPlan
from convlens.ops.fused import ConvMaxPoolPlan
from convlens.ops.jit import compiled_for
from convlens.ops.pooling_plans import MaxPool2DPlan

__all__ = ["precompile"]


def _conv(dtype: Any, channels: int, algorithm: Any) -> None:
    x = np.ones((2, 6, 6, channels), dtype)
    kernel = np.ones((3, 3, channels, channels), dtype)
    plan = Conv2DPlan(x.shape, kernel.shape, padding="same", algorithm=algorithm, dtype=dtype)
    plan.backward(plan.forward(x, kernel, np.zeros(channels, dtype)), x, kernel)


def _pool(dtype: Any) -> None:
    x = np.ones((2, 4, 4, 2), dtype)
    plan = MaxPool2DPlan(x.shape, (2, 2), algorithm="max_pool_compiled")
    plan.backward(plan.forward(x))


def _fused(dtype: Any, algorithm: str) -> None:
    x = np.ones((2, 6, 6, 2), dtype)
    kernel = np.ones((3, 3, 2, 4), dtype)
    geometry = WindowGeometry.resolve((6, 6), 3, 1, "same")
    plan = ConvMaxPoolPlan(x.shape, kernel.shape, geometry, (2, 2), get_activation("relu"), algorithm=algorithm)
    out = plan.forward(x, kernel, np.zeros(4, dtype), training=True)
    plan.backward(np.ones_like(out), kernel)


STEPS: tuple[tuple[str, Callable[[Any], None]], ...] = (
    ("im2col + col2im", lambda dtype: _conv(dtype, 2, {"forward": "im2col", "input_grad": "col2im"})),
    ("im2col into a plain buffer", lambda dtype: _conv(dtype, 2, "grouped_gemm")),
    ("winograd transforms", lambda dtype: _conv(dtype, 2, "winograd")),
    ("max pooling", _pool),
    ("fused stage, GEMM path", lambda dtype: _fused(dtype, "conv_pool_gemm")),
    ("fused stage, direct kernels", lambda dtype: _fused(dtype, "conv_pool_direct")),
)


def precompile(dtypes: Sequence[Any] = ("float32",), report: Callable[[str], Any] | None = None) -> list[str]:
    """Compile every kernel for each dtype that gets compiled kernels (:func:`convlens.ops.jit.compiled_for`).

    Returns the steps run, as ``'float32 winograd transforms: 3.1 s'``; ``report`` gets each as it finishes.
    """
    done = []
    for dtype in (np.dtype(d) for d in dtypes):
        if not compiled_for(dtype):
            continue
        for name, step in STEPS:
            start = time.perf_counter()
            step(dtype)
            line = f"{dtype.name} {name}: {time.perf_counter() - start:.1f} s"
            done.append(line)
            if report is not None:
                report(line)
    return done
