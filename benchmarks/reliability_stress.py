"""Reliability stress: seeded bad/edge-case calls and damaged files; prints the outcome counts per class.

    python benchmarks/reliability_stress.py --seed 0            # 10,000+ calls, 1,100 model files, 1,100 IDX files
    python benchmarks/reliability_stress.py --seed 0 --quick    # a tenth of that
    python benchmarks/reliability_stress.py --show 3            # plus 3 examples per (family, class) that is not fine

Every case runs in a forked worker with its address space capped (RLIMIT_AS: the worker's size after start-up
plus --memory-gib) and a timeout (4 s for calls and files, 10-30 s for command lines). Classes (see
_stress_runner.py): clean_error, valid, other_exception, silent_wrong, memory_or_hang. The same seed gives
the same cases on any version of convlens (only APIs that existed before the reliability work are called).
Nothing here measures speed; the seconds shown are the time each worker spent per case.
"""

from __future__ import annotations

import os

# Before NumPy loads: one BLAS thread per worker.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("CONVLENS_NUM_THREADS", "1")

import argparse
import collections
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from _stress_calls import layer_families, op_families
from _stress_cli import api_cases
from _stress_families import make_cases
from _stress_runner import CLASSES, Case, Outcome, run_cases
from tests.support import damaged_idx, damaged_models

import convlens  # noqa: F401  (before NumPy: OpenBLAS settings)


def _warm_up() -> None:
    """Load the compiled kernels once in the parent so forked workers start warm."""
    import convlens as cl

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 8, 8, 3)).astype(dtype)
        k = rng.standard_normal((3, 3, 3, 4)).astype(dtype)
        cl.ops.conv2d_backward(cl.ops.conv2d(x, k), x, k)
        cl.ops.max_pool2d_backward(cl.ops.max_pool2d(x), x)
    model = cl.Sequential(
        [
            cl.layers.Conv2D(2, 3, activation="relu", input_shape=(6, 6, 1)),
            cl.layers.MaxPooling2D(),
            cl.layers.Flatten(),
            cl.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(rng.standard_normal((8, 6, 6, 1)), rng.integers(0, 3, 8), epochs=1, verbose=0)


# ----- damaged files --------------------------------------------------------------------------------------
def _base_model() -> tuple[bytes, dict[str, Any]]:
    """A small trained model with state of every kind (weights, BN statistics, optimizer slots, history)."""
    import tempfile

    import convlens as cl

    cl.utils.set_random_seed(0)
    model = cl.Sequential(
        [
            cl.layers.Conv2D(3, 3, padding="same", activation="relu", input_shape=(6, 6, 1)),
            cl.layers.BatchNormalization(),
            cl.layers.MaxPooling2D(),
            cl.layers.Flatten(),
            cl.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((16, 6, 6, 1)), rng.integers(0, 4, 16), epochs=2, batch_size=8, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.npz"
        model.save(path)
        data = path.read_bytes()
    expected = {
        "weights": model.get_weights(),
        "config": json.loads(json.dumps(model.get_config())),
        "optimizer": model.optimizer.get_config(),
        "state": model.optimizer.get_state(),
        "loss": model.loss.name,
    }
    return data, expected


def _same_model(model: Any, expected: dict[str, Any]) -> str | None:
    weights = model.get_weights()
    if len(weights) != len(expected["weights"]):
        return f"{len(weights)} weights loaded, {len(expected['weights'])} saved"
    for i, (got, want) in enumerate(zip(weights, expected["weights"], strict=True)):
        if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want, equal_nan=True):
            return f"weight {i} differs from the saved one"
    if json.loads(json.dumps(model.get_config())) != expected["config"]:
        return "config differs from the saved one"
    if getattr(model, "compiled", False):
        if model.optimizer.get_config() != expected["optimizer"] or model.loss.name != expected["loss"]:
            return "compile settings differ from the saved ones"
        state = model.optimizer.get_state()
        if set(state) != set(expected["state"]) or any(
            not np.array_equal(np.asarray(state[k]), np.asarray(v)) for k, v in expected["state"].items()
        ):
            return "optimizer state differs from the saved one"
    return None


def model_file_cases(rng: random.Random, count: int) -> list[Case]:
    base, expected = _base_model()
    legacy = damaged_models.legacy_model_bytes(base)
    n_legacy = count // 5
    damages = [("current", d) for d in damaged_models.model_damages(base, rng, count - n_legacy)]
    damages += [("legacy", d) for d in damaged_models.model_damages(legacy, rng, n_legacy, legacy=True)]
    _prebuild([make for _, (label, make) in damages if "bomb" in label])
    cases = []
    for i, (which, (label, make)) in enumerate(damages):

        def run(make: Any = make, i: int = i) -> Any:
            import convlens as cl

            folder = Path.cwd() / f"model-case-{i}"
            folder.mkdir(exist_ok=True)
            return cl.load_model(make(folder))

        def check(model: Any) -> str | None:
            return _same_model(model, expected)

        cases.append(Case(f"files.model.{which}", f"{which}: {label}", run, "any", None, check, 6.0))
    return cases


def _prebuild(makes: list[Any]) -> None:
    """Build the bombs once here, before the workers fork (a 2 GiB deflate stream takes seconds; then cached)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        for make in makes:
            make(Path(folder)).unlink()


def idx_file_cases(rng: random.Random, count: int) -> list[Case]:
    cases = []
    damages = damaged_idx.idx_damages(rng, count)
    _prebuild([make for label, make, _ in damages if "bomb" in label])
    for i, (label, make, data) in enumerate(damages):

        def run(make: Any = make, i: int = i) -> Any:
            from convlens.datasets.idx import read_idx

            folder = Path.cwd() / f"idx-case-{i}"
            folder.mkdir(exist_ok=True)
            return read_idx(make(folder))

        def check(result: Any, data: bytes | None = data, label: str = label) -> str | None:
            if data is None:
                return f"read a {label} without an error"
            reference = damaged_idx.idx_reference(data)
            if reference is None:
                return "returned an array for bytes that are not a valid IDX file"
            if result.dtype != reference.dtype or result.shape != reference.shape:
                got, want = f"{result.dtype}{result.shape}", f"{reference.dtype}{reference.shape}"
                return f"dtype/shape {got} differ from the file's {want}"
            if not np.array_equal(result, reference, equal_nan=True):
                return "values differ from the file's"
            return None

        kind = "any"
        cases.append(Case("files.idx", label, run, kind, None, check, 6.0))
    return cases


# ----- report ---------------------------------------------------------------------------------------------
def _group(family: str) -> str:
    if family.startswith("files.model"):
        return "model files"
    if family.startswith("files.idx"):
        return "IDX files"
    return "calls"


def report(cases: list[Case], outcomes: list[Outcome], show: int) -> dict[str, Any]:
    totals: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    families: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    unnamed = collections.Counter()
    named = collections.Counter()
    slow_errors = 0
    times = collections.defaultdict(list)
    for case, outcome in zip(cases, outcomes, strict=True):
        group = _group(case.family)
        totals[group][outcome.cls] += 1
        families[case.family][outcome.cls] += 1
        times[group].append(outcome.seconds)
        if outcome.cls == "clean_error":
            if outcome.seconds > 1.0 and not case.family.startswith("cli"):
                slow_errors += 1
            if outcome.names_arg is not None:
                (named if outcome.names_arg else unnamed)[group] += 1
    width = max(len(c) for c in CLASSES)
    print("\n== outcomes per class ==")
    print(f"{'':18}" + "".join(f"{c:>{width + 2}}" for c in CLASSES) + f"{'total':>8}")
    for group in ("calls", "model files", "IDX files"):
        row = totals[group]
        print(f"{group:18}" + "".join(f"{row[c]:>{width + 2}}" for c in CLASSES) + f"{sum(row.values()):>8}")
    print(
        "\nclean errors of invalid-argument cases that name the argument: "
        + ", ".join(f"{g} {named[g]}/{named[g] + unnamed[g]}" for g in ("calls",) if named[g] + unnamed[g])
    )
    print(f"clean errors that took more than 1 s (outside the CLI): {slow_errors}")
    for group, values in times.items():
        values.sort()
        print(
            f"time per case, {group}: median {values[len(values) // 2] * 1e3:.1f} ms, "
            f"99th percentile {values[int(len(values) * 0.99)] * 1e3:.1f} ms, max {values[-1]:.2f} s"
        )
    print("\n== per family (only those with other_exception, silent_wrong or memory_or_hang) ==")
    for family, row in sorted(families.items()):
        bad = {c: row[c] for c in ("other_exception", "silent_wrong", "memory_or_hang") if row[c]}
        if bad:
            print(f"  {family:42} {sum(row.values()):5} cases  " + "  ".join(f"{c} {n}" for c, n in bad.items()))
    if show:
        print("\n== clean errors that do not name the damaged argument ==")
        seen_unnamed: collections.Counter[str] = collections.Counter()
        for case, outcome in zip(cases, outcomes, strict=True):
            if outcome.names_arg is False and seen_unnamed[case.family] < show:
                seen_unnamed[case.family] += 1
                print(f"  {case.label}\n      -> {outcome.detail}")
        print("\n== examples ==")
        seen: collections.Counter[tuple[str, str]] = collections.Counter()
        for case, outcome in zip(cases, outcomes, strict=True):
            if outcome.cls in ("clean_error", "valid"):
                continue
            key = (case.family, outcome.cls)
            if seen[key] < show:
                seen[key] += 1
                print(f"  [{outcome.cls}] {case.label}\n      -> {outcome.detail}")
    return {
        "totals": {g: dict(c) for g, c in totals.items()},
        "families": {f: dict(c) for f, c in families.items()},
        "named": dict(named),
        "unnamed": dict(unnamed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tenth of the cases")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-gib", type=float, default=2.0, help="address space per worker beyond start-up")
    parser.add_argument("--show", type=int, default=0, help="examples per (family, class) that is not fine")
    parser.add_argument("--only", default=None, help="only families starting with this prefix")
    parser.add_argument("--json", default=None, help="write the counts to this file")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0

    def n(count: int) -> int:
        return max(1, math.ceil(count * scale))

    rng = random.Random(args.seed)
    started = time.perf_counter()
    cases: list[Case] = []
    cases += make_cases(op_families(), n(5000), rng, "ops")
    cases += make_cases(layer_families(), n(2300), rng, "layers")
    cases += api_cases(
        rng, {"models": n(1400), "optimizers": n(450), "callbacks": n(400), "misc": n(300), "cli": n(450)}
    )
    cases += model_file_cases(rng, n(1100))
    cases += idx_file_cases(rng, n(1100))
    if args.only:
        cases = [c for c in cases if c.family.startswith(args.only)]
    print(f"{len(cases)} cases (seed {args.seed}) generated in {time.perf_counter() - started:.1f} s", flush=True)
    _warm_up()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 30 or done == total:
            last[0] = now
            print(f"  {done}/{total} cases, {now - started:.0f} s", flush=True)

    outcomes = run_cases(cases, workers=args.workers, memory_gib=args.memory_gib, progress=progress)
    summary = report(cases, outcomes, args.show)
    print(f"\n{len(cases)} cases in {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
