"""Padding conventions side by side: TensorFlow 'same', PyTorch ``padding=k//2``, explicit pads.

For one axis size, kernel, stride and dilation, each convention gets its per-side pads and output
size from :class:`~convlens.geometry.WindowGeometry`; the comparison then says which rows each
output reads (first and last window), whether any padded row is never read, how far the windows
are shifted between conventions, and, on a given input, which output rows and columns differ.

The classic trap (28x28, 3x3, stride 2): TensorFlow 'same' pads (0, 1) and PyTorch ``padding=1``
pads (1, 1); both give 14 outputs, but every PyTorch window starts one pixel higher, so in general
every output row differs, and PyTorch never reads its bottom padding row.

>>> c = compare(28, 3, 2)
>>> [(r.name, r.geometry.pads[0], r.geometry.output_size[0]) for r in c.results]
[('tensorflow_same', (0, 1), 14), ('pytorch_k//2', (1, 1), 14)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from convlens.errors import ConfigError, check_int, normalize_tuple
from convlens.geometry import WindowGeometry, normalize_padding
from convlens.lab.kernels import as_grid, get_kernel

__all__ = ["Convention", "PaddingComparison", "compare"]


@dataclass(frozen=True)
class Convention:
    """One padding convention applied to the input.

    Attributes:
        name: ``'tensorflow_same'``, ``'pytorch_k//2'`` or ``'explicit'``.
        label: human description (e.g. ``"PyTorch padding=k//2 = 1"``).
        geometry: the resolved geometry (pads per side, output size).
        first_window: per axis, the input rows (cols) ``(first, last)`` of output 0's window (may be
            negative or >= size: padding).
        last_window: the same for the last output.
        pad_read: per axis, how many padded rows (cols) before / after the input some window reads.
        unread: per axis, input rows (cols) no window reads (a 'valid'-like stride drop).
        output: (OH, OW) the convolution of the comparison input with these pads.
    """

    name: str
    label: str
    geometry: WindowGeometry
    first_window: tuple[tuple[int, int], ...]
    last_window: tuple[tuple[int, int], ...]
    pad_read: tuple[tuple[int, int], ...]
    unread: tuple[tuple[int, ...], ...]
    output: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        g = self.geometry
        return {
            "name": self.name,
            "label": self.label,
            "pads": [list(p) for p in g.pads],
            "output_size": list(g.output_size),
            "first_window": [list(w) for w in self.first_window],
            "last_window": [list(w) for w in self.last_window],
            "pad_read": [list(p) for p in self.pad_read],
            "unread": [list(u) for u in self.unread],
            "output": self.output.tolist(),
        }


@dataclass(frozen=True)
class PaddingComparison:
    """The conventions on one input, plus where their outputs differ.

    Attributes:
        input: (H, W) the input used for the numeric comparison.
        kernel: (KH, KW).
        results: one :class:`Convention` each.
        shifts: ``{(a, b): (row_shift, col_shift)}``: window start of ``a`` minus that of ``b``, for the same
            output index (constant over the map); None when the output sizes differ.
        differing: ``{(a, b): (rows, cols)}``: output rows and columns holding a differing value (on this
            input; tolerance 1e-9 relative); None when the output sizes differ.
    """

    input: np.ndarray
    kernel: np.ndarray
    results: list[Convention]
    shifts: dict[tuple[str, str], tuple[int, int] | None]
    differing: dict[tuple[str, str], tuple[list[int], list[int]] | None]

    def get(self, name: str) -> Convention:
        """The convention called ``name``."""
        for r in self.results:
            if r.name == name:
                return r
        raise ConfigError(f"padding_compare: no convention {name!r}; have {[r.name for r in self.results]}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "input": self.input.tolist(),
            "kernel": self.kernel.tolist(),
            "results": [r.to_dict() for r in self.results],
            "shifts": {f"{a} vs {b}": None if s is None else list(s) for (a, b), s in self.shifts.items()},
            "differing": {
                f"{a} vs {b}": None if d is None else {"rows": d[0], "cols": d[1]}
                for (a, b), d in self.differing.items()
            },
        }


def _convention(name: str, label: str, geometry: WindowGeometry, x: np.ndarray, kernel: np.ndarray) -> Convention:
    from convlens.ops.conv import conv2d

    first, last, pad_read, unread = [], [], [], []
    for axis in range(2):
        size = geometry.input_size[axis]
        o, e = geometry.output_size[axis], geometry.extent[axis]
        start0 = geometry.window_start((0, 0))[axis]
        start_last = geometry.window_start((o - 1, o - 1))[axis]
        first.append((start0, start0 + e - 1))
        last.append((start_last, start_last + e - 1))
        pad_read.append((max(-start0, 0), max(start_last + e - size, 0)))
        read: set[int] = set()
        for idx in range(o):
            index = (idx, idx)
            read.update(t[axis] for t in geometry.taps(index))
        unread.append(tuple(r for r in range(size) if r not in read))
    out = conv2d(x[None, :, :, None], kernel[:, :, None, None], padding=geometry.pads,
                 strides=geometry.strides, dilation_rate=geometry.dilation_rate)[0, :, :, 0]  # fmt: skip
    return Convention(name, label, geometry, tuple(first), tuple(last), tuple(pad_read), tuple(unread), out)


def compare(
    input_size: Any,
    kernel_size: Any,
    stride: Any = 1,
    dilation: Any = 1,
    *,
    explicit: Any = None,
    input: Any = None,
    kernel: Any = None,
    seed: int = 0,
) -> PaddingComparison:
    """Compare TensorFlow 'same', PyTorch ``padding=k//2`` and (optionally) explicit pads.

    PyTorch's idiom pads ``d * (k // 2)`` on both sides (``k // 2`` for dilation 1), symmetric whatever
    the stride; TensorFlow's 'same' gives ``ceil(i / s)`` outputs with the odd padded pixel at the
    bottom/right.

    Args:
        input_size: int (square) or (H, W).
        kernel_size: int (square) or (KH, KW).
        stride: int or (SH, SW).
        dilation: int or (DH, DW).
        explicit: optional per-side pads (any form :func:`convlens.geometry.normalize_padding` takes).
        input: optional (H, W) input for the numeric comparison; default random normal (``seed``).
        kernel: optional (KH, KW) kernel (numbers or a name); default random normal.
        seed: seed of the default input and kernel.

    Shapes:
        outputs: (OH, OW) per convention; 'same': OH = ceil(H / SH);
        k//2: OH = (H + 2 * DH * (KH // 2) - ((KH - 1) * DH + 1)) // SH + 1.
    """
    owner = "padding_compare"
    size = normalize_tuple(input_size, 2, "input_size", owner=owner)
    rng = np.random.default_rng(check_int(seed, "seed", owner=owner))
    # Resolve with generous pads only to validate and standardise kernel_size / stride / dilation.
    ks = WindowGeometry.resolve(size, kernel_size, stride, 10**6, dilation, owner=owner)
    x = rng.standard_normal(size) if input is None else as_grid(input, "input")
    if x.shape != size:
        raise ConfigError(f"{owner}: `input` must have shape {size}, got {x.shape}.")
    k = rng.standard_normal(ks.kernel_size) if kernel is None else get_kernel(kernel)
    if k.shape != ks.kernel_size:
        raise ConfigError(f"{owner}: `kernel` must have shape {ks.kernel_size}, got {k.shape}.")
    torch_pads = tuple(d * (kk // 2) for kk, d in zip(ks.kernel_size, ks.dilation_rate, strict=True))
    geometries = [
        ("tensorflow_same", "TensorFlow/Keras padding='same'", "same"),
        ("pytorch_k//2", f"PyTorch padding=k//2 = {torch_pads if torch_pads[0] != torch_pads[1] else torch_pads[0]}",
         tuple((p, p) for p in torch_pads)),
    ]  # fmt: skip
    if explicit is not None:
        pads = normalize_padding(explicit, 2, owner=owner)
        if isinstance(pads, str):
            raise ConfigError(f"{owner}: `explicit` must be per-side pads such as ((0, 1), (0, 1)), got {explicit!r}.")
        geometries.append(("explicit", f"explicit pads {pads}", pads))
    results = []
    for name, label, spec in geometries:
        g = WindowGeometry.resolve(size, k.shape, stride, spec, dilation, owner=owner)
        results.append(_convention(name, label, g, x, k))
    shifts: dict[tuple[str, str], tuple[int, int] | None] = {}
    differing: dict[tuple[str, str], tuple[list[int], list[int]] | None] = {}
    for i, a in enumerate(results):
        for b in results[i + 1 :]:
            key = (a.name, b.name)
            if a.geometry.output_size != b.geometry.output_size:
                shifts[key], differing[key] = None, None
                continue
            sa, sb = a.geometry.window_start((0, 0)), b.geometry.window_start((0, 0))
            shifts[key] = (sa[0] - sb[0], sa[1] - sb[1])
            diff = ~np.isclose(a.output, b.output, rtol=1e-9, atol=1e-12)
            differing[key] = (np.flatnonzero(diff.any(axis=1)).tolist(), np.flatnonzero(diff.any(axis=0)).tolist())
    return PaddingComparison(x, k, results, shifts, differing)
