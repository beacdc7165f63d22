"""The statistics kernel of :mod:`convlens.ops.batch_norm_jit`, by ``statistics_source()``.

Do not edit: regenerate with ``python -c "from convlens.ops.batch_norm_jit import statistics_source;
print(statistics_source(), end='')" > src/convlens/ops/_batch_norm_statistics_kernel.py`` (a test checks it is
current).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _statistics(
    x: Any, shift: Any, bounds: Any, t0: int, t1: int, s1: Any, s2: Any
) -> None:  # pragma: no cover - compiled by Numba
    # x: (M, C); shift: (C,) float64; bounds: (K + 1,) row bounds of the pieces; s1, s2: (K, C) float64
    channels = x.shape[1]
    for t in range(t0, t1):
        lo = bounds[t]
        hi = bounds[t + 1]
        if channels % 16 == 0:
            for c0 in range(0, channels, 16):
                h = shift[c0 : c0 + 16]
                h0 = h[0]
                h1 = h[1]
                h2 = h[2]
                h3 = h[3]
                h4 = h[4]
                h5 = h[5]
                h6 = h[6]
                h7 = h[7]
                h8 = h[8]
                h9 = h[9]
                h10 = h[10]
                h11 = h[11]
                h12 = h[12]
                h13 = h[13]
                h14 = h[14]
                h15 = h[15]
                a0 = 0.0
                a1 = 0.0
                a2 = 0.0
                a3 = 0.0
                a4 = 0.0
                a5 = 0.0
                a6 = 0.0
                a7 = 0.0
                a8 = 0.0
                a9 = 0.0
                a10 = 0.0
                a11 = 0.0
                a12 = 0.0
                a13 = 0.0
                a14 = 0.0
                a15 = 0.0
                b0 = 0.0
                b1 = 0.0
                b2 = 0.0
                b3 = 0.0
                b4 = 0.0
                b5 = 0.0
                b6 = 0.0
                b7 = 0.0
                b8 = 0.0
                b9 = 0.0
                b10 = 0.0
                b11 = 0.0
                b12 = 0.0
                b13 = 0.0
                b14 = 0.0
                b15 = 0.0
                for r in range(lo, hi):
                    row = x[r, c0 : c0 + 16]
                    d0 = np.float64(row[0]) - h0
                    d1 = np.float64(row[1]) - h1
                    d2 = np.float64(row[2]) - h2
                    d3 = np.float64(row[3]) - h3
                    d4 = np.float64(row[4]) - h4
                    d5 = np.float64(row[5]) - h5
                    d6 = np.float64(row[6]) - h6
                    d7 = np.float64(row[7]) - h7
                    d8 = np.float64(row[8]) - h8
                    d9 = np.float64(row[9]) - h9
                    d10 = np.float64(row[10]) - h10
                    d11 = np.float64(row[11]) - h11
                    d12 = np.float64(row[12]) - h12
                    d13 = np.float64(row[13]) - h13
                    d14 = np.float64(row[14]) - h14
                    d15 = np.float64(row[15]) - h15
                    a0 += d0
                    a1 += d1
                    a2 += d2
                    a3 += d3
                    a4 += d4
                    a5 += d5
                    a6 += d6
                    a7 += d7
                    a8 += d8
                    a9 += d9
                    a10 += d10
                    a11 += d11
                    a12 += d12
                    a13 += d13
                    a14 += d14
                    a15 += d15
                    b0 += d0 * d0
                    b1 += d1 * d1
                    b2 += d2 * d2
                    b3 += d3 * d3
                    b4 += d4 * d4
                    b5 += d5 * d5
                    b6 += d6 * d6
                    b7 += d7 * d7
                    b8 += d8 * d8
                    b9 += d9 * d9
                    b10 += d10 * d10
                    b11 += d11 * d11
                    b12 += d12 * d12
                    b13 += d13 * d13
                    b14 += d14 * d14
                    b15 += d15 * d15
                a = s1[t, c0 : c0 + 16]
                b = s2[t, c0 : c0 + 16]
                a[0] = a0
                a[1] = a1
                a[2] = a2
                a[3] = a3
                a[4] = a4
                a[5] = a5
                a[6] = a6
                a[7] = a7
                a[8] = a8
                a[9] = a9
                a[10] = a10
                a[11] = a11
                a[12] = a12
                a[13] = a13
                a[14] = a14
                a[15] = a15
                b[0] = b0
                b[1] = b1
                b[2] = b2
                b[3] = b3
                b[4] = b4
                b[5] = b5
                b[6] = b6
                b[7] = b7
                b[8] = b8
                b[9] = b9
                b[10] = b10
                b[11] = b11
                b[12] = b12
                b[13] = b13
                b[14] = b14
                b[15] = b15
        else:
            a = s1[t]
            b = s2[t]
            a[:] = 0.0
            b[:] = 0.0
            for r in range(lo, hi):
                for c in range(channels):
                    d = np.float64(x[r, c]) - shift[c]
                    a[c] += d
                    b[c] += d * d
