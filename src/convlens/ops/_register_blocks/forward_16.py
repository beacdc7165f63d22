"""A register-blocked kernel of :mod:`convlens.ops.direct_filters_jit`, written by ``write_kernels()``.

Do not edit: regenerate every kernel with ``python -c "from convlens.ops.direct_filters_jit import write_kernels;
write_kernels()"`` (a test checks the files are current).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _forward_16(
    x: Any,
    weights: Any,
    bias: Any,
    out: Any,
    lo: int,
    hi: int,
    channels: int,
    sh: int,
    sw: int,
    dh: int,
    pt: int,
    pl: int,
) -> None:  # pragma: no cover - compiled by Numba
    # x: (N, H, W * C); weights: (F / 16, KH, KW * C, 16); out: (N, OH, OW, F)
    _, height, row = x.shape
    _, oh, ow, _ = out.shape
    groups, kh, span = weights.shape[0], weights.shape[1], weights.shape[2]
    step = sw * channels  # from one output pixel's window to the next, in the scratch row
    blocks = -(-ow // 6)  # blocks of 6 pixels a row (the last one may reach past the row)
    wide = (blocks * 6 - 1) * step + span  # the floats of a padded row that the windows read
    tall = (oh - 1) * sh + (kh - 1) * dh + 1
    image = np.zeros((tall, wide), x.dtype)
    left = min(pl * channels, wide)
    inner = min(row, wide - left)
    for n in range(lo, hi):
        for r in range(max(0, pt), min(tall, pt + height)):  # the interior (the border stays zero)
            dst = image[r]
            src = x[n, r - pt]
            for q in range(inner):
                dst[left + q] = src[q]
        for oy in range(oh):
            top = oy * sh
            for g in range(groups):
                first = g * 16
                b = bias[first : first + 16]
                w = weights[g]
                for block in range(blocks):  # 6 pixels x 16 filters of running sums
                    ox = block * 6
                    s0_0 = b[0]
                    s0_1 = b[1]
                    s0_2 = b[2]
                    s0_3 = b[3]
                    s0_4 = b[4]
                    s0_5 = b[5]
                    s0_6 = b[6]
                    s0_7 = b[7]
                    s0_8 = b[8]
                    s0_9 = b[9]
                    s0_10 = b[10]
                    s0_11 = b[11]
                    s0_12 = b[12]
                    s0_13 = b[13]
                    s0_14 = b[14]
                    s0_15 = b[15]
                    s1_0 = b[0]
                    s1_1 = b[1]
                    s1_2 = b[2]
                    s1_3 = b[3]
                    s1_4 = b[4]
                    s1_5 = b[5]
                    s1_6 = b[6]
                    s1_7 = b[7]
                    s1_8 = b[8]
                    s1_9 = b[9]
                    s1_10 = b[10]
                    s1_11 = b[11]
                    s1_12 = b[12]
                    s1_13 = b[13]
                    s1_14 = b[14]
                    s1_15 = b[15]
                    s2_0 = b[0]
                    s2_1 = b[1]
                    s2_2 = b[2]
                    s2_3 = b[3]
                    s2_4 = b[4]
                    s2_5 = b[5]
                    s2_6 = b[6]
                    s2_7 = b[7]
                    s2_8 = b[8]
                    s2_9 = b[9]
                    s2_10 = b[10]
                    s2_11 = b[11]
                    s2_12 = b[12]
                    s2_13 = b[13]
                    s2_14 = b[14]
                    s2_15 = b[15]
                    s3_0 = b[0]
                    s3_1 = b[1]
                    s3_2 = b[2]
                    s3_3 = b[3]
                    s3_4 = b[4]
                    s3_5 = b[5]
                    s3_6 = b[6]
                    s3_7 = b[7]
                    s3_8 = b[8]
                    s3_9 = b[9]
                    s3_10 = b[10]
                    s3_11 = b[11]
                    s3_12 = b[12]
                    s3_13 = b[13]
                    s3_14 = b[14]
                    s3_15 = b[15]
                    s4_0 = b[0]
                    s4_1 = b[1]
                    s4_2 = b[2]
                    s4_3 = b[3]
                    s4_4 = b[4]
                    s4_5 = b[5]
                    s4_6 = b[6]
                    s4_7 = b[7]
                    s4_8 = b[8]
                    s4_9 = b[9]
                    s4_10 = b[10]
                    s4_11 = b[11]
                    s4_12 = b[12]
                    s4_13 = b[13]
                    s4_14 = b[14]
                    s4_15 = b[15]
                    s5_0 = b[0]
                    s5_1 = b[1]
                    s5_2 = b[2]
                    s5_3 = b[3]
                    s5_4 = b[4]
                    s5_5 = b[5]
                    s5_6 = b[6]
                    s5_7 = b[7]
                    s5_8 = b[8]
                    s5_9 = b[9]
                    s5_10 = b[10]
                    s5_11 = b[11]
                    s5_12 = b[12]
                    s5_13 = b[13]
                    s5_14 = b[14]
                    s5_15 = b[15]
                    base = ox * step
                    for i in range(kh):
                        image_row = image[top + i * dh]
                        w_row = w[i]
                        r0 = image_row[base + 0 * step :]
                        r1 = image_row[base + 1 * step :]
                        r2 = image_row[base + 2 * step :]
                        r3 = image_row[base + 3 * step :]
                        r4 = image_row[base + 4 * step :]
                        r5 = image_row[base + 5 * step :]
                        for t in range(span):
                            w_t = w_row[t]
                            v0 = r0[t]
                            v1 = r1[t]
                            v2 = r2[t]
                            v3 = r3[t]
                            v4 = r4[t]
                            v5 = r5[t]
                            w0 = w_t[0]
                            w1 = w_t[1]
                            w2 = w_t[2]
                            w3 = w_t[3]
                            w4 = w_t[4]
                            w5 = w_t[5]
                            w6 = w_t[6]
                            w7 = w_t[7]
                            w8 = w_t[8]
                            w9 = w_t[9]
                            w10 = w_t[10]
                            w11 = w_t[11]
                            w12 = w_t[12]
                            w13 = w_t[13]
                            w14 = w_t[14]
                            w15 = w_t[15]
                            s0_0 += v0 * w0
                            s0_1 += v0 * w1
                            s0_2 += v0 * w2
                            s0_3 += v0 * w3
                            s0_4 += v0 * w4
                            s0_5 += v0 * w5
                            s0_6 += v0 * w6
                            s0_7 += v0 * w7
                            s0_8 += v0 * w8
                            s0_9 += v0 * w9
                            s0_10 += v0 * w10
                            s0_11 += v0 * w11
                            s0_12 += v0 * w12
                            s0_13 += v0 * w13
                            s0_14 += v0 * w14
                            s0_15 += v0 * w15
                            s1_0 += v1 * w0
                            s1_1 += v1 * w1
                            s1_2 += v1 * w2
                            s1_3 += v1 * w3
                            s1_4 += v1 * w4
                            s1_5 += v1 * w5
                            s1_6 += v1 * w6
                            s1_7 += v1 * w7
                            s1_8 += v1 * w8
                            s1_9 += v1 * w9
                            s1_10 += v1 * w10
                            s1_11 += v1 * w11
                            s1_12 += v1 * w12
                            s1_13 += v1 * w13
                            s1_14 += v1 * w14
                            s1_15 += v1 * w15
                            s2_0 += v2 * w0
                            s2_1 += v2 * w1
                            s2_2 += v2 * w2
                            s2_3 += v2 * w3
                            s2_4 += v2 * w4
                            s2_5 += v2 * w5
                            s2_6 += v2 * w6
                            s2_7 += v2 * w7
                            s2_8 += v2 * w8
                            s2_9 += v2 * w9
                            s2_10 += v2 * w10
                            s2_11 += v2 * w11
                            s2_12 += v2 * w12
                            s2_13 += v2 * w13
                            s2_14 += v2 * w14
                            s2_15 += v2 * w15
                            s3_0 += v3 * w0
                            s3_1 += v3 * w1
                            s3_2 += v3 * w2
                            s3_3 += v3 * w3
                            s3_4 += v3 * w4
                            s3_5 += v3 * w5
                            s3_6 += v3 * w6
                            s3_7 += v3 * w7
                            s3_8 += v3 * w8
                            s3_9 += v3 * w9
                            s3_10 += v3 * w10
                            s3_11 += v3 * w11
                            s3_12 += v3 * w12
                            s3_13 += v3 * w13
                            s3_14 += v3 * w14
                            s3_15 += v3 * w15
                            s4_0 += v4 * w0
                            s4_1 += v4 * w1
                            s4_2 += v4 * w2
                            s4_3 += v4 * w3
                            s4_4 += v4 * w4
                            s4_5 += v4 * w5
                            s4_6 += v4 * w6
                            s4_7 += v4 * w7
                            s4_8 += v4 * w8
                            s4_9 += v4 * w9
                            s4_10 += v4 * w10
                            s4_11 += v4 * w11
                            s4_12 += v4 * w12
                            s4_13 += v4 * w13
                            s4_14 += v4 * w14
                            s4_15 += v4 * w15
                            s5_0 += v5 * w0
                            s5_1 += v5 * w1
                            s5_2 += v5 * w2
                            s5_3 += v5 * w3
                            s5_4 += v5 * w4
                            s5_5 += v5 * w5
                            s5_6 += v5 * w6
                            s5_7 += v5 * w7
                            s5_8 += v5 * w8
                            s5_9 += v5 * w9
                            s5_10 += v5 * w10
                            s5_11 += v5 * w11
                            s5_12 += v5 * w12
                            s5_13 += v5 * w13
                            s5_14 += v5 * w14
                            s5_15 += v5 * w15
                    d = out[n, oy, ox, first : first + 16]
                    d[0] = s0_0
                    d[1] = s0_1
                    d[2] = s0_2
                    d[3] = s0_3
                    d[4] = s0_4
                    d[5] = s0_5
                    d[6] = s0_6
                    d[7] = s0_7
                    d[8] = s0_8
                    d[9] = s0_9
                    d[10] = s0_10
                    d[11] = s0_11
                    d[12] = s0_12
                    d[13] = s0_13
                    d[14] = s0_14
                    d[15] = s0_15
                    if ox + 1 < ow:  # (not past the row)
                        d = out[n, oy, ox + 1, first : first + 16]
                        d[0] = s1_0
                        d[1] = s1_1
                        d[2] = s1_2
                        d[3] = s1_3
                        d[4] = s1_4
                        d[5] = s1_5
                        d[6] = s1_6
                        d[7] = s1_7
                        d[8] = s1_8
                        d[9] = s1_9
                        d[10] = s1_10
                        d[11] = s1_11
                        d[12] = s1_12
                        d[13] = s1_13
                        d[14] = s1_14
                        d[15] = s1_15
                    if ox + 2 < ow:  # (not past the row)
                        d = out[n, oy, ox + 2, first : first + 16]
                        d[0] = s2_0
                        d[1] = s2_1
                        d[2] = s2_2
                        d[3] = s2_3
                        d[4] = s2_4
                        d[5] = s2_5
                        d[6] = s2_6
                        d[7] = s2_7
                        d[8] = s2_8
                        d[9] = s2_9
                        d[10] = s2_10
                        d[11] = s2_11
                        d[12] = s2_12
                        d[13] = s2_13
                        d[14] = s2_14
                        d[15] = s2_15
                    if ox + 3 < ow:  # (not past the row)
                        d = out[n, oy, ox + 3, first : first + 16]
                        d[0] = s3_0
                        d[1] = s3_1
                        d[2] = s3_2
                        d[3] = s3_3
                        d[4] = s3_4
                        d[5] = s3_5
                        d[6] = s3_6
                        d[7] = s3_7
                        d[8] = s3_8
                        d[9] = s3_9
                        d[10] = s3_10
                        d[11] = s3_11
                        d[12] = s3_12
                        d[13] = s3_13
                        d[14] = s3_14
                        d[15] = s3_15
                    if ox + 4 < ow:  # (not past the row)
                        d = out[n, oy, ox + 4, first : first + 16]
                        d[0] = s4_0
                        d[1] = s4_1
                        d[2] = s4_2
                        d[3] = s4_3
                        d[4] = s4_4
                        d[5] = s4_5
                        d[6] = s4_6
                        d[7] = s4_7
                        d[8] = s4_8
                        d[9] = s4_9
                        d[10] = s4_10
                        d[11] = s4_11
                        d[12] = s4_12
                        d[13] = s4_13
                        d[14] = s4_14
                        d[15] = s4_15
                    if ox + 5 < ow:  # (not past the row)
                        d = out[n, oy, ox + 5, first : first + 16]
                        d[0] = s5_0
                        d[1] = s5_1
                        d[2] = s5_2
                        d[3] = s5_3
                        d[4] = s5_4
                        d[5] = s5_5
                        d[6] = s5_6
                        d[7] = s5_7
                        d[8] = s5_8
                        d[9] = s5_9
                        d[10] = s5_10
                        d[11] = s5_11
                        d[12] = s5_12
                        d[13] = s5_13
                        d[14] = s5_14
                        d[15] = s5_15
