"""Compiled (Numba) direct convolution for few input channels and many filters: the ``direct_filters`` forward and
kernel gradient, and the ``pointwise_compiled`` forward.

A first layer (RGB in, 32 filters out) is a thin GEMM after an im2col copy: (N*OH*OW, 27) @ (27, 32), which
OpenBLAS runs at 40-55 GFLOP/s on one core here, after a copy of 9x the input (stride 1). This kernel computes
each output pixel from the input itself, the way a GEMM micro-kernel does, with the filters in registers:

- each image is copied once into the interior of a zero-bordered scratch (zeroed once per call: only the
  interior is written), one row of ``(W + pads) * C`` floats per input row (the rows and columns the windows read);
- for a block of neighbouring output pixels of a row and of filters (:data:`BLOCKS`: 3 pixels x 32 filters, or
  6 x 16 where 32 does not divide the filters), the 96 running sums are separate variables: each step of the
  window (a kernel row ``i``, an offset ``t`` within its ``KW * C`` floats, contiguous in the scratch with
  dilation 1 along the width) loads one input value a pixel and the block's weights, and does 96 multiply-adds,
  which LLVM's SLP vectoriser packs into twelve 8-wide (six 16-wide) FMAs (:func:`convlens.ops.jit._slp_compiler`:
  without it the kernel stays scalar);
- each pixel reads its window through its own view of the scratch row, indexed by the loop counter alone: LLVM
  then drops Numba's negative-index select from every load (with ``row[base + p * step + t]`` each FMA came with
  five integer instructions). One thread, ms: (64, 32x32, 3->64) 3x3 2.72 -> 2.04; LeNet-5's (128, 14x14,
  6->16) 5x5 1.09 -> 0.73, against 1.19 for the im2col path and PyTorch's 0.72 (AMD EPYC);
- the sums start at the bias and are stored once, when the window is done. Leftover pixels of a row go one at a
  time.

The kernel gradient turns the block around: ``taps x filters`` running sums (the same block sizes) of
``image[window tap] * grad_out[pixel, filter]``, over every output pixel of an image: a pixel loads its block of
gradients and one input float a tap. The input column is an unsigned counter, so the loads carry no select
either. Partial sums per fixed batch chunk (:func:`convlens.ops.parallel.kernel_grad_over_chunks`), the bias
gradient in the same pass. LeNet-5's 6 -> 16 layer, one thread: 0.66 ms against the blocked im2col + GEMM's
1.03 and PyTorch's 0.66.

A 1x1, stride-1 convolution (``pointwise_compiled``) is the same block over the input's rows, which are its
pixels: ``out = x @ w + bias`` with no scratch and no window, where OpenBLAS runs the skinny GEMM (K = C = 16-64)
well below its rate and the bias takes another pass: (128, 13x13, 32->64) 1.30 -> 0.84 ms on one thread
(PyTorch 0.85).

The accumulator block cannot be written as a loop (LLVM keeps a loop's array of sums in memory), so the kernels
are generated: :func:`write_kernels` writes one module per kernel into ``_register_blocks/`` (checked in: Numba
caches compiled code by source file, and a test checks the files are what the generators write). Blocks measured
for (32, 32x32, 3->32) stride 2, 1 thread, ms: 3 x 32 0.25-0.39, 2 x 32 0.25-0.41, 4 x 16 0.40-0.63, 4 x 8
0.75-1.1, against the im2col path's 0.52-0.87 and PyTorch's 0.36-0.54 (AMD EPYC; the three ran interleaved per line);
1000 images: 3 x 32 6.3 ms, 2 x 32 7.2, PyTorch 7.1-7.3, the im2col path 21-24. With 16 filters (LeNet-5's 6 ->
16 forward), 4 / 6 / 8 / 12 pixels: 0.79 / 0.73 / 0.91 / 0.73 ms; blocks of more than 96 sums would spill on a
machine with sixteen AVX registers.

Multiply-adds fuse (``fastmath`` contract): results agree with the GEMM paths to rounding.

Shapes:
    x: (N, H, W, C); kernel: (KH, KW, C, F) with F a multiple of a block's filters; bias: (F,);
    out, grad_out: (N, OH, OW, F)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from convlens.geometry import WindowGeometry
from convlens.ops import _register_blocks
from convlens.ops.direct_jit import CHUNKS
from convlens.ops.jit import compiled_kernels
from convlens.ops.parallel import forward_over_batch, kernel_grad_over_chunks, parallel_ranges

__all__ = [
    "BLOCKS",
    "KERNEL_NAMES",
    "block_filters",
    "direct_filters_forward_jit",
    "direct_filters_kernel_grad_jit",
    "generated_module",
    "kernel_function",
    "kernel_grad_function",
    "kernel_sources",
    "pointwise_function",
    "pointwise_jit",
    "write_kernels",
]

#: The register blocks, filters per block -> output pixels per block: 3 pixels x 32 filters, or 6 pixels x 16 filters
#: where 32 does not divide the filters (LeNet-5's 6 -> 16 layer). 96 running sums either way: twelve of the
#: sixteen 8-float AVX registers (six AVX-512 registers).
BLOCKS: dict[int, int] = {32: 3, 16: 6}

_ARGUMENTS = (
    "x: Any, weights: Any, bias: Any, out: Any, lo: int, hi: int, channels: int, sh: int, sw: int, dh: int, pt: int, "
    "pl: int"
)
_GRAD_ARGUMENTS = (
    "x: Any, grad: Any, parts: Any, bias_parts: Any, bounds: Any, t0: int, t1: int, channels: int, sh: int, sw: int, "
    "dh: int, pt: int, pl: int"
)
_HEADER = '''"""A register-blocked kernel of :mod:`convlens.ops.direct_filters_jit`, written by ``write_kernels()``.

Do not edit: regenerate every kernel with ``python -c "from convlens.ops.direct_filters_jit import write_kernels;
write_kernels()"`` (a test checks the files are current).
"""

from __future__ import annotations

from typing import Any
'''


# The zero-bordered scratch both kernels read the windows from (``wide`` set before), and the copy of image ``n``
# into its interior (the border stays zero).
_SCRATCH = (
    "    tall = (oh - 1) * sh + (kh - 1) * dh + 1",
    "    image = np.zeros((tall, wide), x.dtype)",
    "    left = min(pl * channels, wide)",
    "    inner = min(row, wide - left)",
)


def _copy_image(indent: str) -> list[str]:
    return [
        indent + line
        for line in (
            "for r in range(max(0, pt), min(tall, pt + height)):  # the interior (the border stays zero)",
            "    dst = image[r]",
            "    src = x[n, r - pt]",
            "    for q in range(inner):",
            "        dst[left + q] = src[q]",
        )
    ]


def kernel_function(pixels: int, filters: int) -> str:
    """The text of one generated kernel, ``_forward_<filters>``, with ``pixels x filters`` running sums.

    >>> src = kernel_function(2, 2)
    >>> [line.strip() for line in src.splitlines() if "+= v1" in line]
    ['s1_0 += v1 * w0', 's1_1 += v1 * w1']
    """

    def sums(p: int, text: str) -> list[str]:
        return [text.format(p=p, f=f) for f in range(filters)]

    lines = [
        f"def _forward_{filters}(",
        *[f"    {arg}," for arg in _ARGUMENTS.split(", ")],
        ") -> None:  # pragma: no cover - compiled by Numba",
        f"    # x: (N, H, W * C); weights: (F / {filters}, KH, KW * C, {filters}); out: (N, OH, OW, F)",
        "    _, height, row = x.shape",
        "    _, oh, ow, _ = out.shape",
        "    groups, kh, span = weights.shape[0], weights.shape[1], weights.shape[2]",
        "    step = sw * channels  # from one output pixel's window to the next, in the scratch row",
        f"    blocks = -(-ow // {pixels})  # blocks of {pixels} pixels a row (the last one may reach past the row)",
        f"    wide = (blocks * {pixels} - 1) * step + span  # the floats of a padded row that the windows read",
        *_SCRATCH,
        "    for n in range(lo, hi):",
        *_copy_image("        "),
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
    ]
    # One view a pixel, indexed by the loop's own counter: LLVM then knows the index is not negative and drops
    # Numba's wrap-around select from every load (the block's loads were 5 integer instructions an FMA).
    lines += [body + f"    r{p} = image_row[base + {p} * step :]" for p in range(pixels)]
    lines += [body + "    for t in range(span):", body + "        w_t = w_row[t]"]
    step = body + "        "
    lines += [step + f"v{p} = r{p}[t]" for p in range(pixels)]
    lines += [step + line for line in sums(0, "w{f} = w_t[{f}]")]
    lines += [step + line for p in range(pixels) for line in sums(p, "s{p}_{f} += v{p} * w{f}")]
    lines += [body + f"d = out[n, oy, ox, first : first + {filters}]"]
    lines += [body + line for line in sums(0, "d[{f}] = s{p}_{f}")]
    for p in range(1, pixels):
        lines += [body + f"if ox + {p} < ow:  # (not past the row)"]
        lines += [body + f"    d = out[n, oy, ox + {p}, first : first + {filters}]"]
        lines += [body + "    " + line for line in sums(p, "d[{f}] = s{p}_{f}")]
    return "\n".join(lines) + "\n"


def kernel_grad_function(taps: int, filters: int) -> str:
    """The text of one generated kernel gradient, ``_kernel_grad_<filters>``: ``taps x filters`` running sums of
    ``image[window tap] * grad_out[pixel, filter]`` over every output pixel of a batch chunk.

    For each image (copied into the zero-bordered scratch as in the forward), kernel row ``i`` and run of ``taps``
    neighbouring offsets ``t`` of the row's ``KW * C`` floats, the sums are loaded from the chunk's partial
    gradient, take one multiply-add per tap and filter for every output pixel (a pixel loads its ``filters``
    gradients and ``taps`` input floats), and are stored back. The input column is an unsigned counter: no
    wrap-around select on the loads. The partial gradient's rows run past ``KW * C`` to a multiple of ``taps``
    (the caller crops them).

    >>> src = kernel_grad_function(2, 2)
    >>> [line.strip() for line in src.splitlines() if "+= v1" in line]
    ['s1_0 += v1 * w0', 's1_1 += v1 * w1']
    """

    def sums(p: int, text: str) -> list[str]:
        return [text.format(p=p, f=f) for f in range(filters)]

    lines = [
        f"def _kernel_grad_{filters}(",
        *[f"    {arg}," for arg in _GRAD_ARGUMENTS.split(", ")],
        ") -> None:  # pragma: no cover - compiled by Numba",
        f"    # x: (N, H, W * C); grad: (N, OH, OW, F); bias_parts: (chunks, F); parts: (chunks, F / {filters}, KH,",
        f"    # KW * C rounded up to a multiple of {taps}, {filters})",
        "    _, height, row = x.shape",
        "    _, oh, ow, _ = grad.shape",
        "    groups, kh, span = parts.shape[1], parts.shape[2], parts.shape[3]",
        "    step = sw * channels",
        "    wide = (ow - 1) * step + span",
        *_SCRATCH,
        "    ustep = np.uint64(step)",
        *[f"    u{j} = np.uint64({j})" for j in range(1, taps)],
        "    for c in range(t0, t1):",
        "        part = parts[c]",
        "        part[:] = 0",
        "        bias_sum = bias_parts[c]",
        "        bias_sum[:] = 0",
        "        for n in range(bounds[c], bounds[c + 1]):",
        *_copy_image("            "),
        "            grad_n = grad[n]",
        "            for oy in range(oh):",
        "                for ox in range(ow):",
        "                    pixel = grad_n[oy, ox]",
        "                    for f in range(pixel.shape[0]):",
        "                        bias_sum[f] += pixel[f]",
        "            for g in range(groups):",
        f"                first = g * {filters}",
        "                part_g = part[g]",
        "                for i in range(kh):",
        "                    sums = part_g[i]",
        f"                    for run in range(span // {taps}):  # {taps} taps x {filters} filters of running sums",
        f"                        t = run * {taps}",
    ]
    body = "                        "
    lines += [body + f"row{p} = sums[t + {p}]" for p in range(taps)]  # (one view a tap: constant indices below)
    lines += [body + line for p in range(taps) for line in sums(p, "s{p}_{f} = row{p}[{f}]")]
    lines += [
        body + "for oy in range(oh):",
        body + "    image_row = image[oy * sh + i * dh]",
        body + "    grad_row = grad_n[oy]",
        body + "    q = np.uint64(t)  # the pixel's first tap in the scratch row",
        body + "    for ox in range(ow):",
        body + f"        w = grad_row[ox, first : first + {filters}]",
    ]
    step = body + "        "
    lines += [step + "v0 = image_row[q]"] + [step + f"v{j} = image_row[q + u{j}]" for j in range(1, taps)]
    lines += [step + line for line in sums(0, "w{f} = w[{f}]")]
    lines += [step + line for p in range(taps) for line in sums(p, "s{p}_{f} += v{p} * w{f}")]
    lines += [step + "q += ustep"]
    lines += [body + line for p in range(taps) for line in sums(p, "row{p}[{f}] = s{p}_{f}")]
    return "\n".join(lines) + "\n"


def pointwise_function(rows: int, filters: int) -> str:
    """The text of one generated 1x1 convolution, ``_pointwise_<filters>``: ``out = x @ w + bias`` with ``rows x
    filters`` running sums, the rows of a 1x1 convolution's input being its pixels (no scratch, no window).

    >>> src = pointwise_function(2, 2)
    >>> [line.strip() for line in src.splitlines() if "+= v1" in line]
    ['s1_0 += v1 * w0', 's1_1 += v1 * w1']
    """

    def sums(p: int, text: str) -> list[str]:
        return [text.format(p=p, f=f) for f in range(filters)]

    lines = [
        f"def _pointwise_{filters}(x: Any, weights: Any, bias: Any, out: Any, lo: int, hi: int) -> None:  # "
        "pragma: no cover",
        f"    # x: (M, C); weights: (F / {filters}, C, {filters}); out: (M, F); rows lo <= r < hi, in blocks of "
        f"{rows} from lo",
        "    groups, channels = weights.shape[0], weights.shape[1]",
        f"    whole = lo + (hi - lo) // {rows} * {rows}",
        f"    for r in range(lo, whole, {rows}):  # {rows} rows x {filters} filters of running sums",
    ]
    lines += [f"        x{p} = x[r + {p}]" for p in range(rows)]
    lines += [
        "        for g in range(groups):",
        f"            first = g * {filters}",
        f"            b = bias[first : first + {filters}]",
        "            w = weights[g]",
    ]
    body = "            "
    lines += [body + line for p in range(rows) for line in sums(p, "s{p}_{f} = b[{f}]")]
    lines += [body + "for c in range(channels):", body + "    w_c = w[c]"]
    step = body + "    "
    lines += [step + f"v{p} = x{p}[c]" for p in range(rows)]
    lines += [step + line for line in sums(0, "w{f} = w_c[{f}]")]
    lines += [step + line for p in range(rows) for line in sums(p, "s{p}_{f} += v{p} * w{f}")]
    for p in range(rows):
        lines += [body + f"d = out[r + {p}, first : first + {filters}]"]
        lines += [body + line for line in sums(p, "d[{f}] = s{p}_{f}")]
    lines += [
        "    for r in range(whole, hi):  # (the last rows, one at a time)",
        "        x_r = x[r]",
        "        d = out[r]",
        "        for f in range(d.shape[0]):",
        "            d[f] = bias[f]",
        "        for g in range(groups):",
        "            w = weights[g]",
        f"            first = g * {filters}",
        "            for c in range(channels):",
        "                v = x_r[c]",
        "                w_c = w[c]",
        f"                for f in range({filters}):",
        "                    d[first + f] += v * w_c[f]",
    ]
    return "\n".join(lines) + "\n"


#: The generated kernels, one module each in ``convlens/ops/_register_blocks/``: the forwards, the kernel gradients,
#: then the 1x1 forwards, each in :data:`BLOCKS`' order.
KERNEL_NAMES = tuple(f"{kind}_{filters}" for kind in ("forward", "kernel_grad", "pointwise") for filters in BLOCKS)


def kernel_sources() -> dict[str, str]:
    """The text of each generated module, by kernel name (:data:`KERNEL_NAMES`; the function in module ``NAME``
    is ``_NAME``)."""
    functions = [kernel_function(pixels, filters) for filters, pixels in BLOCKS.items()]
    functions += [kernel_grad_function(taps, filters) for filters, taps in BLOCKS.items()]
    functions += [pointwise_function(rows, filters) for filters, rows in BLOCKS.items()]
    numpy = "\nimport numpy as np\n"  # (the kernels that allocate their scratch)
    return {
        name: _HEADER + (numpy if "np." in function else "") + f"\n\n{function}"
        for name, function in zip(KERNEL_NAMES, functions, strict=True)
    }


def write_kernels() -> None:
    """Write the generated modules into ``convlens/ops/_register_blocks/`` (a developer's step, after changing a
    generator; the modules are checked in)."""
    folder = Path(_register_blocks.__file__).parent
    for name, text in kernel_sources().items():
        (folder / f"{name}.py").write_text(text)


_KERNELS: tuple[Any, ...] | None = None


def kernels() -> tuple[Any, ...]:
    """The compiled kernels, SLP-vectorised (see the module docstring), in :data:`KERNEL_NAMES`' order."""
    options = {"slp": True, "fastmath": {"contract"}}
    functions = [getattr(generated_module(name), f"_{name}") for name in KERNEL_NAMES]
    return compiled_kernels(globals(), [(function, options) for function in functions])


def generated_module(name: str) -> Any:
    """The generated module of kernel ``name`` (one of :data:`KERNEL_NAMES`)."""
    return importlib.import_module(f"{_register_blocks.__name__}.{name}")


def _kernel(kind: str, block: int) -> Any:
    """The compiled kernel of ``kind`` ('forward', 'kernel_grad' or 'pointwise') for blocks of ``block`` filters."""
    return kernels()[KERNEL_NAMES.index(f"{kind}_{block}")]


def block_filters(filters: int) -> int | None:
    """The filters per register block for a convolution with ``filters`` filters (the widest block of
    :data:`BLOCKS` that divides it), None when none does.

    >>> block_filters(64), block_filters(48), block_filters(6)
    (32, 16, None)
    """
    return next((block for block in BLOCKS if filters % block == 0), None)


def _block(filters: int) -> int:
    block = block_filters(filters)
    if block is None:
        raise ValueError(f"direct_filters: filters must be a multiple of {min(BLOCKS)}, got {filters}")
    return block


def blocked_weights(kernel: np.ndarray, block: int) -> np.ndarray:
    """(KH, KW, C, F) -> (F / block, KH, KW * C, block), C-contiguous: each block's weights of a window step are
    ``block`` neighbouring floats.

    >>> blocked_weights(np.arange(64.0).reshape(1, 1, 1, 64), 32)[1, 0, 0, :3].tolist()
    [32.0, 33.0, 34.0]
    """
    kh, kw, channels, filters = kernel.shape
    blocks = kernel.reshape(kh, kw * channels, filters // block, block)
    return np.ascontiguousarray(blocks.transpose(2, 0, 1, 3))


def direct_filters_forward_jit(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, geometry: WindowGeometry
) -> np.ndarray:
    """The convolution (N, OH, OW, F) of ``x`` (N, H, W, C) with ``kernel`` (KH, KW, C, F), F a multiple of a
    block of :data:`BLOCKS`, dilation 1 along the width (the caller checks both), any strides and pads."""
    batch, height, width, channels = x.shape
    oh, ow = geometry.output_size
    (pt, _), (pl, _) = geometry.pads
    block = _block(kernel.shape[3])
    x3 = np.ascontiguousarray(x).reshape(batch, height, width * channels)
    weights = blocked_weights(kernel.astype(x.dtype, copy=False), block)
    layout = (channels, *geometry.strides, geometry.dilation_rate[0], pt, pl)
    return forward_over_batch(_kernel("forward", block), x3, weights, bias, (batch, oh, ow, kernel.shape[3]), layout)


def direct_filters_kernel_grad_jit(
    x: np.ndarray, grad_out: np.ndarray, geometry: WindowGeometry, kernel_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_kernel (KH, KW, C, F), grad_bias (F,))`` of the convolution from ``grad_out``, F a multiple of a
    block of :data:`BLOCKS`, dilation 1 along the width (the caller checks both), any strides and pads.

    One partial sum per fixed batch chunk (:data:`convlens.ops.direct_jit.CHUNKS`), added in order: the bits do not
    depend on the number of threads.

    Shapes:
        x: (N, H, W, C) and grad_out: (N, OH, OW, F), C-contiguous of one dtype.
    """
    kh, kw, channels, filters = kernel_shape
    block = _block(filters)
    taps = BLOCKS[block]
    span = kw * channels
    batch, height, width, _ = x.shape
    (pt, _), (pl, _) = geometry.pads
    x3 = np.ascontiguousarray(x).reshape(batch, height, width * channels)
    layout = (channels, *geometry.strides, geometry.dilation_rate[0], pt, pl)
    shape = (filters // block, kh, -(-span // taps) * taps, block)  # (the rows rounded up to whole runs of taps)
    parts, grad_bias = kernel_grad_over_chunks(
        _kernel("kernel_grad", block), x3, grad_out, shape, CHUNKS, layout, bias_size=filters
    )
    # (F / block, KH, KW * C, block) -> (KH, KW, C, F)
    grad_kernel = parts[:, :, :span].transpose(1, 2, 0, 3).reshape(kh, kw, channels, filters)
    return grad_kernel, grad_bias


def pointwise_jit(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``x @ kernel + bias`` (a 1x1, stride-1 convolution's rows) by the register-blocked kernel, F a multiple of a
    block of :data:`BLOCKS` (the caller checks), blocks of rows split over the threads.

    Shapes:
        x: (M, C), C-contiguous, and kernel: (C, F), of one dtype; bias: (F,); returns (M, F)
    """
    rows, channels = x.shape
    filters = kernel.shape[1]
    block = _block(filters)
    per_block = BLOCKS[block]
    weights = blocked_weights(kernel.reshape(1, 1, channels, filters), block)[:, 0]  # (F / block, C, block)
    b = np.zeros(filters, x.dtype) if bias is None else np.ascontiguousarray(bias, x.dtype)
    out = np.empty((rows, filters), x.dtype)
    kernel_1x1 = _kernel("pointwise", block)

    def run(lo: int, hi: int) -> None:
        kernel_1x1(x, weights, b, out, lo * per_block, min(hi * per_block, rows))

    parallel_ranges(run, -(-rows // per_block), x.nbytes + out.nbytes)
    return out
