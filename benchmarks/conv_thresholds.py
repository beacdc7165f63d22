"""Re-measure the thresholds of the algorithm selection tables (convlens.ops.conv_selection, convlens.ops.fused).

For each threshold, the competing algorithms are forced on shapes on both sides of it and timed (float32,
median of --repeats after one warm-up, milliseconds); the last column says whether the table's automatic
choice picked the faster one. Run on a quiet machine: the margins are 10-40%. Some rows depend on the thread
count: run it twice, the second time with
OPENBLAS_NUM_THREADS=1 CONVLENS_NUM_THREADS=1 NUMBA_NUM_THREADS=1.
Usage: python benchmarks/conv_thresholds.py [--repeats 7] [--batch 64] [--only TEXT]
"""

from __future__ import annotations  # noqa: I001 - convlens before NumPy

import argparse
import os
from collections.abc import Callable
from typing import Any

import convlens  # noqa: F401  - before NumPy (OPENBLAS_THREAD_TIMEOUT), as the CLI and user scripts do
import numpy as np
from _common import machine, median_time, table

from convlens.geometry import WindowGeometry
from convlens.ops.activations import get_activation
from convlens.ops.batch_norm_plans import BatchNormPlan
from convlens.ops.conv_plan import Conv2DPlan
from convlens.ops.fused import ConvMaxPoolPlan
from convlens.ops.parallel import num_threads


def conv_step(
    shape: tuple[int, ...],
    kernel: tuple[int, ...],
    algorithm: Any,
    input_only: bool,
    groups: int = 1,
    padding: str = "same",
    grad_x: bool = True,
) -> Callable[[], Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    k = rng.standard_normal(kernel, dtype=np.float32)
    plan = Conv2DPlan(shape, kernel, padding=padding, groups=groups, algorithm=algorithm)
    g = rng.standard_normal(plan.output_shape, dtype=np.float32)
    if input_only:
        strategy = plan._selected(np.dtype(np.float32)).input_grad
        return lambda: strategy.input_grad(g, x, k)

    def step() -> None:
        plan.forward(x, k)
        plan.backward(g, x, k, compute_grad_x=grad_x)

    return step


def forward_step(shape: tuple[int, ...], kernel: tuple[int, ...], algorithm: str, **kw: Any) -> Callable[[], Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    k = rng.standard_normal(kernel, dtype=np.float32)
    plan = Conv2DPlan(shape, kernel, algorithm={"forward": algorithm}, **kw)
    return lambda: plan.forward(x, k)


def batch_norm_step(shape: tuple[int, ...], algorithm: str) -> Callable[[], Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32).reshape(-1, shape[-1])
    stats = [np.zeros(shape[-1], np.float32), np.ones(shape[-1], np.float32)]
    plan = BatchNormPlan(np.float32, relu=True, algorithm=algorithm)

    def step() -> None:
        plan.forward(x, None, None, *stats, momentum=0.99, epsilon=1e-3, training=True)
        plan.backward(x)

    return step


def fused_step(shape: tuple[int, ...], kernel: tuple[int, ...], algorithm: str, grad_x: bool) -> Callable[[], Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    k = rng.standard_normal(kernel, dtype=np.float32)
    b = np.zeros(kernel[3], np.float32)
    geometry = WindowGeometry.resolve(shape[1:3], kernel[:2], 1, "same")
    plan = ConvMaxPoolPlan(shape, kernel, geometry, (2, 2), get_activation("relu"), algorithm=algorithm)
    g = rng.standard_normal(plan.output_shape, dtype=np.float32)

    def step() -> None:
        plan.forward(x, k, b, training=True, compute_grad_x=grad_x)
        plan.backward(g, k, compute_grad_x=grad_x)

    return step


ONLY = ""  # --only: the rows whose label contains it


def compare(
    rows: list[list[str]], label: str, contenders: dict[str, Callable[[], Any]], auto: str, repeats: int
) -> None:
    if ONLY not in label:
        return
    times = {name: median_time(step, repeats) * 1e3 for name, step in contenders.items()}
    best = min(times, key=lambda n: times[n])
    cells = ", ".join(f"{name} {ms:.2f}" for name, ms in times.items())
    rows.append([label, cells, auto, "yes" if auto == best else f"no ({best} faster)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--only", default="", help="run only the rows whose label contains this text")
    args = parser.parse_args()
    global ONLY
    ONLY = args.only
    n, r = args.batch, args.repeats
    rows: list[list[str]] = []
    # Winograd: C >= 16 and F >= 16 (forward + both gradients); blocked with compiled kernels.
    for c, f, size in ((8, 16, 14), (16, 32, 14), (32, 64, 14), (32, 32, 32), (64, 64, 16)):
        shape, kernel = (n, size, size, c), (3, 3, c, f)
        auto = Conv2DPlan(shape, kernel, padding="same").algorithms.forward
        steps = {a: conv_step(shape, kernel, a, False) for a in ("winograd_blocked", "winograd", "im2col")}
        compare(rows, f"fwd+bwd (N, {size}x{size}, {c}->{f}) 3x3", steps, auto, r)
    # Few channels: direct (few filters too), transposed im2col (C <= 4) or im2col; forward + kernel gradient.
    for c, size, k, f in (
        (1, 28, 5, 6),
        (1, 28, 3, 32),
        (3, 32, 3, 32),
        (6, 14, 5, 16),
        (8, 16, 3, 32),
        (16, 16, 3, 32),
    ):
        shape, kernel = (n, size, size, c), (k, k, c, f)
        auto = Conv2DPlan(shape, kernel, padding="valid").algorithms.forward
        if auto.startswith("winograd"):
            auto = "im2col"  # (the 16-channel row: only the two im2col layouts are compared)
        steps = {
            a: conv_step(shape, kernel, {"forward": a}, False, padding="valid", grad_x=False)
            for a in ("direct_compiled", "im2col_channels_first", "im2col")
        }
        compare(rows, f"fwd+kernel grad (N, {size}x{size}, {c}->{f}) {k}x{k}", steps, auto, r)
    # Few channels, many filters: the register-blocked direct forward (C <= 8, float32) against the im2col layouts;
    # inference (forward), then training (forward + kernel gradient, which direct_filters leaves to the transposed
    # im2col up to 4 channels).
    for c, size, f, stride, padding in (
        (3, 32, 32, 2, "valid"),
        (3, 32, 32, 1, "same"),
        (1, 28, 32, 1, "valid"),
        (3, 32, 64, 1, "same"),
        (4, 16, 32, 1, "same"),
        (6, 16, 32, 1, "same"),
        (8, 16, 32, 1, "same"),
    ):
        shape, kernel, kw = (n, size, size, c), (3, 3, c, f), {"strides": stride, "padding": padding}
        algorithms = ("direct_filters", "im2col_channels_first", "im2col_blocked")
        auto = Conv2DPlan(shape, kernel, **kw).algorithms.forward  # type: ignore[arg-type]
        steps = {a: forward_step(shape, kernel, a, **kw) for a in algorithms}
        label = f"(N, {size}x{size}, {c}->{f}) 3x3 s{stride} {padding}"
        compare(rows, f"forward {label}", steps, auto, r)
        if stride == 1:  # (conv_step's plans have stride 1)
            pairs = {"direct_filters": "im2col_channels_first", "im2col_channels_first": "im2col_channels_first"}
            steps = {
                a: conv_step(shape, kernel, {"forward": a, "kernel_grad": k}, False, padding=padding, grad_x=False)
                for a, k in pairs.items()
            }
            compare(rows, f"fwd+kernel grad {label}", steps, auto, r)
    # 1x1 convolutions as plain GEMMs.
    shape, kernel = (n, 13, 13, 32), (1, 1, 32, 64)
    steps = {a: conv_step(shape, kernel, {"forward": a}, False) for a in ("pointwise", "im2col")}
    compare(rows, "fwd+bwd (N, 13x13, 32->64) 1x1", steps, "pointwise", r)
    # Transposed input gradient: C >= 16 and 2C >= F (5x5 kernels, where Winograd does not apply).
    for c, f in ((8, 8), (16, 16), (16, 32), (16, 64), (24, 24), (24, 48), (32, 32), (32, 64)):
        shape, kernel = (n, 14, 14, c), (5, 5, c, f)
        auto = Conv2DPlan(shape, kernel, padding="same").algorithms.input_grad
        steps = {a: conv_step(shape, kernel, {"input_grad": a}, True) for a in ("transposed", "col2im")}
        compare(rows, f"input grad (N, 14x14, {c}->{f}) 5x5", steps, auto, r)
    # Channel-first col2im without the compiled col2im: C < 8.
    saved = os.environ.get("CONVLENS_JIT")
    os.environ["CONVLENS_JIT"] = "0"
    for c in (3, 7, 8, 12, 16):
        shape, kernel = (n, 28, 28, c), (3, 3, c, 32)
        auto = Conv2DPlan(shape, kernel, padding="same").algorithms.input_grad
        steps = {a: conv_step(shape, kernel, {"input_grad": a}, True) for a in ("col2im_channels_first", "col2im")}
        compare(rows, f"input grad, NumPy only (N, 28x28, {c}->32) 3x3", steps, auto, r)
    if saved is None:
        os.environ.pop("CONVLENS_JIT")
    else:
        os.environ["CONVLENS_JIT"] = saved
    # Depthwise: one input channel per group.
    shape, kernel = (n, 28, 28, 32), (3, 3, 1, 32)
    auto = Conv2DPlan(shape, kernel, padding="same", groups=32).algorithms.forward
    algorithms = ("depthwise_compiled", "depthwise", "grouped_gemm")
    steps = {a: conv_step(shape, kernel, a, False, groups=32) for a in algorithms}
    compare(rows, "fwd+bwd depthwise (N, 28x28, 32) 3x3", steps, auto, r)
    # Batch norm + ReLU (training step).
    shape = (n, 32, 32, 32)
    auto = BatchNormPlan(np.float32).algorithm
    steps = {a: batch_norm_step(shape, a) for a in ("batch_norm_compiled", "batch_norm_numpy")}
    compare(rows, "batch norm + ReLU fwd+bwd (N, 32x32, 32)", steps, auto, r)
    # Fused conv + max-pool: direct kernels for 2 <= C <= 6 when the input gradient is needed.
    geometry = WindowGeometry.resolve((28, 28), 3, 1, "same")
    for c, grad_x in ((1, True), (3, True), (6, True), (8, True), (12, True), (1, False), (3, False), (8, False)):
        shape, kernel = (n, 28, 28, c), (3, 3, c, 32)
        relu = get_activation("relu")
        auto = ConvMaxPoolPlan(shape, kernel, geometry, (2, 2), relu, compute_grad_x=grad_x).algorithms
        steps = {name: fused_step(shape, kernel, name, grad_x) for name in ("conv_pool_direct", "conv_pool_gemm")}
        compare(rows, f"fused stage (N, 28x28, {c}->32), grad_x={grad_x}", steps, auto, r)
    print(f"selection thresholds, float32, N={n}, median of {r}, ms; {num_threads()} thread(s); {machine()}")
    print(table(["case", "forced algorithms (ms)", "automatic choice", "choice is the faster"], rows))


if __name__ == "__main__":
    main()
