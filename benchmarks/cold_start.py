"""Cold start and import order (issue 16's targets: cold <= 1.5x warm; import order within noise).

Cold start: ``convlens train --verbose 0`` (the course model, one epoch of the packaged MNIST) with an empty
Numba cache, as the first run after ``pip install``, against the same command with every kernel already cached.
Each run gets its own cache folder through ``NUMBA_CACHE_DIR`` (an empty one for a cold run, one that a first
run filled for a warm run), so the package's own cache is neither read nor disturbed. Cold and warm runs
alternate, so a slow minute of this noisy machine hits both.

Import order: a fresh process imports NumPy before convlens, or convlens before NumPy, then times two
Winograd conv2d cases forward + backward (the cases the OpenBLAS thread timeout of
``convlens/blas_threads.py`` matters for). The two orders alternate over rounds; medians are reported.

Usage: python benchmarks/cold_start.py [--rounds 3] [--order-rounds 5] [--skip-train] [--skip-order]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, table

ORDER_CASES = [(128, 14, 32, 64), (32, 56, 64, 64)]  # (N, H=W, Cin, Cout), 3x3 'same' stride 1: Winograd

_ORDER_WORKER = """
import sys
if sys.argv[1] == "numpy-first":
    import numpy as np
    import convlens
else:
    import convlens
    import numpy as np
import json, statistics, time
from convlens.allocator import tuned
from convlens.ops.conv import Conv2DPlan

out = {}
rng = np.random.default_rng(0)
with tuned():
    for n, size, cin, cout in json.loads(sys.argv[2]):
        x = rng.standard_normal((n, size, size, cin), dtype=np.float32)
        k = rng.standard_normal((3, 3, cin, cout), dtype=np.float32)
        b = np.zeros(cout, np.float32)
        plan = Conv2DPlan(x.shape, k.shape, strides=1, padding="same")
        g = rng.standard_normal(plan.output_shape, dtype=np.float32)
        times = []
        for i in range(int(sys.argv[3]) + 1):
            start = time.perf_counter()
            plan.forward(x, k, b)
            plan.backward(g, x, k, compute_grad_x=True)
            if i:
                times.append(time.perf_counter() - start)
        out[str((n, size, cin, cout))] = statistics.median(times) * 1e3
print(json.dumps(out))
"""


def _train_seconds(cache_dir: str) -> float:
    """Wall time of one ``convlens train --verbose 0`` whose Numba cache is ``cache_dir``."""
    script = Path(sys.executable).with_name("convlens")
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    start = time.perf_counter()
    subprocess.run([str(script), "train", "--verbose", "0"], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def cold_start(rounds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="convlens-cold-"))
    try:
        warm_dir = str(work / "warm")
        first = _train_seconds(warm_dir)  # fills the warm cache (itself a cold run)
        cold, warm = [first], []
        for i in range(rounds):
            warm.append(_train_seconds(warm_dir))
            cold.append(_train_seconds(str(work / f"cold{i}")))
        rows = [
            ["cold (empty Numba cache)", " ".join(f"{t:.1f}" for t in cold), f"{statistics.median(cold):.1f}"],
            ["warm (kernels cached)", " ".join(f"{t:.1f}" for t in warm), f"{statistics.median(warm):.1f}"],
        ]
        print(f"convlens train --verbose 0, cold vs warm, {rounds} interleaved rounds; {machine()}")
        print(table(["run", "seconds (each)", "median"], rows))
        print(f"cold / warm: {statistics.median(cold) / statistics.median(warm):.2f}x (target <= 1.5x)\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def import_order(rounds: int, repeats: int = 9) -> None:
    orders = ["numpy-first", "convlens-first"]
    results: dict[str, dict[str, list[float]]] = {o: {} for o in orders}
    for r in range(rounds):
        for order in orders if r % 2 == 0 else orders[::-1]:
            proc = subprocess.run(
                [sys.executable, "-c", _ORDER_WORKER, order, json.dumps(ORDER_CASES), str(repeats)],
                check=True,
                capture_output=True,
                text=True,
            )
            for case, ms in json.loads(proc.stdout.strip().splitlines()[-1]).items():
                results[order].setdefault(case, []).append(ms)
    rows = []
    for case in results[orders[0]]:
        a = statistics.median(results["numpy-first"][case])
        b = statistics.median(results["convlens-first"][case])
        rows.append([f"conv 3x3 same {case} fwd+bwd", f"{a:.2f}", f"{b:.2f}", f"{a / b:.2f}"])
    threads = os.environ.get("CONVLENS_NUM_THREADS", "all cores")
    print(f"Import order, {rounds} alternating rounds of fresh processes, threads: {threads}; {machine()}")
    print(table(["case", "NumPy first ms", "convlens first ms", "ratio"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="cold/warm pairs of `convlens train`")
    parser.add_argument("--order-rounds", type=int, default=6, help="fresh processes per import order")
    parser.add_argument("--skip-train", action="store_true", help="only the import-order part")
    parser.add_argument("--skip-order", action="store_true", help="only the cold-start part")
    args = parser.parse_args()
    if not args.skip_train:
        cold_start(args.rounds)
    if not args.skip_order:
        import_order(args.order_rounds)


if __name__ == "__main__":
    main()
