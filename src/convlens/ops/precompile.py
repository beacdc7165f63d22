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
from convlens.ops.activations import get_activation, tanh
from convlens.ops.adam_jit import adam_update_jit
from convlens.ops.batch_norm_plans import BatchNormPlan
from convlens.ops.conv_plan import Conv2DPlan
from convlens.ops.fused import ConvMaxPoolPlan
from convlens.ops.handoff import run_pieces
from convlens.ops.jit import compiled_for
from convlens.ops.pooling_plans import AvgPool2DPlan, MaxPool2DPlan

__all__ = ["precompile"]


def _conv(dtype: Any, channels: int, algorithm: Any) -> None:
    x = np.ones((2, 6, 6, channels), dtype)
    kernel = np.ones((3, 3, channels, channels), dtype)
    plan = Conv2DPlan(x.shape, kernel.shape, padding="same", algorithm=algorithm, dtype=dtype)
    plan.backward(plan.forward(x, kernel, np.zeros(channels, dtype)), x, kernel)


def _im2col_col2im(dtype: Any) -> None:
    _conv(dtype, 2, {"forward": "im2col", "input_grad": "col2im"})
    _conv(dtype, 2, "im2col_blocked")  # (its row im2col kernel)


def _depthwise(dtype: Any) -> None:
    x = np.ones((2, 6, 6, 2), dtype)
    # 3x3: the nine-tap kernels (row spans at stride 1; pixel by pixel and the per-column input gradient at stride
    # 2); 2x2: the row-span kernels at stride 1, the per-column ones at stride 2
    for size, strides in ((3, 1), (2, 1), (3, 2), (2, 2)):
        kernel = np.ones((size, size, 1, 2), dtype)
        plan = Conv2DPlan(
            x.shape,
            kernel.shape,
            strides=strides,
            padding="same",
            groups=2,
            algorithm="depthwise_compiled",
            dtype=dtype,
        )
        plan.backward(plan.forward(x, kernel, np.zeros(2, dtype)), x, kernel)


def _winograd4(dtype: Any) -> None:
    x = np.ones((2, 6, 6, 2), dtype)
    kernel = np.ones((3, 3, 2, 2), dtype)
    plan = Conv2DPlan(x.shape, kernel.shape, padding="same", algorithm={"forward": "winograd4_blocked"}, dtype=dtype)
    plan.forward(x, kernel, np.zeros(2, dtype))  # (a forward only: its gradients are the F(2x2) step's kernels)


def _direct_filters(dtype: Any) -> None:
    x = np.ones((2, 6, 6, 2), dtype)
    for filters in (32, 16):  # (the two register blocks)
        kernel = np.ones((3, 3, 2, filters), dtype)
        algorithm = {"forward": "direct_filters", "kernel_grad": "direct_filters"}
        plan = Conv2DPlan(x.shape, kernel.shape, padding="same", algorithm=algorithm, dtype=dtype)
        out = plan.forward(x, kernel, np.zeros(filters, dtype))
        plan.backward(out, x, kernel, compute_grad_x=False)
        kernel = np.ones((1, 1, 2, filters), dtype)
        Conv2DPlan(x.shape, kernel.shape, algorithm="pointwise_compiled", dtype=dtype).forward(x, kernel, None)


def _pool(dtype: Any) -> None:
    x = np.ones((2, 4, 4, 2), dtype)
    plan = MaxPool2DPlan(x.shape, (2, 2), algorithm="max_pool_compiled")
    plan.backward(plan.forward(x))


def _avg_pool(dtype: Any) -> None:
    x = np.ones((2, 4, 4, 2), dtype)
    plan = AvgPool2DPlan(x.shape, (2, 2), algorithm="avg_pool_compiled")
    plan.backward(plan.forward(x))


def _fused(dtype: Any, algorithm: str) -> None:
    x = np.ones((2, 6, 6, 2), dtype)
    kernel = np.ones((3, 3, 2, 4), dtype)
    geometry = WindowGeometry.resolve((6, 6), 3, 1, "same")
    plan = ConvMaxPoolPlan(x.shape, kernel.shape, geometry, (2, 2), get_activation("relu"), algorithm=algorithm)
    out = plan.forward(x, kernel, np.zeros(4, dtype), training=True)
    plan.backward(np.ones_like(out), kernel)


def _tanh(dtype: Any) -> None:
    if dtype == np.float32:  # (float64 tanh is np.tanh's)
        tanh(np.ones(4, dtype))


def _adam(dtype: Any) -> None:
    param, grad, m, v = (np.ones(3, dtype) for _ in range(4))
    adam_update_jit(param, grad, m, v, 0.1, 0.001, 1e-7, 0.001)


def _handoff(dtype: Any) -> None:
    run_pieces([lambda: None, lambda: None], helpers=1)  # (the flag kernels: the team's spin-waits)


def _batch_norm(dtype: Any) -> None:
    x = np.ones((4, 3), dtype)
    stats = [np.zeros(3, dtype), np.ones(3, dtype)]
    plan = BatchNormPlan(dtype, relu=True, algorithm="batch_norm_compiled")
    plan.forward(x, None, None, *stats, momentum=0.9, epsilon=1e-3, training=True)
    plan.backward(x)


# The longest first (seconds to compile for float32 on the AMD EPYC, one process with an empty cache, in brackets;
# the first step also pays Numba's start-up, ~2 s), so that two processes finish together. Every kernel is serial
# (parallel_ranges splits its range over threads): about a third of a parallel=True kernel's compile time (the
# seconds as parallel=True kernels, measured the same way before they became serial, after "was").
STEPS: tuple[tuple[str, Callable[[Any], None]], ...] = (
    ("direct convolution, register blocks", _direct_filters),  # 9.8 (six generated kernels; was 2.8 for one)
    ("depthwise convolution", _depthwise),  # 7.5 (per-column and row-span kernels)
    ("winograd transforms", lambda dtype: _conv(dtype, 2, "winograd")),  # 4.8 (was 17.8)
    ("winograd F(4x4) transforms", _winograd4),  # 2.0
    ("direct convolution", lambda dtype: _conv(dtype, 2, {"forward": "direct_compiled"})),  # 5.1
    ("im2col + col2im", _im2col_col2im),  # 1.6 (was 3.7)
    ("fused stage, direct kernels", lambda dtype: _fused(dtype, "conv_pool_direct")),  # 2.5 (was 18.5)
    ("average pooling", _avg_pool),  # 3.4 (was 6.3)
    ("max pooling", _pool),  # 3.1 (was 6.0)
    ("batch norm", _batch_norm),  # 1.8
    ("fused stage, GEMM path", lambda dtype: _fused(dtype, "conv_pool_gemm")),  # 1.7 (was 4.1)
    ("im2col into a plain buffer", lambda dtype: _conv(dtype, 2, "grouped_gemm")),  # 0.6
    ("tanh", _tanh),  # 0.5 float32 only
    ("adam update", _adam),  # 0.3
    ("thread hand-off spin-waits", _handoff),  # 0.5, the same for every dtype
)


def _run_steps(jobs: Sequence[tuple[str, str]]) -> list[str]:
    """Run the named steps ``(dtype name, step name)``; ``'float32 winograd transforms: 3.1 s'`` per step."""
    steps = dict(STEPS)
    done = []
    for dtype_name, name in jobs:
        start = time.perf_counter()
        steps[name](np.dtype(dtype_name))
        done.append(f"{dtype_name} {name}: {time.perf_counter() - start:.1f} s")
    return done


def precompile(
    dtypes: Sequence[Any] = ("float32",), report: Callable[[str], Any] | None = None, *, processes: int = 1
) -> list[str]:
    """Compile every kernel for each dtype that gets compiled kernels (:func:`convlens.ops.jit.compiled_for`).

    Returns the steps run, as ``'float32 winograd transforms: 3.1 s'``; ``report`` gets each as it finishes.
    ``processes`` > 1 compiles the steps in that many fresh processes at once (each kernel compiles in one of
    them, into the on-disk cache this process then loads): the wall time of a fresh checkout's first test run
    drops from the sum of the steps to about the largest share.
    """
    jobs = [(d.name, name) for d in (np.dtype(d) for d in dtypes) if compiled_for(d) for name, _ in STEPS]
    if processes <= 1 or len(jobs) < 2:
        done = []
        for job in jobs:
            done += _run_steps([job])
            if report is not None:
                report(done[-1])
        return done
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked OpenMP or BLAS threads
    done = []
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        futures = [pool.submit(_run_steps, [job]) for job in jobs]
        for future in as_completed(futures):
            lines = future.result()
            done += lines
            if report is not None:
                for line in lines:
                    report(line)
    return done
