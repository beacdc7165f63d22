"""Slow, obviously-correct loop references for the pooling ops (channels-last, float64).

Independent of :mod:`convlens.geometry`: the TensorFlow padding rule is re-derived here from
first principles ('same': out = ceil(in / stride), the odd padded cell after). Each output cell
visits its window in row-major order, skips cells in the padding, and takes the max (gradient
to the FIRST maximum) or the mean over the real cells.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from hypothesis import strategies as st

#: (shape, pool, strides, padding) pinned for every pooling algorithm: 'same' with odd sizes, windows wider
#: than the stride (overlapping), narrower (skipped cells), and a window as large as the input.
PINNED_CASES: list[tuple[Any, ...]] = [
    ((2, 6, 6, 3), (2, 2), None, "valid"),
    ((2, 7, 5, 2), (2, 2), None, "same"),
    ((1, 7, 8, 2), (3, 3), (2, 2), "same"),
    ((1, 6, 7, 6), (3, 2), (1, 2), "valid"),
    ((1, 9, 9, 2), (2, 2), (3, 3), "valid"),
    ((1, 4, 4, 2), (4, 4), (1, 1), "same"),
]


def draw_geometry(draw: Any, max_channels: int) -> tuple[Any, ...]:
    """(shape, pool, strides, padding) drawn for a hypothesis case (windows and strides of 1-3, inputs up to
    3x7x7 with up to ``max_channels`` channels)."""
    pool = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.sampled_from(["valid", "same"]))
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 7)),
        draw(st.integers(1, 7)),
        draw(st.integers(1, max_channels)),
    )
    return shape, pool, strides, padding


def axis_windows(size: int, pool: int, stride: int, padding: str) -> list[list[int]]:
    """Real input indices of each window along one axis."""
    if padding == "valid":
        count, before = (size - pool) // stride + 1, 0
    else:
        count = math.ceil(size / stride)
        before = max((count - 1) * stride + pool - size, 0) // 2
    windows = []
    for o in range(count):
        start = o * stride - before
        windows.append([i for i in range(start, start + pool) if 0 <= i < size])
    return windows


def _windows(x, pool_size, strides, padding):
    strides = strides or pool_size
    rows = axis_windows(x.shape[1], pool_size[0], strides[0], padding)
    cols = axis_windows(x.shape[2], pool_size[1], strides[1], padding)
    return rows, cols


def pool2d(x: np.ndarray, kind: str, pool_size, strides=None, padding: str = "valid") -> np.ndarray:
    """Max or average pooling of (N, H, W, C) by loops."""
    rows, cols = _windows(x, pool_size, strides, padding)
    batch, _, _, channels = x.shape
    out = np.zeros((batch, len(rows), len(cols), channels))
    for n, oh, ow, c in itertools.product(range(batch), range(len(rows)), range(len(cols)), range(channels)):
        values = [float(x[n, r, q, c]) for r in rows[oh] for q in cols[ow]]
        out[n, oh, ow, c] = max(values) if kind == "max" else sum(values) / len(values)
    return out


def pool2d_backward(
    grad_out: np.ndarray, x: np.ndarray, kind: str, pool_size, strides=None, padding: str = "valid"
) -> np.ndarray:
    """Gradient of :func:`pool2d`: max to the first maximum of each window, mean shared equally."""
    rows, cols = _windows(x, pool_size, strides, padding)
    batch, _, _, channels = x.shape
    grad_x = np.zeros(x.shape)
    for n, oh, ow, c in itertools.product(range(batch), range(len(rows)), range(len(cols)), range(channels)):
        cells = [(r, q) for r in rows[oh] for q in cols[ow]]
        g = float(grad_out[n, oh, ow, c])
        if kind == "max":
            best = cells[0]
            for r, q in cells[1:]:
                if x[n, r, q, c] > x[n, best[0], best[1], c]:  # strictly greater: the first one wins ties
                    best = (r, q)
            grad_x[n, best[0], best[1], c] += g
        else:
            for r, q in cells:
                grad_x[n, r, q, c] += g / len(cells)
    return grad_x


def global_pool(x: np.ndarray, kind: str) -> np.ndarray:
    """(N, *S, C) -> (N, C) by loops."""
    batch, channels = x.shape[0], x.shape[-1]
    out = np.zeros((batch, channels))
    for n, c in itertools.product(range(batch), range(channels)):
        values = [float(v) for v in x[n, ..., c].ravel()]
        out[n, c] = max(values) if kind == "max" else sum(values) / len(values)
    return out


def global_pool_backward(grad_out: np.ndarray, x: np.ndarray, kind: str) -> np.ndarray:
    """Gradient of :func:`global_pool` (max: the first maximum in row-major order)."""
    batch, channels = x.shape[0], x.shape[-1]
    grad_x = np.zeros(x.shape)
    for n, c in itertools.product(range(batch), range(channels)):
        plane = x[n, ..., c]
        if kind == "max":
            best = None
            for index in np.ndindex(plane.shape):
                if best is None or plane[index] > plane[best]:
                    best = index
            grad_x[(n, *best, c)] = grad_out[n, c]
        else:
            grad_x[n, ..., c] = grad_out[n, c] / plane.size
    return grad_x
