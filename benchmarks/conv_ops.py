"""conv2d forward+backward (input, kernel and bias gradients), pooling and the zoo's layers: convlens vs PyTorch.

Each contender runs in its own fresh process, interleaved over several rounds; medians are reported.
Ratio = convlens time / PyTorch channels_last time (<= 1 means convlens is as fast or faster).
"convlens NumPy ms" is the same code with the compiled kernels off (CONVLENS_JIT=0): what NumPy alone reaches.
"algorithms" is plan.algorithms (forward / kernel gradient / input gradient; one name when all three agree) of the
compiled run; "+ JIT" when Numba kernels ran (im2col/col2im, Winograd transforms, pooling).
Usage: python benchmarks/conv_ops.py [--rounds 3] [--repeats 7] [--no-numpy-only]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Any

from _common import TUNED_MALLOC, has_torch, machine, run_peer, table
from _conv_cases import CASES, LAYER_CASES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-numpy-only", action="store_true", help="skip the CONVLENS_JIT=0 column")
    args = parser.parse_args()
    who = ["convlens"] + ([] if args.no_numpy_only else ["numpy_only"])
    who += ["torch_cl", "torch_nchw"] if has_torch() else []
    results: dict[str, dict[str, list[float]]] = {w: {} for w in who}
    algorithms: dict[str, str] = {}
    for _ in range(args.rounds):
        for w in who:
            env = TUNED_MALLOC if w == "torch_cl" else {"CONVLENS_JIT": "0"} if w == "numpy_only" else {}
            job = {"who": "convlens" if w == "numpy_only" else w, "repeats": args.repeats}
            out = run_peer("_conv_cases.py", job, env)
            for key, value in out.items():
                if isinstance(value, float | int):
                    results[w].setdefault(key, []).append(value)
            if w == "convlens":
                algorithms = out.get("algorithms", algorithms)
            time.sleep(1.0)
    med = {w: {k: statistics.median(v) for k, v in r.items()} for w, r in results.items()}
    gemm = med["convlens"]["gemm_gflops"]
    rows = []
    ratios = []
    shapes = {str(c): c for c in CASES}
    layer_labels = [c[0] for c in LAYER_CASES]
    for case in [*shapes, "pool", *layer_labels]:
        ours = med["convlens"][case]
        label = case if case != "pool" else "max-pool 2x2 (128, 28x28, 32)"
        row = [label, algorithms.get(case, "-"), f"{ours:.1f}"]
        if "numpy_only" in med:
            row.append(f"{med['numpy_only'][case]:.1f}")
        if "torch_cl" in med:
            peer = med["torch_cl"][case]
            ratios.append(ours / peer)
            row += [f"{peer:.1f}", f"{med['torch_nchw'][case]:.1f}", f"{ours / peer:.2f}"]
        flops = _flops(case, shapes, LAYER_CASES)
        row.append(f"{flops / (ours / 1e3) / 1e9:.0f} ({flops / (ours / 1e3) / 1e9 / gemm:.0%})" if flops else "-")
        rows.append(row)
    headers = ["case (N, HxW, Cin, Cout, k, s, pad)", "algorithms", "convlens ms"]
    if "numpy_only" in med:
        headers.append("convlens NumPy ms")
    if "torch_cl" in med:
        headers += ["torch channels_last ms", "torch NCHW ms", "ratio"]
    headers.append("convlens GFLOP/s (share of GEMM rate)")
    print(f"conv2d fwd+bwd, median of {args.rounds} rounds x {args.repeats} repeats; {machine()}")
    print(f"float32 GEMM rate (NumPy BLAS, 2048^3): {gemm:.0f} GFLOP/s")
    print(table(headers, rows))
    if ratios:
        first = len(CASES) + 1  # the cases before the zoo's layers were added
        print(
            f"geometric mean ratio: {_geomean(ratios):.2f} (all {len(ratios)} cases); "
            f"{_geomean(ratios[:first]):.2f} over the first {first} (conv cases + max-pool)"
        )


def _geomean(values: list[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def _flops(case: str, shapes: dict[str, tuple[Any, ...]], layer_cases: list[tuple[Any, ...]]) -> float:
    """FLOPs of the direct convolution's forward + two backward GEMMs (0 for pooling and BatchNorm)."""
    if case in shapes:
        n, size, cin, cout, k, stride, padding = shapes[case]
        groups = 1
    else:
        found = [c for c in layer_cases if c[0] == case]
        if not found or found[0][1] in ("batchnorm", "avgpool"):
            return 0.0
        _, kind, n, size, cin, cout, k, stride, padding, _ = found[0]
        groups = cin if kind == "depthwise" else 1
    out = -(-size // stride) if padding == "same" else (size - k) // stride + 1
    return 3 * 2 * n * out * out * k * k * (cin // groups) * cout


if __name__ == "__main__":
    main()
