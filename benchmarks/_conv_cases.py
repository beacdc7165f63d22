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
    from convlens.ops.pooling import MaxPool2DPlan

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
    out["algorithms"] = algorithms
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    out["gemm_gflops"] = 2 * 2048**3 / _median_ms(lambda: a @ a, repeats) / 1e6
    return out


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
