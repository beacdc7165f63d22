"""conv2d forward+backward (input, kernel and bias gradients) and max-pool 2x2 fwd+bwd: convlens vs PyTorch.

Each contender runs in its own fresh process, interleaved over several rounds; medians are reported.
Ratio = convlens time / PyTorch channels_last time (<= 1 means convlens is as fast or faster).
Usage: python benchmarks/conv_ops.py [--rounds 3] [--repeats 7]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from _common import TUNED_MALLOC, has_torch, machine, run_peer, table
from _conv_cases import CASES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    who = ["convlens"] + (["torch_cl", "torch_nchw"] if has_torch() else [])
    results: dict[str, dict[str, list[float]]] = {w: {} for w in who}
    for _ in range(args.rounds):
        for w in who:
            env = TUNED_MALLOC if w == "torch_cl" else {}
            out = run_peer("_conv_cases.py", {"who": w, "repeats": args.repeats}, env)
            for key, value in out.items():
                results[w].setdefault(key, []).append(value)
            time.sleep(1.0)
    med = {w: {k: statistics.median(v) for k, v in r.items()} for w, r in results.items()}
    gemm = med["convlens"]["gemm_gflops"]
    rows = []
    ratios = []
    shapes = {str(c): c for c in CASES}
    for case in [*shapes, "pool"]:
        ours = med["convlens"][case]
        row = [case if case != "pool" else "max-pool 2x2 (128, 28x28, 32)", f"{ours:.1f}"]
        if "torch_cl" in med:
            peer = med["torch_cl"][case]
            ratios.append(ours / peer)
            row += [f"{peer:.1f}", f"{med['torch_nchw'][case]:.1f}", f"{ours / peer:.2f}"]
        if case != "pool":
            n, size, cin, cout, k, stride, padding = shapes[case]
            out = -(-size // stride) if padding == "same" else (size - k) // stride + 1
            flops = 3 * 2 * n * out * out * k * k * cin * cout  # forward + two backward GEMMs
            row.append(f"{flops / (ours / 1e3) / 1e9:.0f} ({flops / (ours / 1e3) / 1e9 / gemm:.0%})")
        else:
            row.append("-")
        rows.append(row)
    headers = ["case (N, HxW, Cin, Cout, k, s, pad)", "convlens ms"]
    if "torch_cl" in med:
        headers += ["torch channels_last ms", "torch NCHW ms", "ratio"]
    headers.append("convlens GFLOP/s (share of GEMM rate)")
    print(f"conv2d fwd+bwd, median of {args.rounds} rounds x {args.repeats} repeats; {machine()}")
    print(f"float32 GEMM rate (NumPy BLAS, 2048^3): {gemm:.0f} GFLOP/s")
    print(table(headers, rows))
    if ratios:
        print(f"geometric mean ratio: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f}")


if __name__ == "__main__":
    main()
