"""Side-by-side course-model throughput: convlens vs PyTorch (channels_last tuned, and NCHW)."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from _common import TUNED_MALLOC, has_torch, machine, run_peer, table


def compare(mode: str, n: int, batch: int, repeats: int, rounds: int) -> list[list[Any]]:
    """Run each contender ``rounds`` times in fresh processes (interleaved); return table rows."""
    # (name, script, extra args, extra environment, interpreter)
    contenders: list[tuple[str, str, dict[str, Any], dict[str, str], str | None]] = [
        ("convlens", "_convlens_course.py", {}, {}, None),
    ]
    keras_python = os.environ.get("CONVLENS_KERAS_PYTHON")
    if keras_python:
        contenders.append(("Keras 3 (TensorFlow CPU)", "_keras_course.py", {}, {}, keras_python))
    if has_torch():
        contenders += [
            (
                "PyTorch channels_last (malloc tuned)",
                "_torch_course.py",
                {"layout": "channels_last"},
                TUNED_MALLOC,
                None,
            ),
            ("PyTorch NCHW", "_torch_course.py", {"layout": "nchw"}, {}, None),
        ]
    results: dict[str, list[float]] = {name: [] for name, *_ in contenders}
    peaks: dict[str, float] = {}
    for _ in range(rounds):
        for name, script, extra, env, python in contenders:
            args = {"n": n, "batch": batch, "repeats": repeats, "mode": mode, **extra}
            out = run_peer(script, args, env, python=python)
            results[name].extend(out["times"])
            peaks[name] = max(peaks.get(name, 0.0), out["peak_mb"])
            time.sleep(1.0)  # cool-down between heavy processes
    ours = n / statistics.median(results["convlens"])
    rows = []
    for name, *_ in contenders:
        rate = n / statistics.median(results[name])
        rows.append([name, f"{rate:,.0f}", f"{ours / rate:.2f}", f"{peaks[name]:.0f}"])
    return rows


def main(mode: str) -> None:
    parser = argparse.ArgumentParser(description=f"course model {mode} throughput, convlens vs PyTorch")
    parser.add_argument("--n", type=int, default=60000 if mode == "train" else 10000)
    parser.add_argument("--batch", type=int, default=128 if mode == "train" else 1000)
    parser.add_argument("--repeats", type=int, default=1 if mode == "train" else 3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--keras-python",
        default=os.environ.get("CONVLENS_KERAS_PYTHON"),
        help="an interpreter with tensorflow-cpu: adds Keras 3 as a peer",
    )
    args = parser.parse_args()
    if args.keras_python:
        os.environ["CONVLENS_KERAS_PYTHON"] = args.keras_python
    rows = compare(mode, args.n, args.batch, args.repeats, args.rounds)
    what = "training (Adam, one epoch)" if mode == "train" else "inference"
    print(f"Course model {what}, {args.n} images, batch {args.batch}; {machine()}")
    print(table(["contender", "images/s", "convlens speed ratio (>1 = convlens faster)", "peak RSS MB"], rows))
