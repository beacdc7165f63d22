"""Layout conversions between convlens (channels-last, Keras layouts) and channel-first runtimes.

The one place that knows how a kernel, a flattened feature vector or a per-side padding looks in
PyTorch / ONNX. Pure NumPy: nothing here imports torch or onnx.

Shapes:
    conv kernel, convlens: (K1, ..., Kr, C / G, F); channel-first (torch weight, ONNX W): (F, C / G, K1, ..., Kr)
    depthwise kernel, convlens: (KH, KW, C, M); channel-first: (C * M, 1, KH, KW) (output channel c * M + m)
    flattened features: convlens flattens (H, W, C), torch and ONNX flatten (C, H, W);
    ``flatten_index`` gives ``idx`` with ``flat_convlens = flat_channel_first[idx]``.

>>> import numpy as np
>>> flatten_index((1, 2), channels=2)  # (h, w, c) position -> (c, h, w) position
array([0, 2, 1, 3])
>>> conv_kernel_to_channels_first(np.zeros((3, 5, 2, 4))).shape
(4, 2, 3, 5)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry

__all__ = [
    "atomic_write_bytes",
    "channels_first_perm",
    "conv_kernel_from_channels_first",
    "conv_kernel_to_channels_first",
    "depthwise_kernel_from_channels_first",
    "depthwise_kernel_to_channels_first",
    "flatten_index",
    "inverse_perm",
    "padding_from_pads",
    "split_pads",
]

Pads = tuple[tuple[int, int], ...]


def conv_kernel_to_channels_first(kernel: np.ndarray) -> np.ndarray:
    """(K..., C / G, F) -> (F, C / G, K...), a contiguous copy."""
    return np.ascontiguousarray(np.moveaxis(kernel, (-1, -2), (0, 1)))


def conv_kernel_from_channels_first(weight: np.ndarray) -> np.ndarray:
    """(F, C / G, K...) -> (K..., C / G, F), a contiguous copy."""
    return np.ascontiguousarray(np.moveaxis(weight, (0, 1), (-1, -2)))


def depthwise_kernel_to_channels_first(kernel: np.ndarray) -> np.ndarray:
    """Depthwise (KH, KW, C, M) -> grouped (C * M, 1, KH, KW)."""
    kh, kw, channels, multiplier = kernel.shape
    return conv_kernel_to_channels_first(kernel.reshape(kh, kw, 1, channels * multiplier))


def depthwise_kernel_from_channels_first(weight: np.ndarray, channels: int) -> np.ndarray:
    """Grouped (C * M, 1, KH, KW) -> depthwise (KH, KW, C, M)."""
    kernel = conv_kernel_from_channels_first(weight)
    kh, kw = kernel.shape[:2]
    return kernel.reshape(kh, kw, channels, kernel.shape[-1] // channels)


def channels_first_perm(rank: int) -> tuple[int, ...]:
    """Axes that take a channel-first tensor of ``rank`` axes (batch included) to channels-last.

    >>> channels_first_perm(4)
    (0, 2, 3, 1)
    """
    return (0, *range(2, rank), 1) if rank > 2 else tuple(range(rank))


def inverse_perm(perm: Sequence[int]) -> tuple[int, ...]:
    """The permutation that undoes ``perm`` (``x.transpose(perm).transpose(inverse_perm(perm)) == x``)."""
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return tuple(inverse)


def flatten_index(spatial: Sequence[int], channels: int) -> np.ndarray:
    """``idx`` with ``flat_hwc = flat_chw[idx]`` for a map of ``spatial`` size and ``channels`` channels.

    A Dense kernel ``K`` (D, U) reading (H, W, C)-ordered features equals a torch ``Linear`` whose
    ``weight.T[idx] == K``; a per-feature vector ``v`` (e.g. BatchNorm1d after Flatten) maps as ``v[idx]``.
    """
    order = np.arange(channels * int(np.prod(spatial, dtype=np.int64))).reshape(channels, *spatial)
    return np.ascontiguousarray(np.moveaxis(order, 0, -1).reshape(-1))


def split_pads(pads: Sequence[int]) -> Pads:
    """ONNX ``pads`` [b1, ..., br, a1, ..., ar] -> ((b1, a1), ..., (br, ar))."""
    rank = len(pads) // 2
    return tuple((int(pads[i]), int(pads[i + rank])) for i in range(rank))


def padding_from_pads(
    pads: Pads, spatial: Sequence[int], kernel_size: Sequence[int], strides: Sequence[int], dilation: Sequence[int]
) -> str | Pads:
    """Keras's name for explicit per-side ``pads`` when there is one ('valid', 'same'), else the pads.

    >>> padding_from_pads(((0, 1), (0, 1)), (28, 28), (3, 3), (2, 2), (1, 1))
    'same'
    >>> padding_from_pads(((1, 1), (1, 1)), (28, 28), (3, 3), (2, 2), (1, 1))
    ((1, 1), (1, 1))
    """
    pads = tuple((int(b), int(a)) for b, a in pads)
    if all(b == 0 and a == 0 for b, a in pads):
        return "valid"
    same = WindowGeometry.resolve(tuple(spatial), tuple(kernel_size), tuple(strides), "same", tuple(dilation))
    return "same" if same.pads == pads else pads


def atomic_write_bytes(path: Any, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
