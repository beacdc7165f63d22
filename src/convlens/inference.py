"""Inference in cache-sized chunks: ``predict`` runs each batch through the model a few rows at a time.

In inference every sample is computed on its own (no batch statistics, no dropout), so a batch can go
through the layers in smaller pieces with the same results. Pieces whose largest activation fits in a few
MB keep every layer's arrays in cache and reuse the allocator's memory instead of touching fresh pages,
and the peak memory of ``predict`` no longer grows with ``batch_size``: measured on the zoo models
(benchmarks/zoo.py, 1 thread, Intel Xeon), batch 1000 in pieces against whole: course 22.0k -> 31.2k
images/s, Keras's simple convnet 10.3k -> 14.5k, the depthwise-separable model 12.6k -> 15.9k; the small
VGG unchanged. With several threads every call also pays to start and join them, so pieces are larger
there (at least ``ROWS_PER_THREAD`` rows a thread, unless that is more than 4 * ``CHUNK_BYTES`` a thread):
measured with 2 threads, predict of 2,000 images (images/s) at 32 / 128 rows a piece: depthwise-separable
12.2k / 19.9k, LeNet-5 20.4k / 26.3k, simple convnet 14.8k / 16.8k, small VGG 2.24k / 2.36k, course 29.8k /
29.8k.

Shapes:
    x: (N, ...) the model's input; returns the model's output (N, ...) (a list for several outputs).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convlens.ops.parallel import num_threads

__all__ = ["CHUNK_BYTES", "MAX_ROWS", "MIN_ROWS", "ROWS_PER_THREAD", "chunk_rows", "forward_in_chunks", "piece_rows"]

#: The largest activation of a piece (one layer's output or a convolution's im2col matrix) aims at this size.
CHUNK_BYTES = 6 << 20
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
        if kernel is not None and kernel.ndim >= 3:  # a convolution: its im2col matrix
            positions = math.prod(int(s or 1) for s in out[1:-1])
            biggest = max(biggest, positions * (math.prod(kernel.shape[:-1]) + 1) * itemsize)
    return biggest


def chunk_rows(model: Any) -> int | None:
    """Rows per piece for ``model`` (None: run whole batches)."""
    per_sample = _sample_bytes(model)
    if not per_sample:
        return None
    threads = num_threads()
    least = MIN_ROWS
    if threads > 1:  # larger pieces, but at most 4 * CHUNK_BYTES a thread
        least = max(MIN_ROWS, min(ROWS_PER_THREAD * threads, 4 * threads * CHUNK_BYTES // per_sample))
    return max(least, min(MAX_ROWS, CHUNK_BYTES // per_sample))


def piece_rows(model: Any, batch: int) -> int:
    """The rows of ``batch`` that go through ``model`` at once in :func:`forward_in_chunks` (for memory checks)."""
    rows = chunk_rows(model)
    return batch if rows is None else min(batch, rows)


def forward_in_chunks(model: Any, x: np.ndarray) -> Any:
    """``model._forward(x, training=False)``, computed :func:`chunk_rows` rows at a time.

    >>> import convlens as cl
    >>> model = cl.Sequential([cl.layers.Input((4,)), cl.layers.Dense(2)])
    >>> x = np.ones((600, 4), np.float32)
    >>> bool((forward_in_chunks(model, x) == model._forward(x, training=False)).all())
    True
    """
    rows = chunk_rows(model)
    if rows is None or not isinstance(x, np.ndarray) or x.shape[0] <= rows:  # (several inputs: a list)
        return model._forward(x, training=False)
    first = model._forward(x[:rows], training=False)
    several = isinstance(first, list)
    outs = [np.empty((x.shape[0], *p.shape[1:]), p.dtype) for p in (first if several else [first])]
    for lo in range(0, x.shape[0], rows):
        y = first if lo == 0 else model._forward(x[lo : lo + rows], training=False)
        for whole, part in zip(outs, y if several else [y], strict=True):
            whole[lo : lo + rows] = part
    return outs if several else outs[0]
