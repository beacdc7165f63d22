"""Window geometry: the one place that knows output sizes and padding.

Every op, layer ``compute_output_shape``, summary, explainer and animation asks
:meth:`WindowGeometry.resolve`; nothing else re-derives the formula.

Per spatial axis, with input size ``i``, kernel ``k``, stride ``s``, dilation ``d`` and the
dilated extent ``e = (k - 1) * d + 1``:

* ``'valid'``: no padding, ``o = (i - e) // s + 1`` (needs ``i >= e``).
* ``'same'`` (TensorFlow's rule for every stride): ``o = ceil(i / s)``, total padding
  ``p = max((o - 1) * s + e - i, 0)``, ``p // 2`` before and the rest (the odd pixel) after.
* ``'causal'`` (1-D only, as Keras ``Conv1D``): ``e - 1`` before, nothing after, ``o = (i - 1) // s + 1``.
* explicit padding ``(before, after)``: ``o = (i + before + after - e) // s + 1``.

A transposed convolution (:meth:`WindowGeometry.resolve_transpose`) is the adjoint of the convolution that maps
its output (Keras's length ``L``) back to its input: ``'valid'``: ``L = i * s + max(e - s, 0)``; ``'same'``:
``L = i * s``; with ``output_padding`` ``q``: ``L = (i - 1) * s + e - 2 * pad + q``, ``pad = e // 2`` for
``'same'`` and 0 for ``'valid'``. The padding per side is that convolution's (the rules above applied to ``L``).

>>> g = WindowGeometry.resolve((28, 28), (3, 3), (2, 2), "same")
>>> g.output_size, g.pads
((14, 14), ((0, 1), (0, 1)))
>>> WindowGeometry.resolve((5, 5), (3, 3), 1, "valid").output_size
(3, 3)
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from convlens.errors import MAX_SIZE, ConfigError, ShapeError, normalize_tuple, short_repr

__all__ = ["PADDING_MODES", "WindowGeometry", "normalize_padding"]

PADDING_MODES = ("valid", "same", "causal")

Pads = tuple[tuple[int, int], ...]
PaddingSpec = str | Pads


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def normalize_padding(padding: Any, rank: int, *, owner: str | None = None) -> PaddingSpec:
    """Standardise a padding argument to a mode string or explicit per-side pads.

    Accepted forms: ``'valid'``, ``'same'``, ``'causal'`` (rank 1 only); an int (the same
    padding on both sides of every axis); a tuple of ``rank`` ints (symmetric per axis; for
    rank 1, a pair of ints is read as ``(before, after)``); or explicit per-side pairs
    ``((top, bottom), (left, right))``.

    >>> normalize_padding(1, 2)
    ((1, 1), (1, 1))
    >>> normalize_padding(((0, 1), (2, 3)), 2)
    ((0, 1), (2, 3))
    >>> normalize_padding("SAME", 2)
    'same'
    """
    prefix = f"{owner}: " if owner else ""
    bad = ConfigError(
        f"{prefix}`padding` must be 'valid', 'same'{', ' + repr('causal') if rank == 1 else ''}, a "
        f"non-negative int, a tuple of {rank} non-negative ints or {rank} (before, after) pairs, "
        f"got {short_repr(padding)}."
    )
    too_big = ConfigError(f"{prefix}`padding` must be at most {MAX_SIZE} per side, got {short_repr(padding)}.")
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in PADDING_MODES or (mode == "causal" and rank != 1):
            raise bad
        return mode
    if _is_int(padding):
        if padding < 0:
            raise bad
        if padding > MAX_SIZE:
            raise too_big
        return ((int(padding), int(padding)),) * rank
    if not isinstance(padding, Sequence):
        raise bad
    items = tuple(padding)
    if rank == 1 and len(items) == 2 and all(_is_int(v) for v in items):
        pairs: list[tuple[int, int]] = [(int(items[0]), int(items[1]))]
    elif len(items) == rank and all(_is_int(v) for v in items):
        pairs = [(int(v), int(v)) for v in items]
    elif len(items) == rank and all(
        isinstance(p, Sequence) and len(p) == 2 and all(_is_int(v) for v in p) for p in items
    ):
        pairs = [(int(p[0]), int(p[1])) for p in items]
    else:
        raise bad
    if any(v < 0 for pair in pairs for v in pair):
        raise bad
    if any(v > MAX_SIZE for pair in pairs for v in pair):
        raise too_big
    return tuple(pairs)


def _fmt(values: Sequence[int]) -> str:
    return "x".join(str(v) for v in values)


@dataclass(frozen=True)
class WindowGeometry:
    """Resolved geometry of a sliding window over ``len(input_size)`` spatial axes.

    Attributes:
        input_size: spatial input size per axis.
        kernel_size: window size per axis (before dilation).
        strides: step per axis.
        dilation_rate: spacing between window taps per axis.
        padding: the requested mode (``'valid'``, ``'same'``, ``'causal'``) or ``'explicit'``.
        pads: ``(before, after)`` zero padding per axis.
        output_size: number of window positions per axis.
    """

    input_size: tuple[int, ...]
    kernel_size: tuple[int, ...]
    strides: tuple[int, ...]
    dilation_rate: tuple[int, ...]
    padding: str
    pads: Pads
    output_size: tuple[int, ...]

    @classmethod
    def resolve(
        cls,
        input_size: Sequence[int] | int,
        kernel_size: Sequence[int] | int,
        strides: Sequence[int] | int = 1,
        padding: Any = "valid",
        dilation_rate: Sequence[int] | int = 1,
        *,
        owner: str | None = None,
    ) -> WindowGeometry:
        """Resolve output size and per-side padding; raise ``ShapeError`` when no window fits.

        Args:
            input_size: spatial size per axis, e.g. ``(28, 28)``.
            kernel_size: int or per-axis tuple.
            strides: int or per-axis tuple.
            padding: any form accepted by :func:`normalize_padding`.
            dilation_rate: int or per-axis tuple.
            owner: name used in error messages (a layer repr or op name).
        """
        rank = 1 if _is_int(input_size) or not isinstance(input_size, Sequence) else len(input_size)
        size = normalize_tuple(input_size, rank, "input_size", owner=owner, minimum=0, maximum=2**62)
        kernel = normalize_tuple(kernel_size, rank, "kernel_size", owner=owner)
        stride = normalize_tuple(strides, rank, "strides", owner=owner)
        dilation = normalize_tuple(dilation_rate, rank, "dilation_rate", owner=owner)
        spec = normalize_padding(padding, rank, owner=owner)
        extent = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=False))
        pads: list[tuple[int, int]] = []
        for i, e, s in zip(size, extent, stride, strict=False):
            if spec == "same":
                out = -(-i // s)
                total = max((out - 1) * s + e - i, 0)
                pads.append((total // 2, total - total // 2))
            elif spec == "causal":
                pads.append((e - 1, 0))
            elif spec == "valid":
                pads.append((0, 0))
        if isinstance(spec, tuple):
            pads = list(spec)
        mode = spec if isinstance(spec, str) else "explicit"
        outputs = tuple((i + b + a - e) // s + 1 for i, (b, a), e, s in zip(size, pads, extent, stride, strict=False))
        if any(i + b + a < e for i, (b, a), e in zip(size, pads, extent, strict=False)) or any(i == 0 for i in size):
            prefix = f"{owner}: " if owner else ""
            padded = tuple(i + b + a for i, (b, a) in zip(size, pads, strict=False))
            dil = f" (dilated extent {_fmt(extent)})" if extent != kernel else ""
            raise ShapeError(
                f"{prefix}a {mode!r}-padded {_fmt(kernel)} window{dil} does not fit the {_fmt(size)} input "
                f"({_fmt(padded)} after padding): the output would be empty. Use a smaller kernel_size, "
                "padding='same', or a larger input."
            )
        return cls(size, kernel, stride, dilation, mode, tuple(pads), outputs)

    @classmethod
    def resolve_transpose(
        cls,
        input_size: Sequence[int] | int,
        kernel_size: Sequence[int] | int,
        strides: Sequence[int] | int = 1,
        padding: str = "valid",
        output_padding: Sequence[int] | int | None = None,
        dilation_rate: Sequence[int] | int = 1,
        *,
        owner: str | None = None,
    ) -> WindowGeometry:
        """The geometry of the convolution whose input gradient is this transposed convolution.

        Its ``input_size`` is the transposed convolution's output size (Keras's ``L``, see the module docstring)
        and its ``output_size`` equals ``input_size``; ``pads`` says how much of the full transposed result is cut
        off before (and after) each axis.

        >>> g = WindowGeometry.resolve_transpose((7, 7), (3, 3), (2, 2), "same")
        >>> g.input_size, g.output_size, g.pads
        ((14, 14), (7, 7), ((0, 1), (0, 1)))

        Raises:
            ConfigError: padding other than 'valid'/'same', or ``output_padding >= strides``.
            ShapeError: an output no convolution maps back to ``input_size`` (e.g. kernel 2, stride 2, 'same',
                ``output_padding=0``).
        """
        rank = 1 if _is_int(input_size) else len(tuple(input_size))  # type: ignore[arg-type]
        size = normalize_tuple(input_size, rank, "input size", owner=owner, minimum=1)
        kernel = normalize_tuple(kernel_size, rank, "kernel_size", owner=owner)
        stride = normalize_tuple(strides, rank, "strides", owner=owner)
        dilation = normalize_tuple(dilation_rate, rank, "dilation_rate", owner=owner)
        prefix = f"{owner}: " if owner else ""
        mode = normalize_padding(padding, rank, owner=owner)
        if mode not in ("valid", "same"):
            raise ConfigError(
                f"{prefix}`padding` must be 'valid' or 'same' for a transposed convolution, got {padding!r}."
            )
        extra = (
            None
            if output_padding is None
            else normalize_tuple(output_padding, rank, "output_padding", owner=owner, minimum=0)
        )
        if extra is not None and any(q >= s for q, s in zip(extra, stride, strict=True)):
            raise ConfigError(f"{prefix}`output_padding` {extra} must be smaller than `strides` {stride}.")
        lengths = []
        for i, k, s, d, q in zip(size, kernel, stride, dilation, extra or (None,) * rank, strict=True):
            e = (k - 1) * d + 1
            if q is None:
                lengths.append(i * s + max(e - s, 0) if mode == "valid" else i * s)
            else:
                lengths.append((i - 1) * s + e - 2 * (e // 2 if mode == "same" else 0) + q)
        geometry = cls.resolve(tuple(lengths), kernel, stride, mode, dilation, owner=owner)
        if geometry.output_size != size:
            raise ShapeError(
                f"{prefix}a {mode!r} transposed convolution with kernel {_fmt(kernel)}, stride {_fmt(stride)} and "
                f"output_padding {extra} gives {_fmt(lengths)}, which a convolution maps back to "
                f"{_fmt(geometry.output_size)}, not the input's {_fmt(size)}; choose another output_padding."
            )
        return geometry

    @property
    def rank(self) -> int:
        """Number of spatial axes."""
        return len(self.input_size)

    @property
    def extent(self) -> tuple[int, ...]:
        """Dilated window extent per axis: ``(k - 1) * d + 1``."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate, strict=False))

    @property
    def padded_size(self) -> tuple[int, ...]:
        """Input size after padding, per axis."""
        return tuple(i + b + a for i, (b, a) in zip(self.input_size, self.pads, strict=False))

    @property
    def used_size(self) -> tuple[int, ...]:
        """Padded extent actually read by some window: ``(o - 1) * s + e`` per axis."""
        return tuple((o - 1) * s + e for o, s, e in zip(self.output_size, self.strides, self.extent, strict=False))

    @property
    def is_padded(self) -> bool:
        """Whether any side is padded."""
        return any(b or a for b, a in self.pads)

    def window_start(self, index: Sequence[int], *, padded: bool = False) -> tuple[int, ...]:
        """Coordinate of the first tap of the window at output ``index``.

        In input coordinates (negative: inside the padding before), or with ``padded=True`` in the
        coordinates of the padded input (never negative).

        >>> g = WindowGeometry.resolve((5, 5), 3, 1, "same")
        >>> g.window_start((0, 0)), g.window_start((0, 0), padded=True)
        ((-1, -1), (0, 0))
        """
        shift = 0 if padded else 1
        return tuple(o * s - shift * b for o, s, (b, _) in zip(index, self.strides, self.pads, strict=False))

    def real_taps(self, index: Sequence[int]) -> list[tuple[int, ...]]:
        """The taps of :meth:`taps` that lie inside the input (not on padding), row-major.

        >>> WindowGeometry.resolve((3, 3), 2, 2, "same").real_taps((1, 1))
        [(2, 2)]
        """
        return [t for t in self.taps(index) if all(0 <= c < n for c, n in zip(t, self.input_size, strict=False))]

    def real_counts(self) -> tuple[tuple[int, ...], ...]:
        """Per axis, how many taps of each window position lie inside the input (padding excluded).

        The divisor of 'same' average pooling: a window's real cells are the product over axes.

        >>> WindowGeometry.resolve((5,), 3, 2, "same").real_counts()
        ((2, 3, 2),)
        """
        counts = []
        for axis, (n, k, d, o) in enumerate(
            zip(self.input_size, self.kernel_size, self.dilation_rate, self.output_size, strict=False)
        ):
            starts = [self.window_start((p,) * self.rank)[axis] for p in range(o)]
            counts.append(tuple(sum(1 for t in range(k) if 0 <= start + t * d < n) for start in starts))
        return tuple(counts)

    @property
    def zero_inserted_size(self) -> tuple[int, ...]:
        """Size of ``grad_out`` with ``S - 1`` zeros inserted between neighbours: ``(O - 1) * S + 1`` per axis.

        >>> WindowGeometry.resolve((7,), 3, 2, "same").zero_inserted_size
        (7,)
        """
        return tuple((o - 1) * s + 1 for o, s in zip(self.output_size, self.strides, strict=False))

    def full_convolution_pads(self, *, crop: bool = True) -> Pads:
        """Pads of the zero-inserted ``grad_out`` that make the input gradient a stride-1 'valid' convolution.

        The input gradient of this window is the "full convolution" of ``grad_out`` (zero-inserted, see
        :attr:`zero_inserted_size`) with the flipped kernel, same dilation. Padding it by ``E - 1`` on every
        side (``crop=False``) gives the gradient of the used part of the padded input (:attr:`used_size`
        cells per axis); ``crop=True`` folds the crop to the input into the pads:
        ``(E - 1 - before, E - 1 - after + padded - used)`` per axis, which gives back exactly the input
        size. A negative pad (an over-padded convolution, ``before > E - 1``) means "crop that many".

        >>> WindowGeometry.resolve((5, 5), 3, 1, "same").full_convolution_pads()
        ((1, 1), (1, 1))
        >>> WindowGeometry.resolve((7,), 3, 2, "same").full_convolution_pads()
        ((1, 1),)
        >>> WindowGeometry.resolve((4,), 3, 1, ((3, 0),)).full_convolution_pads()
        ((-1, 2),)
        """
        pads = []
        for e, (before, after), padded, used in zip(
            self.extent, self.pads, self.padded_size, self.used_size, strict=False
        ):
            if crop:
                pads.append((e - 1 - before, e - 1 - after + padded - used))
            else:
                pads.append((e - 1, e - 1))
        return tuple(pads)

    def full_convolution(self, *, crop: bool = True, owner: str | None = None) -> WindowGeometry:
        """The input gradient as a geometry: a stride-1 window over the padded, zero-inserted ``grad_out``.

        Same kernel size and dilation, pads from :meth:`full_convolution_pads`; its output size is the
        input size (``crop=True``) or :attr:`used_size` (``crop=False``).

        Raises:
            ShapeError: ``crop=True`` on an over-padded convolution (a forward pad larger than ``E - 1``).

        >>> g = WindowGeometry.resolve((7, 7), 3, 2, "same").full_convolution()
        >>> g.input_size, g.pads, g.output_size
        ((7, 7), ((1, 1), (1, 1)), (7, 7))
        """
        pads = self.full_convolution_pads(crop=crop)
        if any(p < 0 for pair in pads for p in pair):
            prefix = f"{owner}: " if owner else ""
            raise ShapeError(
                f"{prefix}the input gradient is no plain full convolution here: the forward pads {self.pads} exceed "
                f"the dilated extent - 1 ({tuple(e - 1 for e in self.extent)}) on some side."
            )
        return WindowGeometry.resolve(
            self.zero_inserted_size, self.kernel_size, 1, pads, self.dilation_rate, owner=owner
        )

    def winograd_tiles(self, output_tile: int) -> tuple[WindowGeometry, WindowGeometry]:
        """The tile grids of Winograd F(m x m, r x r) for this stride-1, undilated window (``m = output_tile``).

        Returns ``(input_tiles, output_tiles)``: ``input_tiles`` are windows of ``m + r - 1`` at stride ``m``
        over the input, reading this window's pads plus, when the output size is not a multiple of ``m``,
        the zeros needed for ``ceil(O / m)`` whole tiles; ``output_tiles`` are the ``m x m`` blocks of the
        output (zeros after a partial last block). Both have ``ceil(O / m)`` positions per axis.

        Raises:
            ConfigError: strides or dilation other than 1.

        >>> tiles, blocks = WindowGeometry.resolve((5, 5), 3, 1, "same").winograd_tiles(2)
        >>> tiles.kernel_size, tiles.pads, tiles.output_size, blocks.pads
        ((4, 4), ((1, 2), (1, 2)), (3, 3), ((0, 1), (0, 1)))
        """
        if any(s != 1 for s in self.strides) or any(d != 1 for d in self.dilation_rate):
            raise ConfigError(
                f"Winograd tiles need stride 1 and no dilation, got strides {self.strides}, "
                f"dilation {self.dilation_rate}."
            )
        m = output_tile
        counts = tuple(-(-o // m) for o in self.output_size)
        tile = tuple(m + k - 1 for k in self.kernel_size)
        input_pads = tuple(
            (before, m * t + r - 1 - i - before)
            for (before, _), t, r, i in zip(self.pads, counts, self.kernel_size, self.input_size, strict=False)
        )
        inputs = WindowGeometry.resolve(self.input_size, tile, m, input_pads)
        blocks = tuple((0, m * t - o) for t, o in zip(counts, self.output_size, strict=False))
        outputs = WindowGeometry.resolve(self.output_size, m, m, blocks)
        return inputs, outputs

    def taps(self, index: Sequence[int]) -> list[tuple[int, ...]]:
        """Input coordinates of every tap of the window at output ``index`` (row-major order).

        >>> WindowGeometry.resolve((4,), 2, 2, "valid", dilation_rate=1).taps((1,))
        [(2,), (3,)]
        """
        import itertools

        start = self.window_start(index)
        ranges = [
            [st + t * d for t in range(k)]
            for st, k, d in zip(start, self.kernel_size, self.dilation_rate, strict=False)
        ]
        return [tuple(c) for c in itertools.product(*ranges)]
