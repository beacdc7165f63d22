"""Timing worker for conv_ops.py: run in a fresh process, print one JSON line of median milliseconds."""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

if __name__ == "__main__" and '"convlens"' in sys.argv[1]:
    import convlens  # noqa: F401  - before NumPy, as a user's `import convlens as cl` script or the CLI loads it
import numpy as np

CASES: list[tuple[int, int, int, int, int, int, str]] = [
    # (N, H=W, Cin, Cout, k, stride, padding)
    (128, 28, 1, 32, 3, 1, "same"),
    (128, 14, 32, 64, 3, 1, "same"),
    (64, 32, 3, 64, 3, 1, "same"),
    (32, 56, 64, 64, 3, 1, "same"),
    (32, 28, 64, 128, 3, 2, "same"),
    (128, 28, 1, 32, 5, 1, "valid"),
]
POOL_CASE = (128, 28, 32)
# The layers of the zoo's models 2-5 (benchmarks/_zoo_models.py), run as layers (activation included) forward
# in training mode + backward: (label, kind, N, H=W, Cin, Cout, k, stride, padding, activation).
LAYER_CASES: list[tuple[str, str, int, int, int, int, int, int, str, str]] = [
    ("conv 5x5 tanh (128, 28x28, 1->6, same)", "conv", 128, 28, 1, 6, 5, 1, "same", "tanh"),
    ("conv 5x5 tanh (128, 14x14, 6->16, valid)", "conv", 128, 14, 6, 16, 5, 1, "valid", "tanh"),
    ("conv 3x3 (128, 32x32, 32->32, same)", "conv", 128, 32, 32, 32, 3, 1, "same", "linear"),
    ("pointwise 1x1 (128, 13x13, 32->64)", "conv", 128, 13, 32, 64, 1, 1, "valid", "linear"),
    ("pointwise 1x1 (128, 6x6, 64->128)", "conv", 128, 6, 64, 128, 1, 1, "valid", "linear"),
    ("depthwise 3x3 s1 (128, 15x15, 32)", "depthwise", 128, 15, 32, 32, 3, 1, "valid", "linear"),
    ("depthwise 3x3 s2 (128, 13x13, 64)", "depthwise", 128, 13, 64, 64, 3, 2, "valid", "linear"),
    ("BatchNorm (128, 32x32, 32)", "batchnorm", 128, 32, 32, 32, 0, 0, "", "linear"),
    ("BatchNorm (128, 13x13, 64)", "batchnorm", 128, 13, 64, 64, 0, 0, "", "linear"),
    ("average-pool 2x2 (128, 28x28, 6)", "avgpool", 128, 28, 6, 6, 2, 2, "valid", "linear"),
]


def _median_ms(fn: Any, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _names(algorithms: Any) -> str:
    """The plan's algorithms (forward / kernel grad / input grad), one name when they are all the same."""
    names = list(dict.fromkeys(algorithms))
    return names[0] if len(names) == 1 else " / ".join(algorithms)


def run_convlens(repeats: int) -> dict[str, Any]:
    from convlens.ops.conv import Conv2DPlan
    from convlens.ops.jit import jit_enabled
    from convlens.ops.pooling import AvgPool2DPlan, MaxPool2DPlan

    out: dict[str, Any] = {}
    algorithms: dict[str, str] = {}
    rng = np.random.default_rng(0)
    for case in CASES:
        n, size, cin, cout, k, stride, padding = case
        x = rng.standard_normal((n, size, size, cin), dtype=np.float32)
        kernel = rng.standard_normal((k, k, cin, cout), dtype=np.float32)
        bias = np.zeros(cout, np.float32)
        plan = Conv2DPlan(x.shape, kernel.shape, strides=stride, padding=padding)
        algorithms[str(case)] = _names(plan.algorithms) + (" + JIT" if jit_enabled() else "")
        grad = rng.standard_normal(plan.output_shape, dtype=np.float32)

        def step(plan: Any = plan, x: Any = x, kernel: Any = kernel, bias: Any = bias, grad: Any = grad) -> None:
            plan.forward(x, kernel, bias)
            plan.backward(grad, x, kernel, compute_grad_x=True)

        out[str(case)] = _median_ms(step, repeats)
    n, size, c = POOL_CASE
    x = rng.standard_normal((n, size, size, c), dtype=np.float32)
    pool = MaxPool2DPlan(x.shape, (2, 2))
    g = rng.standard_normal(pool.output_shape, dtype=np.float32)

    def pool_step() -> None:
        pool.forward(x)
        pool.backward(g)

    out["pool"] = _median_ms(pool_step, repeats)
    algorithms["pool"] = _names(pool.algorithms)
    for label, kind, n, size, cin, cout, k, stride, padding, activation in LAYER_CASES:
        layer = _convlens_layer(kind, cout, k, stride, padding, activation)
        x = rng.standard_normal((n, size, size, cin), dtype=np.float32)
        layer.build(x.shape, rng)
        grad = rng.standard_normal(layer.compute_output_shape((n, size, size, cin)), dtype=np.float32)

        def layer_step(layer: Any = layer, x: Any = x, grad: Any = grad) -> None:
            layer.forward(x, training=True)
            layer.backward(grad)

        out[label] = _median_ms(layer_step, repeats)
        plan = getattr(layer, "_plan", None)
        if kind == "avgpool":
            plan = AvgPool2DPlan(x.shape, k, stride, padding)  # (what the layer's plan chooses)
        algorithms[label] = _names(plan.algorithms) if plan is not None else "-"
    out["algorithms"] = algorithms
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    out["gemm_gflops"] = 2 * 2048**3 / _median_ms(lambda: a @ a, repeats) / 1e6
    return out


def _convlens_layer(kind: str, filters: int, k: int, stride: int, padding: str, activation: str) -> Any:
    from convlens import layers

    if kind == "conv":
        return layers.Conv2D(filters, k, strides=stride, padding=padding, activation=activation)
    if kind == "depthwise":
        return layers.DepthwiseConv2D(k, strides=stride, padding=padding, activation=activation)
    if kind == "avgpool":
        return layers.AveragePooling2D(k, strides=stride, padding=padding)
    return layers.BatchNormalization()


def _torch_layer(kind: str, cin: int, cout: int, k: int, stride: int, padding: str, activation: str) -> Any:
    import torch

    if kind == "batchnorm":
        return torch.nn.BatchNorm2d(cin, eps=1e-3, momentum=0.01)
    if kind == "avgpool":
        return torch.nn.AvgPool2d(k, stride=stride)
    pad = (k - 1) // 2 if padding == "same" else 0  # odd kernels, stride 1 when 'same'
    groups = cin if kind == "depthwise" else 1
    conv = torch.nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups)
    return torch.nn.Sequential(conv, torch.nn.Tanh()) if activation == "tanh" else conv


def run_torch(repeats: int, channels_last: bool) -> dict[str, float]:
    import torch
    import torch.nn.functional as F  # noqa: N812 - torch's own convention

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out: dict[str, float] = {}
    for case in CASES:
        n, size, cin, cout, k, stride, padding = case
        x = torch.randn(n, cin, size, size).contiguous(memory_format=fmt).requires_grad_()
        w = torch.randn(cout, cin, k, k).contiguous(memory_format=fmt).requires_grad_()
        b = torch.zeros(cout, requires_grad=True)
        if padding == "same":
            total = max((-(-size // stride) - 1) * stride + k - size, 0)
            pads = (total // 2, total - total // 2) * 2
        else:
            pads = (0, 0, 0, 0)
        with torch.no_grad():
            probe = F.conv2d(F.pad(x, pads), w, b, stride=stride)
        grad = torch.randn(probe.shape).contiguous(memory_format=fmt)

        def step(x: Any = x, w: Any = w, b: Any = b, grad: Any = grad, pads: Any = pads, stride: int = stride) -> None:
            x.grad = w.grad = b.grad = None
            y = F.conv2d(F.pad(x, pads) if any(pads) else x, w, b, stride=stride)
            y.backward(grad)

        out[str(case)] = _median_ms(step, repeats)
    n, size, c = POOL_CASE
    xp = torch.randn(n, c, size, size).contiguous(memory_format=fmt).requires_grad_()
    gp = torch.randn(n, c, size // 2, size // 2).contiguous(memory_format=fmt)

    def pool_step() -> None:
        xp.grad = None
        F.max_pool2d(xp, 2).backward(gp)

    out["pool"] = _median_ms(pool_step, repeats)
    for label, kind, n, size, cin, cout, k, stride, padding, activation in LAYER_CASES:
        module = _torch_layer(kind, cin, cout, k, stride, padding, activation).to(memory_format=fmt)
        xl = torch.randn(n, cin, size, size).contiguous(memory_format=fmt).requires_grad_()
        with torch.no_grad():
            shape = module(xl).shape
        gl = torch.randn(shape).contiguous(memory_format=fmt)

        def layer_step(module: Any = module, xl: Any = xl, gl: Any = gl) -> None:
            xl.grad = None
            module.zero_grad(set_to_none=True)
            module(xl).backward(gl)

        out[label] = _median_ms(layer_step, repeats)
    return out


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    if args["who"] == "convlens":
        from convlens.allocator import tuned

        with tuned():  # as inside model.fit
            result = run_convlens(args["repeats"])
    else:
        result = run_torch(args["repeats"], args["who"] == "torch_cl")
    print(json.dumps(result))
