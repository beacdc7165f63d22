"""Inference in cache-sized chunks: ``predict`` runs each batch through the model a few rows at a time.

In inference every sample is computed on its own (no batch statistics, no dropout), so a batch can go
through the layers in smaller pieces with the same results. Pieces whose largest activation fits in a few
MB keep every layer's arrays in cache and reuse the allocator's memory instead of touching fresh pages,
and the peak memory of ``predict`` no longer grows with ``batch_size``: measured on the zoo models
(benchmarks/zoo.py, 1 thread, Intel Xeon), batch 1000 in pieces against whole: course 22.0k -> 31.2k
images/s, Keras's simple convnet 10.3k -> 14.5k, the depthwise-separable model 12.6k -> 15.9k; the small
VGG unchanged.

With several threads each thread takes whole pieces through every layer (:func:`split_threads`): its compiled
kernels run serially on it, its GEMMs on one BLAS thread, its layers' scratch buffers come from a workspace
slot of its own, and the next piece goes to whichever thread is free. Splitting each layer's work instead
hands work out and joins it several times per layer; the whole-model split does so once per ``predict`` batch.
Measured with 2 threads (Intel Xeon, 2 cores; ``python benchmarks/threads_ab.py --what predict``: ``predict`` of
10,000 images at batch 1000, in one process, median of 3, ``CONVLENS_SPLIT_PREDICT=0`` against ``1``): course
35.1k -> 59.1k images/s, Keras's simple convnet 17.0k -> 22.5k, LeNet-5 32.9k -> 40.5k, small VGG 2.44k ->
2.98k, depthwise-separable 19.6k -> 31.2k. Its
pieces aim at ``SPLIT_CHUNK_BYTES`` (12 MB): against 6 MB, larger pieces share each thread's Python overhead,
which holds the GIL, over more rows (course 48.2k -> 52.0k, depthwise-separable 25.0k -> 29.3k). Without the
split (one thread, or ``CONVLENS_SPLIT_PREDICT=0``, or a BLAS whose threads cannot be limited)
a piece has at least ``ROWS_PER_THREAD`` rows per thread, unless that is more than 4 * ``CHUNK_BYTES`` a thread.

Shapes:
    x: (N, ...) the model's input; returns the model's output (N, ...) (a list for several outputs).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from convlens import blas_threads, switches
from convlens.ops.parallel import MIN_SPLIT_BYTES, num_threads, parallel_ranges, this_thread_alone, workspace_slot

__all__ = [
    "CHUNK_BYTES",
    "MAX_ROWS",
    "MIN_ROWS",
    "ROWS_PER_THREAD",
    "SPLIT_CHUNK_BYTES",
    "chunk_rows",
    "forward_in_chunks",
    "piece_rows",
    "split_threads",
]

#: The largest activation of a piece (one layer's output or a convolution's im2col matrix) aims at this size.
CHUNK_BYTES = 6 << 20
#: The same with a whole-model split (see :func:`split_threads`): larger pieces share each thread's Python
#: overhead (which holds the GIL) over more rows.
SPLIT_CHUNK_BYTES = 12 << 20
#: Bounds on the rows of a piece: fewer rows pay per-call overheads, more rows gain nothing.
MIN_ROWS, MAX_ROWS = 16, 512
#: With more than one thread a piece has at least this many rows per thread.
ROWS_PER_THREAD = 64


def _activation_shapes(model: Any) -> list[tuple[Any, tuple[Any, ...]]] | None:
    """(layer, output shape) of every layer of a built model (None when unknown)."""
    shapes = getattr(model, "_activation_shapes", None)
    if shapes is None or not getattr(model, "built", False):
        return None
    return list(shapes())


def _sample_bytes(model: Any) -> int | None:
    """Bytes of the largest array one sample makes on its way through ``model`` (None when unknown)."""
    shapes = _activation_shapes(model)
    if shapes is None:
        return None
    biggest = 0
    for layer, out in shapes:
        itemsize = np.dtype(layer.dtype).itemsize
        cells = math.prod(int(s or 1) for s in out[1:])
        biggest = max(biggest, cells * itemsize)
        kernel = layer.params.get("kernel")
        # A convolution: its im2col matrix. A depthwise kernel (KH, KW, C, M) counts as a KH*KW*C-wide matrix
        # that its algorithms never build; counting its output instead made the depthwise-separable model's
        # pieces 32 -> 145 rows and predict slower (10.3k -> 9.4k images/s, 1 thread; 16.3k -> 13.2k with 2, AMD
        # EPYC, interleaved in one process): kept as it is, the small pieces stay in cache.
        if kernel is not None and kernel.ndim >= 3:
            positions = math.prod(int(s or 1) for s in out[1:-1])
            biggest = max(biggest, positions * (math.prod(kernel.shape[:-1]) + 1) * itemsize)
    return biggest


def chunk_rows(model: Any, *, split: bool = False) -> int | None:
    """Rows per piece for ``model``: a piece per thread with ``split`` (the whole-model split), else a piece
    whose layers split their own work over the threads; None: run whole batches."""
    per_sample = _sample_bytes(model)
    if not per_sample:
        return None
    if split:
        return max(MIN_ROWS, min(MAX_ROWS, SPLIT_CHUNK_BYTES // per_sample))
    threads = num_threads()
    least = MIN_ROWS
    if threads > 1:  # larger pieces, but at most 4 * CHUNK_BYTES a thread
        least = max(MIN_ROWS, min(ROWS_PER_THREAD * threads, 4 * threads * CHUNK_BYTES // per_sample))
    return max(least, min(MAX_ROWS, CHUNK_BYTES // per_sample))


def _ours(obj: Any) -> bool:
    """Whether ``obj`` is an instance of a convlens class, and so are its layers (a nested model's too)."""
    module = type(obj).__module__
    if module != "convlens" and not module.startswith("convlens."):
        return False
    return all(_ours(layer) for layer in getattr(obj, "layers", ()))


def split_threads() -> int:
    """Threads that each run whole pieces through the model at once (1: no whole-model split).

    Each such thread runs its compiled kernels and BLAS calls alone, which needs a BLAS whose thread count can
    be set; ``CONVLENS_SPLIT_PREDICT=0`` turns the split off.
    """
    threads = num_threads()
    if threads <= 1 or not switches.SPLIT_PREDICT.is_on() or not blas_threads.can_limit():
        return 1
    return threads


def _split_pieces(n: int, rows: int, threads: int) -> list[tuple[int, int]]:
    """Contiguous (lo, hi) pieces of ``range(n)`` of at most ``rows`` rows, at least one per thread where
    ``n`` allows ``MIN_ROWS`` rows a piece; all of one size but the last, so the layers' plans stay two.

    >>> _split_pieces(10, 4, 2)
    [(0, 4), (4, 8), (8, 10)]
    >>> _split_pieces(40, 512, 2)
    [(0, 20), (20, 40)]
    """
    if -(-n // rows) < threads:
        rows = max(MIN_ROWS, -(-n // threads))
    return [(lo, min(n, lo + rows)) for lo in range(0, n, rows)]


def piece_rows(model: Any, batch: int) -> int:
    """The rows of ``batch`` that go through ``model`` at once in :func:`forward_in_chunks` (for memory checks:
    with a whole-model split, the rows of all threads' pieces)."""
    threads = split_threads()
    if threads > 1 and _ours(model):
        rows = chunk_rows(model, split=True)
        if rows is not None:
            return min(batch, threads * rows)
    rows = chunk_rows(model)
    return batch if rows is None else min(batch, rows)


def forward_in_chunks(model: Any, x: np.ndarray) -> Any:
    """``model._forward(x, training=False)``, computed :func:`chunk_rows` rows at a time (with several threads:
    each thread runs its own pieces through every layer, see :func:`split_threads`).

    >>> import convlens as cl
    >>> model = cl.Sequential([cl.layers.Input((4,)), cl.layers.Dense(2)])
    >>> x = np.ones((600, 4), np.float32)
    >>> bool((forward_in_chunks(model, x) == model._forward(x, training=False)).all())
    True
    """
    if not isinstance(x, np.ndarray):  # (several inputs: a list)
        return model._forward(x, training=False)
    threads = split_threads()
    # (too little work: one thread; a user's own layer class may keep state in a call: never two at once)
    if threads > 1 and (_sample_bytes(model) or 0) * x.shape[0] >= MIN_SPLIT_BYTES and _ours(model):
        rows = chunk_rows(model, split=True)
        if rows is not None:
            pieces = _split_pieces(x.shape[0], rows, threads)
            if len(pieces) > 1:
                done = _forward_split(model, x, pieces, threads)
                if done is not None:
                    return done
    rows = chunk_rows(model)
    if rows is None or x.shape[0] <= rows:
        return model._forward(x, training=False)
    return _forward_pieces(model, x, [(lo, min(x.shape[0], lo + rows)) for lo in range(0, x.shape[0], rows)])


def _forward_pieces(model: Any, x: np.ndarray, pieces: list[tuple[int, int]]) -> Any:
    """The outputs of ``pieces`` of ``x``, one after another on this thread, into whole arrays."""
    outs: list[np.ndarray] = []
    several = False
    for lo, hi in pieces:
        y = model._forward(x[lo:hi], training=False)
        several = isinstance(y, list)
        parts = y if several else [y]
        if not outs:
            outs = [np.empty((x.shape[0], *p.shape[1:]), p.dtype) for p in parts]
        for whole, part in zip(outs, parts, strict=True):
            whole[lo:hi] = part
    return outs if several else outs[0]


def _forward_split(model: Any, x: np.ndarray, pieces: list[tuple[int, int]], threads: int) -> Any:
    """The outputs of ``pieces`` of ``x``, run by ``threads`` threads that each take the next piece through
    every layer, alone (one BLAS thread, serial kernels, a workspace slot of its own); None when BLAS's thread
    count cannot be limited after all.
    """
    outs: list[np.ndarray] = []
    several: list[bool] = []
    allocating = threading.Lock()
    turns = itertools.count()
    failed = threading.Event()

    def run(slot: int, _: int) -> None:
        with _alone(slot):
            for turn in turns:  # (next() on a count is atomic: each piece goes to one thread)
                if turn >= len(pieces) or failed.is_set():
                    return
                lo, hi = pieces[turn]
                try:
                    y = model._forward(x[lo:hi], training=False)
                except BaseException:
                    failed.set()  # (the other threads stop after their current piece)
                    raise
                parts = y if isinstance(y, list) else [y]
                with allocating:
                    if not outs:
                        outs.extend(np.empty((x.shape[0], *p.shape[1:]), p.dtype) for p in parts)
                        several.append(isinstance(y, list))
                for whole, part in zip(outs, parts, strict=True):
                    whole[lo:hi] = part

    with blas_threads.one_blas_thread() as limited:
        if not limited:
            return None
        parallel_ranges(run, threads, MIN_SPLIT_BYTES)
    return outs if several[0] else outs[0]


@contextlib.contextmanager
def _alone(slot: int) -> Iterator[None]:
    """This thread runs its kernels alone (nothing it calls splits over the pool) in workspace ``slot``."""
    with workspace_slot(slot), this_thread_alone():
        yield
