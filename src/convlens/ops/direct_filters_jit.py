"""Compiled (Numba) direct convolution for few input channels and many filters: the ``direct_filters`` forward.

A first layer (RGB in, 32 filters out) is a thin GEMM after an im2col copy: (N*OH*OW, 27) @ (27, 32), which
OpenBLAS runs at 40-55 GFLOP/s on one core here, after a copy of 9x the input (stride 1). This kernel computes
each output pixel from the input itself, the way a GEMM micro-kernel does, with the filters in registers:

- each image is copied once into the interior of a zero-bordered scratch (zeroed once per call: only the
  interior is written), one row of ``(W + pads) * C`` floats per input row (the rows and columns the windows read);
- for :data:`BLOCK_PIXELS` neighbouring output pixels of a row and :data:`BLOCK_FILTERS` filters at once, the
  ``3 * 32`` running sums are separate variables: each step of the window (a kernel row ``i``, an offset ``t``
  within its ``KW * C`` floats, contiguous in the scratch with dilation 1 along the width) loads three input
  values, 32 weights, and does 96 multiply-adds, which LLVM's SLP vectoriser packs into twelve 8-wide FMAs
  (:func:`convlens.ops.jit._slp_compiler`: without it the kernel stays scalar);
- the sums start at the bias and are stored once, when the window is done. Leftover pixels of a row go one at a
  time.

The accumulator block cannot be written as a loop (LLVM keeps a loop's array of sums in memory), so the kernel is
generated: :func:`kernel_source` writes ``_direct_filters_kernel.py`` (checked in: Numba caches compiled code
by source file, and a test checks the file is what this function writes). Blocks measured for (32, 32x32,
3->32) stride 2, 1 thread, ms: 3 x 32 0.25-0.39, 2 x 32 0.25-0.41, 4 x 16 0.40-0.63, 4 x 8 0.75-1.1, against
the im2col path's 0.52-0.87 and PyTorch's 0.36-0.54 (AMD EPYC; the three ran interleaved per line);
1000 images: 3 x 32 6.3 ms, 2 x 32 7.2, PyTorch 7.1-7.3, the im2col path 21-24.

Multiply-adds fuse (``fastmath`` contract): results agree with the GEMM paths to rounding.

Shapes:
    x: (N, H, W, C); kernel: (KH, KW, C, F) with F a multiple of BLOCK_FILTERS; bias: (F,); out: (N, OH, OW, F)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops import _direct_filters_kernel
from convlens.ops.jit import compiled_kernels
from convlens.ops.parallel import forward_over_batch

__all__ = ["BLOCK_FILTERS", "BLOCK_PIXELS", "direct_filters_forward_jit", "kernel_source"]

#: Filters per register block: four 8-float AVX registers a pixel.
BLOCK_FILTERS = 32
#: Output pixels per register block (12 accumulator registers of the 16).
BLOCK_PIXELS = 3

_ARGUMENTS = (
    "x: Any, weights: Any, bias: Any, out: Any, lo: int, hi: int, channels: int, sh: int, sw: int, dh: int, pt: int, "
    "pl: int"
)
_HEADER = '''"""The register-blocked kernel of :mod:`convlens.ops.direct_filters_jit`, written by ``kernel_source()``.

Do not edit: regenerate with ``python -c "from convlens.ops.direct_filters_jit import kernel_source;
print(kernel_source(), end='')" > src/convlens/ops/_direct_filters_kernel.py`` (a test checks it is current).
"""

from __future__ import annotations

from typing import Any

import numpy as np
'''


def kernel_source(pixels: int = BLOCK_PIXELS, filters: int = BLOCK_FILTERS) -> str:
    """The text of ``_direct_filters_kernel.py``: ``_forward`` with ``pixels x filters`` running sums.

    >>> src = kernel_source(2, 2)
    >>> [line.strip() for line in src.splitlines() if "+= v1" in line]
    ['s1_0 += v1 * w0', 's1_1 += v1 * w1']
    """

    def sums(p: int, text: str) -> list[str]:
        return [text.format(p=p, f=f) for f in range(filters)]

    lines = [
        _HEADER,
        "",
        "def _forward(",
        *[f"    {arg}," for arg in _ARGUMENTS.split(", ")],
        ") -> None:  # pragma: no cover - compiled by Numba",
        f"    # x: (N, H, W * C); weights: (F / {filters}, KH, KW * C, {filters}); out: (N, OH, OW, F)",
        "    _, height, row = x.shape",
        "    _, oh, ow, _ = out.shape",
        "    groups, kh, span = weights.shape[0], weights.shape[1], weights.shape[2]",
        "    step = sw * channels  # from one output pixel's window to the next, in the scratch row",
        f"    blocks = -(-ow // {pixels})  # blocks of {pixels} pixels a row (the last one may reach past the row)",
        f"    wide = (blocks * {pixels} - 1) * step + span  # the floats of a padded row that the windows read",
        "    tall = (oh - 1) * sh + (kh - 1) * dh + 1",
        "    image = np.zeros((tall, wide), x.dtype)",
        "    left = min(pl * channels, wide)",
        "    inner = min(row, wide - left)",
        "    for n in range(lo, hi):",
        "        for r in range(max(0, pt), min(tall, pt + height)):  # the interior (the border stays zero)",
        "            dst = image[r]",
        "            src = x[n, r - pt]",
        "            for q in range(inner):",
        "                dst[left + q] = src[q]",
        "        for oy in range(oh):",
        "            top = oy * sh",
        "            for g in range(groups):",
        f"                first = g * {filters}",
        f"                b = bias[first : first + {filters}]",
        "                w = weights[g]",
        f"                for block in range(blocks):  # {pixels} pixels x {filters} filters of running sums",
        f"                    ox = block * {pixels}",
    ]
    body = "                    "
    lines += [body + line for p in range(pixels) for line in sums(p, "s{p}_{f} = b[{f}]")]
    lines += [
        body + "base = ox * step",
        body + "for i in range(kh):",
        body + "    image_row = image[top + i * dh]",
        body + "    w_row = w[i]",
        body + "    for t in range(span):",
        body + "        w_t = w_row[t]",
    ]
    step = body + "        "
    lines += [step + "v0 = image_row[base + t]"]
    lines += [step + f"v{p} = image_row[base + {p} * step + t]" for p in range(1, pixels)]
    lines += [step + line for line in sums(0, "w{f} = w_t[{f}]")]
    lines += [step + line for p in range(pixels) for line in sums(p, "s{p}_{f} += v{p} * w{f}")]
    lines += [body + f"d = out[n, oy, ox, first : first + {filters}]"]
    lines += [body + line for line in sums(0, "d[{f}] = s{p}_{f}")]
    for p in range(1, pixels):
        lines += [body + f"if ox + {p} < ow:  # (not past the row)"]
        lines += [body + f"    d = out[n, oy, ox + {p}, first : first + {filters}]"]
        lines += [body + "    " + line for line in sums(p, "d[{f}] = s{p}_{f}")]
    return "\n".join(lines) + "\n"


_KERNELS: tuple[Any, ...] | None = None


def kernels() -> tuple[Any, ...]:
    """The compiled forward kernel, SLP-vectorised (see the module docstring)."""
    options = {"slp": True, "fastmath": {"contract"}}
    return compiled_kernels(globals(), [(_direct_filters_kernel._forward, options)])


def blocked_weights(kernel: np.ndarray) -> np.ndarray:
    """(KH, KW, C, F) -> (F / BLOCK_FILTERS, KH, KW * C, BLOCK_FILTERS), C-contiguous: each block's weights of a
    window step are 32 neighbouring floats.

    >>> blocked_weights(np.arange(64.0).reshape(1, 1, 1, 64))[1, 0, 0, :3].tolist()
    [32.0, 33.0, 34.0]
    """
    kh, kw, channels, filters = kernel.shape
    blocks = kernel.reshape(kh, kw * channels, filters // BLOCK_FILTERS, BLOCK_FILTERS)
    return np.ascontiguousarray(blocks.transpose(2, 0, 1, 3))


def direct_filters_forward_jit(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, geometry: WindowGeometry
) -> np.ndarray:
    """The convolution (N, OH, OW, F) of ``x`` (N, H, W, C) with ``kernel`` (KH, KW, C, F), F a multiple of
    :data:`BLOCK_FILTERS`, dilation 1 along the width (the caller checks both), any strides and pads."""
    batch, height, width, channels = x.shape
    oh, ow = geometry.output_size
    (pt, _), (pl, _) = geometry.pads
    x3 = np.ascontiguousarray(x).reshape(batch, height, width * channels)
    weights = blocked_weights(kernel.astype(x.dtype, copy=False))
    layout = (channels, *geometry.strides, geometry.dilation_rate[0], pt, pl)
    return forward_over_batch(kernels()[0], x3, weights, bias, (batch, oh, ow, kernel.shape[3]), layout)
