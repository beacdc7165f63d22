"""Slow, obviously-right loop references for the Keras-API layers' ops: transposed convolution, bilinear
upsampling, layer normalisation and translation. Each follows the definition (Keras's own formulas where Keras
defines the arithmetic), not convlens's code."""

from __future__ import annotations

import math

import numpy as np


def keras_left_pad(k: int, s: int, d: int, padding: str, output_padding: int | None) -> int:
    """Keras's JAX-backend rule (``_convert_conv_transpose_padding_args_from_keras_to_jax``): the transposed
    output starts ``left_pad`` rows into the full result extended by ``e - 1`` on each side."""
    e = (k - 1) * d + 1
    if padding == "valid":
        return e - 1
    pad_len = s + e - 2 if output_padding is None else e + e % 2 - 2 + output_padding
    return min(pad_len // 2 + pad_len % 2, e - 1)


def conv2d_transpose(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    stride: int,
    padding: str,
    output_padding: int | None,
    dilation: int,
) -> np.ndarray:
    """Seven nested loops: every input pixel scatters ``x * kernel`` onto the output (Keras's layout, kernel
    (KH, KW, F, C)); the output window is Keras's length, placed by the JAX-backend padding rule."""
    batch, height, width, channels = x.shape
    kh, kw, filters, _ = kernel.shape
    sizes = []
    tops = []
    for size, k in ((height, kh), (width, kw)):
        e = (k - 1) * dilation + 1
        if output_padding is None:
            length = size * stride + max(e - stride, 0) if padding == "valid" else size * stride
        else:
            pad = e // 2 if padding == "same" else 0
            length = (size - 1) * stride + e - 2 * pad + output_padding
        sizes.append(length)
        tops.append(
            e - 1 - keras_left_pad(k, stride, dilation, padding, output_padding)
        )  # rows of the full result (which starts at 0) cut off the top
    out = np.zeros((batch, sizes[0], sizes[1], filters))
    for n in range(batch):
        for i in range(height):
            for j in range(width):
                for a in range(kh):
                    for b in range(kw):
                        r = i * stride + a * dilation - tops[0]
                        c = j * stride + b * dilation - tops[1]
                        if 0 <= r < sizes[0] and 0 <= c < sizes[1]:
                            for f in range(filters):
                                for ch in range(channels):
                                    out[n, r, c, f] += x[n, i, j, ch] * kernel[a, b, f, ch]
    if bias is not None:
        out += bias
    return out


def upsample_bilinear(x: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """TensorFlow's ``compute_interpolation_weights`` per output pixel (half-pixel centres, clamped)."""
    batch, height, width, channels = x.shape

    def weights(o: int, size: int, factor: int) -> tuple[int, int, float]:
        src = (o + 0.5) / factor - 0.5
        lower = max(math.floor(src), 0)
        upper = min(math.ceil(src), size - 1)
        return lower, upper, src - math.floor(src)

    out = np.zeros((batch, height * sh, width * sw, channels))
    for o in range(height * sh):
        r0, r1, fr = weights(o, height, sh)
        for p in range(width * sw):
            c0, c1, fc = weights(p, width, sw)
            top = x[:, r0, c0] * (1 - fc) + x[:, r0, c1] * fc
            bottom = x[:, r1, c0] * (1 - fc) + x[:, r1, c1] * fc
            out[:, o, p] = top * (1 - fr) + bottom * fr
    return out


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, epsilon: float) -> np.ndarray:
    """Each sample normalised over all its non-batch values (gamma/beta with those values' shape)."""
    out = np.empty_like(x, dtype=np.float64)
    for n in range(x.shape[0]):
        values = x[n].astype(np.float64)
        mean = values.sum() / values.size
        var = ((values - mean) ** 2).sum() / values.size
        out[n] = (values - mean) / math.sqrt(var + epsilon) * gamma + beta
    return out


def _fix(index: int, size: int, mode: str) -> int | None:
    """Keras's map_coordinates index fixing, spelled out case by case (None: outside, read the fill value)."""
    if 0 <= index < size:
        return index
    if mode == "constant":
        return None
    if mode == "nearest":
        return min(max(index, 0), size - 1)
    if mode == "wrap":
        return index % size
    period = 2 * size if mode == "reflect" else 2 * (size - 1)  # reflect repeats the edge pixel, mirror does not
    if period == 0:
        return 0
    index %= period
    if mode == "reflect":
        return index if index < size else period - 1 - index
    return index if index < size else period - index


def translate(x: np.ndarray, dy: float, dx: float, interpolation: str, fill_mode: str, fill_value: float) -> np.ndarray:
    """One image (H, W, C): output (i, j) reads (i - dy, j - dx), tap by tap."""
    height, width, _ = x.shape
    out = np.zeros(x.shape)

    def taps(coordinate: float) -> list[tuple[int, float]]:
        if interpolation == "nearest":
            return [(round(coordinate), 1.0)]  # Python's round: half to even, as torch.round
        lower = math.floor(coordinate)
        return [(lower, 1.0 - (coordinate - lower)), (lower + 1, coordinate - lower)]

    for i in range(height):
        for j in range(width):
            for r, wr in taps(i - dy):
                for c, wc in taps(j - dx):
                    rr, cc = _fix(r, height, fill_mode), _fix(c, width, fill_mode)
                    value = fill_value if rr is None or cc is None else x[rr, cc]
                    out[i, j] += wr * wc * value
    return out
