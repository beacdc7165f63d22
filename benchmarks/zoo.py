"""Five classic CNNs, convlens vs Keras 3 (TensorFlow) vs PyTorch channels_last: images/s and peak RSS.

The models (benchmarks/_zoo_models.py) are written once in Keras code and run by Keras 3 and by convlens through
that same code; PyTorch 2.13 runs the equivalent model in channels_last with tuned malloc. Parameter counts are
asserted equal. Training: one epoch of ``--n`` random images (batch 128, Adam) after a warm-up; inference:
``predict`` over ``--n`` images (batch 1000). Every (contender, model, mode, threads) runs in a fresh process,
interleaved over ``--rounds`` rounds; the table shows medians, the ratio convlens / best peer (> 1: convlens
faster) and each process's peak RSS (median over rounds). Keras needs an interpreter with tensorflow-cpu:
``--keras-python PATH`` or ``CONVLENS_KERAS_PYTHON``.

Usage:
    python benchmarks/zoo.py [--rounds 3] [--threads 1,2] [--models course,vgg_bn] [--modes train,infer]
                             [--contenders convlens,keras,torch] [--json results.json]
    python benchmarks/zoo.py --from-json results.json   (print the tables of a saved run)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from _common import TUNED_MALLOC, has_torch, machine, run_peer, table
from _zoo_models import MODELS, TITLES

BATCH = {"train": 128, "infer": 1000}
NAMES = {"convlens": "convlens", "before": "convlens before", "keras": "Keras 3 (TF)", "torch": "PyTorch CL"}


def thread_env(who: str, threads: int) -> dict[str, str]:
    """Environment that pins ``who`` to ``threads`` threads (read by the libraries when they load)."""
    t = str(threads)
    env = {"OMP_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t, "MKL_NUM_THREADS": t}
    if who in ("convlens", "before"):
        env.update(NUMBA_NUM_THREADS=t, CONVLENS_NUM_THREADS=t)  # (Numba's: for older code's parallel kernels)
    elif who == "keras":
        env.update(TF_NUM_INTRAOP_THREADS=t, TF_NUM_INTEROP_THREADS=t)
    else:
        env.update(TUNED_MALLOC)
    return env


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run every job ``args.rounds`` times, interleaved; returns the raw results (JSON-ready)."""
    contenders = [c for c in args.contenders.split(",") if c]
    if args.before_src:  # A/B: another convlens source tree, interleaved with this one
        contenders.insert(1, "before")
    if "keras" in contenders and not args.keras_python:
        print("no --keras-python / CONVLENS_KERAS_PYTHON: Keras left out")
        contenders.remove("keras")
    if "torch" in contenders and not has_torch():
        print("torch is not installed: PyTorch left out")
        contenders.remove("torch")
    models = [m for m in args.models.split(",") if m]
    threads = [int(t) for t in args.threads.split(",") if t]
    modes = [m for m in args.modes.split(",") if m]
    runs: list[dict[str, Any]] = []
    loads = [os.getloadavg()[0]]
    for r in range(args.rounds):
        for t in threads:
            for model in models:
                for mode in modes:
                    for who in contenders:
                        job = {"who": who, "model": model, "mode": mode, "n": args.n, "batch": BATCH[mode]}
                        job.update(repeats=args.repeats, threads=t)
                        python = args.keras_python if who == "keras" else None
                        env = thread_env(who, t)
                        if who == "before":
                            env["PYTHONPATH"] = args.before_src
                        out = run_peer("_zoo_worker.py", job, env, python=python)
                        runs.append({**job, **out, "round": r})
                        loads.append(os.getloadavg()[0])
                        print(
                            f"round {r + 1} threads {t} {model} {mode} {who}: "
                            f"{args.n / statistics.median(out['times']):,.0f} images/s, peak {out['peak_mb']:.0f} MB, "
                            f"load {loads[-1]:.2f}",
                            flush=True,
                        )
                        time.sleep(args.cooldown)
    return {"machine": machine(), "n": args.n, "rounds": args.rounds, "runs": runs, "loads": loads}


def tables(result: dict[str, Any]) -> str:
    """The Markdown tables of a run: throughput with ratios, and peak RSS."""
    runs = result["runs"]
    params: dict[str, set[int]] = {}
    for run in runs:
        params.setdefault(run["model"], set()).add(run["params"])
    for model, counts in params.items():
        if len(counts) != 1:
            raise AssertionError(f"{model}: the contenders' parameter counts differ: {sorted(counts)}")
    keys = sorted(
        {(r["model"], r["threads"], r["mode"]) for r in runs},
        key=lambda k: (MODELS.index(k[0]), k[1], k[2] != "train"),
    )
    whos = [w for w in NAMES if any(r["who"] == w for r in runs)]
    rows, memory = [], []
    for model, t, mode in keys:
        rate, peak = {}, {}
        for who in whos:
            mine = [r for r in runs if (r["model"], r["threads"], r["mode"], r["who"]) == (model, t, mode, who)]
            if mine:
                rate[who] = result["n"] / statistics.median([x for r in mine for x in r["times"]])
                peak[who] = statistics.median(r["peak_mb"] for r in mine)
        peers = [rate[w] for w in rate if w not in ("convlens", "before")]
        ratio = f"{rate['convlens'] / max(peers):.2f}" if peers and "convlens" in rate else "-"
        label = [TITLES[model], str(t), mode]
        rows.append([*label, *(f"{rate[w]:,.0f}" if w in rate else "-" for w in whos), ratio])
        memory.append([*label, *(f"{peak[w]:,.0f}" if w in peak else "-" for w in whos)])
    head = ["model", "threads", "mode"]
    counts = ", ".join(f"{m} {next(iter(c)):,}" for m, c in params.items())
    loads = result["loads"]
    lines = [
        f"Zoo: {result['n']} images, train batch 128 (Adam, one epoch after warm-up), infer batch 1000; "
        f"median of {result['rounds']} rounds in fresh processes; {result['machine']}",
        f"load average (1 min) during the run: {min(loads):.2f}-{max(loads):.2f} "
        f"(median {statistics.median(loads):.2f})",
        f"parameters (equal for every contender): {counts}",
        "",
        table([*head, *(f"{NAMES[w]} images/s" for w in whos), "convlens / best peer"], rows),
        "",
        "Peak RSS of each process (MB, median over rounds):",
        "",
        table([*head, *(NAMES[w] for w in whos)], memory),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1, help="timed epochs / predict passes per process")
    parser.add_argument("--n", type=int, default=10000, help="images per epoch / predict pass")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--modes", default="train,infer")
    parser.add_argument("--contenders", default="convlens,keras,torch")
    parser.add_argument("--cooldown", type=float, default=1.0, help="seconds between processes")
    parser.add_argument("--keras-python", default=os.environ.get("CONVLENS_KERAS_PYTHON"))
    parser.add_argument("--before-src", help="A/B: also run convlens from this src folder (contender 'before')")
    parser.add_argument("--json", help="also save the raw results here")
    parser.add_argument("--from-json", help="print the tables of a saved run instead of measuring")
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as handle:
            result = json.load(handle)
    else:
        result = measure(args)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(result, handle)
    print(tables(result))


if __name__ == "__main__":
    main()
