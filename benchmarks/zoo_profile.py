"""Where a zoo model's time goes in convlens: per-stage forward/backward shares of a training step and of
inference, plus (``--cprofile``) the top functions of a cProfile of training steps.

Usage: python benchmarks/zoo_profile.py [--models vgg_bn,depthwise_separable] [--steps 20] [--cprofile]

Threads: ``CONVLENS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/zoo_profile.py`` profiles one thread (the
compiled kernels split over convlens's own threads; BLAS follows ``OMP_NUM_THREADS``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import convlens  # before NumPy, as a user's script

# isort: split
import numpy as np
from _common import machine, table
from _zoo_models import INPUT_SHAPES, MODELS, build

from convlens.inference import split_threads


def _stage_name(stage: Any) -> str:
    return str(stage.name)  # (a fused stage: its layers' names joined by '+')


def _timed(totals: dict[str, float], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    return wrapper


def instrument(model: Any, totals: dict[str, float]) -> int:
    """Wrap every stage's forward/backward (and the optimizer) with timers adding into ``totals``. With a
    data-parallel step (convlens.data_parallel) these are the stages each thread runs, whose times add up over
    the threads (the model's own stages stay unwrapped: wrapped, they would not split): returns the threads."""
    twins = getattr(getattr(model, "_split_twins", None), "per_thread", None)
    for stages in twins or [model.stages()]:
        _wrap_stages(stages, totals)
    model.optimizer.apply = _timed(totals, "optimizer (Adam)", model.optimizer.apply)
    return len(twins or [None])


def _wrap_stages(stages: list[Any], totals: dict[str, float]) -> None:
    for stage in stages:
        name = _stage_name(stage)
        stage.forward = _timed(totals, f"{name} forward", stage.forward)
        stage.backward = _timed(totals, f"{name} backward", stage.backward)
    if hasattr(stages[-1], "backward_linear"):  # the loss starts there (softmax + cross-entropy fused)
        name = _stage_name(stages[-1])
        stages[-1].backward_linear = _timed(totals, f"{name} backward", stages[-1].backward_linear)


def profile(name: str, steps: int, batch: int, infer_batch: int, use_cprofile: bool) -> str:
    convlens.utils.set_random_seed(0)
    model = build(convlens, name)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((batch * steps, *INPUT_SHAPES[name]), dtype=np.float32)
    y = rng.integers(0, 10, batch * steps)
    model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, epochs=1, verbose=0)  # compile, plan, warm
    totals: dict[str, float] = defaultdict(float)
    threads = instrument(model, totals)
    start = time.perf_counter()
    if use_cprofile:
        prof = cProfile.Profile()
        prof.enable()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    if use_cprofile:
        prof.disable()
    total = time.perf_counter() - start
    busy = total * threads
    rows = [[k, f"{v / steps * 1e3:.2f}", f"{v / busy:.1%}"] for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]
    rest = busy - sum(totals.values())
    rows.append(["(loss, metrics, batching, waits, rest)", f"{rest / steps * 1e3:.2f}", f"{rest / busy:.1%}"])
    halves = f"; {threads} threads each run half of every batch: times are summed over them" * (threads > 1)
    out = [
        f"\n### {name}: training step, batch {batch}: {total / steps * 1e3:.1f} ms/step "
        f"({batch * steps / total:,.0f} images/s){halves}\n",
        table(["stage", "ms/step", "share"], rows),
    ]
    if threads > 1:
        _wrap_stages(model.stages(), totals)  # (inference runs the model's own stages)
    totals.clear()
    xi = rng.random((infer_batch, *INPUT_SHAPES[name]), dtype=np.float32)
    model.predict(xi, batch_size=infer_batch, verbose=0)
    totals.clear()
    start = time.perf_counter()
    for _ in range(3):
        model.predict(xi, batch_size=infer_batch, verbose=0)
    total = (time.perf_counter() - start) / 3
    threads = split_threads()  # (threads that each run their own pieces: stage times add up over them)
    busy = total * threads
    rows = [[k, f"{v / 3 * 1e3:.2f}", f"{v / 3 / busy:.1%}"] for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]
    split = f"; {threads} threads run pieces at once: times are summed over them, shares of {threads} x wall" * (
        threads > 1
    )
    out += [
        f"\n{name}: inference, batch {infer_batch}: {total * 1e3:.1f} ms ({infer_batch / total:,.0f} images/s)"
        f"{split}\n",
        table(["stage", "ms/batch", "share"], rows),
    ]
    if use_cprofile:
        stream = io.StringIO()
        pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(18)
        out.append("\n" + stream.getvalue())
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--infer-batch", type=int, default=1000)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    print(f"convlens per-stage profile; {machine()}")
    for name in args.models.split(","):
        print(profile(name, args.steps, args.batch, args.infer_batch, args.cprofile), flush=True)


if __name__ == "__main__":
    main()
