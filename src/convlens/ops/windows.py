"""The one window primitive shared by convolution and pooling (channels-last, two spatial axes).

Everything here works on rank-2 geometries; 1-D ops insert a spatial axis of size 1.
Views come from :func:`numpy.lib.stride_tricks.sliding_window_view` plus strided slicing.

Shapes:
    x: (N, H, W, C)
    padded: (N, H + PT + PB, W + PL + PR, C)
    windows / cols: (N, OH, OW, KH, KW, C)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from convlens.geometry import WindowGeometry
from convlens.ops.parallel import parallel_over_batch, workspace_slot_of_thread
from convlens.ops.windows_jit import col2im_compiled, col2im_jit, im2col_jit

__all__ = [
    "SHORT_RUNS",
    "TRANSIENT",
    "TransientWorkspace",
    "Workspace",
    "col2im",
    "col2im_channels_first",
    "crop",
    "im2col",
    "im2col_channels_first",
    "pad",
    "tap_slices",
    "window_view",
]

#: Channel counts whose NumPy col2im adds runs too short for the strided adds (2-7 floats): the window
#: gradients are first made tap-major so each tap's adds read a contiguous slab (commit b49be42, AMD EPYC;
#: no numbers recorded). One channel is a single strided add per tap either way; with the compiled col2im
#: this layout is not used at all.
SHORT_RUNS = range(2, 8)


class Workspace:
    """Reusable scratch buffers, keyed by name (and by the calling thread's
    :func:`~convlens.ops.parallel.workspace_slot`, 0 unless threads run the same layers at once).

    Allocating fresh large temporaries every batch costs page faults on these machines;
    a layer keeps one ``Workspace`` and the ops reuse its buffers when shapes repeat.
    """

    def __init__(self) -> None:
        self._slots: dict[int, dict[str, np.ndarray]] = {0: {}}

    @property
    def _buffers(self) -> dict[str, np.ndarray]:
        """The calling thread's slot's buffers."""
        slot = workspace_slot_of_thread()
        buffers = self._slots.get(slot)
        if buffers is None:
            buffers = self._slots.setdefault(slot, {})
        return buffers

    def get(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype: Any,
        *,
        zero: bool = False,
        init: Callable[[np.ndarray], object] | None = None,
    ) -> np.ndarray:
        """Return a C-contiguous buffer of ``shape``/``dtype`` (contents undefined unless ``zero``).

        ``init(buffer)`` runs once when the buffer is (re)allocated, for contents that never change.
        """
        dtype = np.dtype(dtype)
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
            self._buffers[name] = buf
            if init is not None:
                init(buf)
        elif zero:
            buf.fill(0)
        return buf

    def clear(self) -> None:
        """Drop every buffer (of every slot)."""
        self._slots = {0: {}}


class TransientWorkspace(threading.local):
    """Scratch buffers shared by every plan of a thread, for arrays that live inside one call.

    A :class:`Workspace` belongs to one layer and keeps its buffers between calls (what a backward reads from
    its forward); arrays that die before the call returns (Winograd's M and padded input) would still take a
    buffer per layer there. Here each name has one flat buffer per thread, grown to the largest request and
    lent as a view: the next ``get`` of the same name in the same thread may hand out the same memory.
    ``generation`` counts the loans (a caller that keeps a view across calls checks it is still its own).
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}
        self.generation = 0

    def get(self, name: str, shape: tuple[int, ...], dtype: Any, *, zero: bool = False) -> np.ndarray:
        """A C-contiguous array of ``shape``/``dtype`` (contents undefined unless ``zero``)."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        buf = self._buffers.get(name)
        if buf is None or buf.nbytes < nbytes:
            buf = self._buffers[name] = np.empty(max(nbytes, 1), np.uint8)
        self.generation += 1
        view = buf[:nbytes].view(dtype).reshape(shape)
        if zero:
            view.fill(0)
        return view


#: The calling thread's transient buffers.
TRANSIENT = TransientWorkspace()


def _buffer(
    workspace: Workspace | TransientWorkspace | None, name: str, shape: tuple[int, ...], dtype: Any, zero: bool = False
) -> np.ndarray:
    if workspace is None:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    return workspace.get(name, shape, dtype, zero=zero)


def pad(
    x: np.ndarray,
    geometry: WindowGeometry,
    value: float = 0.0,
    *,
    workspace: Workspace | TransientWorkspace | None = None,
    name: str = "padded",
) -> np.ndarray:
    """Pad the spatial axes of ``x`` (N, H, W, C) as ``geometry.pads`` says (``x`` itself if unpadded)."""
    if not geometry.is_padded:
        return x
    (pt, pb), (pl, pr) = geometry.pads
    batch, height, width, channels = x.shape
    out = _buffer(workspace, name, (batch, height + pt + pb, width + pl + pr, channels), x.dtype)
    # Fill only the border, then copy the interior once.
    if pt:
        out[:, :pt] = value
    if pb:
        out[:, pt + height :] = value
    if pl:
        out[:, pt : pt + height, :pl] = value
    if pr:
        out[:, pt : pt + height, pl + width :] = value
    out[:, pt : pt + height, pl : pl + width] = x
    return out


def crop(padded: np.ndarray, geometry: WindowGeometry) -> np.ndarray:
    """Inverse of :func:`pad` for gradients: the interior (N, H, W, C) view of ``padded``."""
    (pt, _), (pl, _) = geometry.pads
    height, width = geometry.input_size
    return padded[:, pt : pt + height, pl : pl + width]


def tap_slices(
    geometry: WindowGeometry,
    i: int,
    j: int,
    *,
    first: tuple[int, int] = (0, 0),
    step: tuple[int, int] = (1, 1),
    count: tuple[int, int] | None = None,
) -> tuple[slice, slice]:
    """Row and column slices of the padded input read by kernel tap ``(i, j)``.

    By default they cover every output position. ``first``/``step``/``count`` select a regular
    sub-grid of output positions instead: rows ``first[0], first[0] + step[0], ...`` (``count[0]`` of
    them), as a fused pooling stage needs (one sub-grid per offset inside the pooling window).
    """
    (sh, sw), (dh, dw) = geometry.strides, geometry.dilation_rate
    oh, ow = count if count is not None else geometry.output_size
    r0 = first[0] * sh + i * dh
    c0 = first[1] * sw + j * dw
    rows = slice(r0, r0 + (oh - 1) * sh * step[0] + 1, sh * step[0])
    cols = slice(c0, c0 + (ow - 1) * sw * step[1] + 1, sw * step[1])
    return rows, cols


def window_view(padded: np.ndarray, geometry: WindowGeometry) -> np.ndarray:
    """Read-only strided view (N, OH, OW, KH, KW, C) of every window of the padded input."""
    eh, ew = geometry.extent
    (sh, sw), (dh, dw) = geometry.strides, geometry.dilation_rate
    oh, ow = geometry.output_size
    view = sliding_window_view(padded, (eh, ew), axis=(1, 2))  # (N, H', W', C, EH, EW)
    view = view[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, :, ::dh, ::dw]
    return view.transpose(0, 1, 2, 4, 5, 3)


def im2col(
    x: np.ndarray,
    geometry: WindowGeometry,
    *,
    workspace: Workspace | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Copy every window of ``x`` (N, H, W, C) into a contiguous (N, OH, OW, KH, KW, C) array.

    Reshaped to (N*OH*OW, KH*KW*C) its rows meet a Keras kernel reshaped to (KH*KW*C, F).
    ``out`` may give the destination instead: any (N, OH, OW, KH, KW, C) view, e.g. the leading
    columns of a wider matrix.
    """
    kh, kw = geometry.kernel_size
    oh, ow = geometry.output_size
    batch, channels = x.shape[0], x.shape[3]
    shape = (batch, oh, ow, kh, kw, channels)
    cols = _buffer(workspace, "cols", shape, x.dtype) if out is None else out
    if im2col_jit(x, cols, geometry):
        return cols
    padded = pad(x, geometry, workspace=workspace)
    # One channel: KH*KW slab copies beat the element-wise gather of the 6-D view (commit b49be42).
    view = window_view(padded, geometry) if channels > 1 else None
    taps = [(i, j, *tap_slices(geometry, i, j)) for i in range(kh) for j in range(kw)]

    def work(part: slice) -> None:
        if view is not None:
            # One strided copy of the whole view is fastest unless channels == 1.
            np.copyto(cols[part], view[part])
        else:
            # A single channel: k*k slab copies beat the element-wise gather of the 6-D view.
            for i, j, rows, columns in taps:
                cols[part, :, :, i, j, :] = padded[part, rows, columns, :]

    parallel_over_batch(work, batch, cols.nbytes)
    return cols


def im2col_channels_first(x: np.ndarray, geometry: WindowGeometry, out: np.ndarray, workspace: Workspace) -> None:
    """Write every window of ``x`` tap-major and channel-first into ``out`` (KH, KW, C, N, OH, OW).

    One transposing copy of ``x`` into a zero-bordered channel-first buffer, then one slab copy per tap
    whose inner runs are whole output rows (im2col's runs are only C floats long: slow with few channels).
    Reshaped to (KH*KW*C, N*OH*OW) it is the transpose of :func:`im2col`'s matrix.
    """
    (pt, pb), (pl, pr) = geometry.pads
    batch, height, width, channels = x.shape
    kh, kw = geometry.kernel_size
    shape = (channels, batch, height + pt + pb, width + pl + pr)

    def border(buffer: np.ndarray) -> None:
        buffer.fill(0)  # the border stays zero: only the interior is written below

    padded = workspace.get("padded_channels_first", shape, x.dtype, init=border)
    taps = [(i, j, *tap_slices(geometry, i, j)) for i in range(kh) for j in range(kw)]

    def work(part: slice) -> None:
        padded[:, part, pt : pt + height, pl : pl + width] = x[part].transpose(3, 0, 1, 2)
        for i, j, rows, columns in taps:
            out[i, j, :, part] = padded[:, part, rows, columns]

    parallel_over_batch(work, batch, out.nbytes)


def col2im(
    grad_cols: np.ndarray,
    geometry: WindowGeometry,
    *,
    workspace: Workspace | None = None,
) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum window gradients (N, OH, OW, KH, KW, C) back onto (N, H, W, C).

    Implemented as KH*KW strided adds into a zeroed padded buffer, then a crop.
    """
    batch, _, _, kh, kw, channels = grad_cols.shape
    if col2im_compiled(grad_cols.dtype):
        grad_x = np.empty((batch, *geometry.input_size, channels), grad_cols.dtype)
        col2im_jit(grad_cols, grad_x, geometry)
        return grad_x
    ph, pw = geometry.padded_size
    grad_padded = _buffer(workspace, "grad_padded", (batch, ph, pw, channels), grad_cols.dtype, zero=True)
    taps = [(i, j, *tap_slices(geometry, i, j)) for i in range(kh) for j in range(kw)]
    if channels in SHORT_RUNS:
        # Make each tap's slab contiguous first (see SHORT_RUNS).
        grad_cols = np.ascontiguousarray(grad_cols.transpose(3, 4, 0, 1, 2, 5))

        def work(part: slice) -> None:
            for i, j, rows, columns in taps:
                grad_padded[part, rows, columns, :] += grad_cols[i, j, part]
    else:

        def work(part: slice) -> None:
            # Each thread owns a batch slice of grad_padded, so the overlapping adds never race.
            for i, j, rows, columns in taps:
                grad_padded[part, rows, columns, :] += grad_cols[part, :, :, i, j, :]

    parallel_over_batch(work, batch, grad_cols.nbytes)
    return _cropped(grad_padded, geometry, workspace)


def _cropped(grad_padded: np.ndarray, geometry: WindowGeometry, workspace: Workspace | None) -> np.ndarray:
    """The interior of ``grad_padded`` as a fresh array (the buffer itself when it is unpadded and not reused)."""
    result = crop(grad_padded, geometry)
    if workspace is not None or geometry.is_padded:
        result = result.copy()
    return result


def col2im_channels_first(
    grad_taps: np.ndarray,
    geometry: WindowGeometry,
    *,
    workspace: Workspace | None = None,
) -> np.ndarray:
    """:func:`col2im` for window gradients laid out tap-major and channel-first.

    Shapes:
        grad_taps: (KH, KW, C, N, OH, OW); returns (N, H, W, C) (a fresh C-contiguous array).
    """
    kh, kw, channels, batch = grad_taps.shape[:4]
    ph, pw = geometry.padded_size
    grad_padded = _buffer(workspace, "grad_padded_cf", (channels, batch, ph, pw), grad_taps.dtype, zero=True)
    for i in range(kh):
        for j in range(kw):
            rows, columns = tap_slices(geometry, i, j)
            grad_padded[:, :, rows, columns] += grad_taps[i, j]
    (pt, _), (pl, _) = geometry.pads
    height, width = geometry.input_size
    interior = grad_padded[:, :, pt : pt + height, pl : pl + width]
    return np.ascontiguousarray(interior.transpose(1, 2, 3, 0))
