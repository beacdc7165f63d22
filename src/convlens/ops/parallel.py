"""Split large memory-bound array work (copies, strided adds) over the machine's cores.

NumPy's copies and element-wise ops run on one core and release the GIL, so splitting a large
im2col copy or col2im add along the batch axis over a few threads uses the other cores,
which BLAS already uses for the GEMMs. Small arrays run inline (threads would cost more than
they save). ``CONVLENS_NUM_THREADS`` caps the threads (1 turns it off); the pieces go to the helper threads
of :mod:`convlens.ops.handoff` (a hand-off in microseconds).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from convlens import switches
from convlens.blas_threads import one_blas_thread
from convlens.ops.handoff import run_pieces

__all__ = [
    "MIN_PARALLEL_BYTES",
    "MIN_SPLIT_BYTES",
    "alone_here",
    "batch_slices",
    "chunk_bounds",
    "forward_over_batch",
    "image_blocks",
    "kernel_grad_over_chunks",
    "num_threads",
    "over_blocks",
    "over_blocks_one_blas_thread",
    "parallel_over_batch",
    "parallel_ranges",
    "serial_kernel_over",
    "this_thread_alone",
    "thread_buffer",
    "workspace_slot",
    "workspace_slot_of_thread",
]

MIN_PARALLEL_BYTES = 8 << 20
#: Compiled serial kernels (which release the GIL) split their rows over the threads above this many bytes
#: touched: a thread hand-off costs ~15 us spinning (~50-70 us sleeping), a kernel streams several GB/s per core.
MIN_SPLIT_BYTES = 256 << 10


class _Here(threading.local):
    """This thread's split state. Class defaults, not ``getattr(local, name, default)``: a name missing from a
    ``threading.local`` raises and catches an AttributeError inside (~0.4 us a read, several reads a layer call)."""

    alone = False
    slot = 0


_here = _Here()


@contextlib.contextmanager
def this_thread_alone() -> Iterator[None]:
    """Context manager, for a thread that already has its own share of a split: inside it :func:`num_threads`
    is 1 on this thread, so nothing it calls splits again (no nested hand-offs to the helpers).
    """
    before = _here.alone
    _here.alone = True
    try:
        yield
    finally:
        _here.alone = before


def alone_here() -> bool:
    """Whether this thread is inside :func:`this_thread_alone`."""
    return _here.alone


@contextlib.contextmanager
def workspace_slot(slot: int) -> Iterator[None]:
    """Context manager: on this thread every layer's :class:`~convlens.ops.windows.Workspace` lends the buffers
    of ``slot`` (0 outside). Threads that run the same layers at once (a whole-model split of ``predict``) each
    take a slot of their own, so none writes into buffers another is reading.
    """
    before = _here.slot
    _here.slot = slot
    try:
        yield
    finally:
        _here.slot = before


def workspace_slot_of_thread() -> int:
    """The slot this thread's workspace buffers come from (see :func:`workspace_slot`)."""
    return _here.slot


def num_threads() -> int:
    """Threads used for large copies: ``CONVLENS_NUM_THREADS`` or the number of cores (at most 8); 1 on a thread
    inside :func:`this_thread_alone`.
    """
    if _here.alone:
        return 1
    env = switches.NUM_THREADS.value()
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return _cores()


@functools.cache
def _cores() -> int:
    """The machine's cores, at most 8, read once: ``os.cpu_count()`` reads /sys on every call (8-17 us here,
    about 3% of a standalone (128, 13x13, 64) batch norm step, which asks four times)."""
    return max(1, min(8, os.cpu_count() or 1))


def batch_slices(batch: int, parts: int) -> list[slice]:
    """``parts`` contiguous, nearly equal slices of ``range(batch)`` (fewer when batch is small).

    >>> batch_slices(5, 2)
    [slice(0, 2, None), slice(2, 5, None)]
    """
    parts = max(1, min(parts, batch))
    bounds = [batch * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def parallel_ranges(work: Callable[[int, int], object], total: int, nbytes: int) -> None:
    """Run ``work(lo, hi)`` over contiguous pieces of ``range(total)``, one per thread when ``nbytes`` is large.

    Meant for compiled serial kernels (which release the GIL); the calling thread runs the last piece.

    >>> seen = []
    >>> parallel_ranges(lambda lo, hi: seen.append((lo, hi)), 10, 0)
    >>> seen
    [(0, 10)]
    """
    threads = min(num_threads(), total)
    if threads <= 1 or nbytes < MIN_SPLIT_BYTES:
        work(0, total)
        return
    bounds = [total * i // threads for i in range(threads + 1)]
    run_pieces([functools.partial(work, bounds[i], bounds[i + 1]) for i in range(threads)])


def serial_kernel_over(kernel: Callable[..., object], total: int, nbytes: int, *args: Any) -> None:
    """Run a compiled serial kernel ``kernel(*args, lo, hi)`` (its outer loop over ``range(lo, hi)``) on
    pieces of ``range(total)``, one per thread when ``nbytes`` is large (:func:`parallel_ranges`).

    Serial kernels compile in about a third of the time of ``parallel=True`` ones (no OpenMP outlining):
    the pooling kernels 16.5 -> 4.6 s on the AMD EPYC.
    """
    parallel_ranges(lambda lo, hi: kernel(*args, lo, hi), total, nbytes)


def parallel_over_batch(work: Callable[[slice], object], batch: int, nbytes: int) -> None:
    """Run ``work(batch_slice)`` over disjoint batch slices, in parallel when ``nbytes`` is large."""
    threads = num_threads()
    if threads == 1 or nbytes < MIN_PARALLEL_BYTES or batch < 2:
        work(slice(0, batch))
        return
    run_pieces([functools.partial(work, part) for part in batch_slices(batch, threads)])


def forward_over_batch(
    forward: Callable[..., object],
    x: Any,
    kernel: Any,
    bias: Any,
    out_shape: tuple[int, ...],
    layout: tuple[Any, ...],
) -> Any:
    """A fresh ``out`` (``out_shape``, x's dtype) filled by a compiled serial kernel
    ``forward(x, kernel, bias, out, lo, hi, *layout)`` over batch ranges, split over the threads; a missing
    ``bias`` is zeros (the direct and depthwise convolutions). ``layout``: the kernel's remaining arguments.
    """
    out = np.empty(out_shape, x.dtype)
    b = np.zeros(out_shape[-1], x.dtype) if bias is None else np.ascontiguousarray(bias, x.dtype)
    parallel_ranges(lambda lo, hi: forward(x, kernel, b, out, lo, hi, *layout), x.shape[0], x.nbytes + out.nbytes)
    return out


def chunk_bounds(rows: int, chunks: int) -> np.ndarray:
    """(chunks + 1,) int64: where each of ``chunks`` near-equal pieces of ``range(rows)`` starts, then ``rows``.

    >>> chunk_bounds(10, 4).tolist()
    [0, 2, 5, 7, 10]
    """
    return np.array([rows * i // chunks for i in range(chunks + 1)], np.int64)


def kernel_grad_over_chunks(
    kernel_grad: Callable[..., object],
    x: Any,
    grad_out: Any,
    kernel_shape: tuple[int, ...],
    chunks: int,
    tail: tuple[Any, ...],
    *,
    bias_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_kernel, grad_bias)`` summed from the partial sums of a compiled serial kernel
    ``kernel_grad(x, grad_out, parts, bias_parts, bounds, t0, t1, *tail)`` that fills ``parts[t]`` and
    ``bias_parts[t]`` for the batch chunks ``t0 <= t < t1``. The batch is cut into ``chunks`` fixed pieces
    (fewer for a smaller batch) whatever the threads, ranges of chunks go to the threads, and the partials are
    added in chunk order: the bits do not depend on the number of threads.

    Shapes:
        x: (N, ...); grad_out: (N, ..., F); grad_kernel: ``kernel_shape``; grad_bias: (F,), F = ``bias_size``,
        by default kernel_shape[-1]
    """
    pieces = max(1, min(chunks, x.shape[0]))
    parts = np.empty((pieces, *kernel_shape), x.dtype)
    bias_parts = np.empty((pieces, kernel_shape[-1] if bias_size is None else bias_size), x.dtype)
    bounds = chunk_bounds(x.shape[0], pieces)
    parallel_ranges(
        lambda t0, t1: kernel_grad(x, grad_out, parts, bias_parts, bounds, t0, t1, *tail),
        pieces,
        x.nbytes + grad_out.nbytes,
    )
    return parts.sum(axis=0), bias_parts.sum(axis=0)


def over_blocks(work: Callable[[int, int], object], total: int, nbytes: int) -> None:
    """``work(lo, hi)`` over pieces of ``range(total)`` (blocks, or groups of them), one piece per thread when
    there are threads to spare: each thread then runs its kernels and GEMMs alone (one BLAS thread per call), on
    blocks of its own. ``nbytes``: the memory the work touches (too little: one thread).
    """
    if num_threads() > 1 and total > 1 and nbytes >= MIN_SPLIT_BYTES:
        with one_blas_thread() as limited:
            if limited:

                def alone(lo: int, hi: int) -> None:
                    with this_thread_alone():
                        work(lo, hi)

                parallel_ranges(alone, total, nbytes)
                return
    work(0, total)


def over_blocks_one_blas_thread(work: Callable[[int, int], object], total: int, nbytes: int) -> None:
    """:func:`over_blocks`, with every BLAS call on one thread whatever the thread count (also with one thread),
    so GEMMs give the same bits on one thread or several (OpenBLAS's threaded GEMM rounds some shapes otherwise).

    Inside :func:`this_thread_alone` the work runs inline: whoever split the work there limits BLAS already (and
    holds :func:`convlens.blas_threads.one_blas_thread`'s lock, which this thread must not wait for).
    """
    if alone_here():
        work(0, total)
        return
    with one_blas_thread():
        over_blocks(work, total, nbytes)


def image_blocks(batch: int, per_image: int, block_bytes: int, *, even: bool = False) -> list[slice]:
    """Slices of ``range(batch)`` of at most ``block_bytes // per_image`` images each (at least one); with ``even``
    of nearly one size instead of full blocks and a short last one.

    >>> def sizes(blocks): return [block.stop - block.start for block in blocks]
    >>> sizes(image_blocks(44, 1, 37)), sizes(image_blocks(44, 1, 37, even=True))
    ([37, 7], [22, 22])
    """
    size = max(1, min(batch, block_bytes // per_image))
    if even:
        size = -(-batch // -(-batch // size))
    return [slice(b, min(b + size, batch)) for b in range(0, batch, size)]


def thread_buffer(
    local: threading.local,
    name: str,
    shape: tuple[int, int],
    dtype: Any,
    init: Callable[[np.ndarray], object] | None = None,
) -> np.ndarray:
    """The first ``shape[0]`` rows of this thread's buffer ``name`` in ``local`` (a strategy's
    ``threading.local``), kept between calls and grown when a call needs more rows; ``init(buffer)`` runs on each
    new buffer (contents that never change, such as a ones column).

    >>> local = threading.local()
    >>> a = thread_buffer(local, "cols", (4, 2), np.float32, init=lambda b: b.fill(1))
    >>> b = thread_buffer(local, "cols", (3, 2), np.float32)
    >>> bool(np.shares_memory(a, b)), b.shape, float(b.sum())
    (True, (3, 2), 6.0)
    """
    buffer = getattr(local, name, None)
    if buffer is None or buffer.shape[0] < shape[0] or buffer.shape[1:] != shape[1:] or buffer.dtype != dtype:
        buffer = np.empty(shape, dtype)
        if init is not None:
            init(buffer)
        setattr(local, name, buffer)
    return buffer[: shape[0]]  # type: ignore[no-any-return]
