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

from convlens.errors import ConfigError, ShapeError, normalize_tuple

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
        f"got {padding!r}."
    )
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in PADDING_MODES or (mode == "causal" and rank != 1):
            raise bad
        return mode
    if _is_int(padding):
        if padding < 0:
            raise bad
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
        rank = 1 if _is_int(input_size) else len(tuple(input_size))  # type: ignore[arg-type]
        size = normalize_tuple(input_size, rank, "input size", owner=owner, minimum=0)
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

    def window_start(self, index: Sequence[int]) -> tuple[int, ...]:
        """Input coordinate (may be negative: inside the padding) of the window's first tap.

        >>> WindowGeometry.resolve((5, 5), 3, 1, "same").window_start((0, 0))
        (-1, -1)
        """
        return tuple(o * s - b for o, s, (b, _) in zip(index, self.strides, self.pads, strict=False))

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
