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
from convlens.ops.batch_norm_plans import BatchNormPlan
from convlens.ops.conv_plan import Conv2DPlan
from convlens.ops.fused import ConvMaxPoolPlan
from convlens.ops.jit import compiled_for, threadsafe_launches
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
    kernel = np.ones((3, 3, 1, 2), dtype)
    for strides in (1, 2):  # the row-span kernels, then the per-column ones
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


def _probe() -> None:
    threadsafe_launches()  # (its tiny parallel kernel: the threading layer, once per process)


def _batch_norm(dtype: Any) -> None:
    x = np.ones((4, 3), dtype)
    stats = [np.zeros(3, dtype), np.ones(3, dtype)]
    plan = BatchNormPlan(dtype, relu=True, algorithm="batch_norm_compiled")
    plan.forward(x, None, None, *stats, momentum=0.9, epsilon=1e-3, training=True)
    plan.backward(x)


# The longest first (seconds to compile for float32 on the AMD EPYC, one process, in brackets), so that two
# processes finish together. The kernels marked serial are serial (parallel_ranges splits them over threads): a
# third of a parallel=True kernel's compile time. The Winograd transforms, the fused stage's and the im2col kernels
# stay parallel: as serial kernels they ran slower (Winograd fwd+bwd (128, 32x32, 32->32) 2.7x, the fused GEMM
# path's slab pass 1.5x, the row im2col 1.3x; AMD EPYC, 1 thread), LLVM no longer vectorising their loops.
STEPS: tuple[tuple[str, Callable[[Any], None]], ...] = (
    ("fused stage, direct kernels", lambda dtype: _fused(dtype, "conv_pool_direct")),  # 10.6
    ("winograd transforms", lambda dtype: _conv(dtype, 2, "winograd")),  # 9.9
    ("depthwise convolution", _depthwise),  # 5.4 serial (per-column and row-span kernels)
    ("direct convolution", lambda dtype: _conv(dtype, 2, {"forward": "direct_compiled"})),  # 3.7 serial
    ("im2col + col2im", _im2col_col2im),  # 3.3
    ("fused stage, GEMM path", lambda dtype: _fused(dtype, "conv_pool_gemm")),  # 3.1
    ("average pooling", _avg_pool),  # 2.1 serial (6.3 s as parallel kernels)
    ("max pooling", _pool),  # 2.0 serial (6.0 s as parallel kernels)
    ("batch norm", _batch_norm),  # 1.3
    ("im2col into a plain buffer", lambda dtype: _conv(dtype, 2, "grouped_gemm")),  # 0.3
    ("tanh", _tanh),  # 0.2 serial, float32 only
    ("threading layer probe", lambda dtype: _probe()),  # 0.0 (its kernel compiled with the others)
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
