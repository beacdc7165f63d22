"""The register-blocked kernel of :mod:`convlens.ops.direct_filters_jit`, written by ``kernel_source()``.

Do not edit: regenerate with ``python -c "from convlens.ops.direct_filters_jit import kernel_source;
print(kernel_source(), end='')" > src/convlens/ops/_direct_filters_kernel.py`` (a test checks it is current).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _forward(
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
    # x: (N, H, W * C); weights: (F / 32, KH, KW * C, 32); out: (N, OH, OW, F)
    _, height, row = x.shape
    _, oh, ow, _ = out.shape
    groups, kh, span = weights.shape[0], weights.shape[1], weights.shape[2]
    step = sw * channels  # from one output pixel's window to the next, in the scratch row
    blocks = -(-ow // 3)  # blocks of 3 pixels a row (the last one may reach past the row)
    wide = (blocks * 3 - 1) * step + span  # the floats of a padded row that the windows read
    tall = (oh - 1) * sh + (kh - 1) * dh + 1
    image = np.zeros((tall, wide), x.dtype)
    left = min(pl * channels, wide)
    inner = min(row, wide - left)
    for n in range(lo, hi):
        for r in range(tall):  # the zero-bordered rows the windows read
            dst = image[r]
            source = r - pt
            if 0 <= source < height:
                src = x[n, source]
                for q in range(left):
                    dst[q] = 0
                for q in range(inner):
                    dst[left + q] = src[q]
                for q in range(left + inner, wide):
                    dst[q] = 0
            else:
                for q in range(wide):
                    dst[q] = 0
        for oy in range(oh):
            top = oy * sh
            for g in range(groups):
                first = g * 32
                b = bias[first : first + 32]
                w = weights[g]
                for block in range(blocks):  # 3 pixels x 32 filters of running sums
                    ox = block * 3
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
                    s0_16 = b[16]
                    s0_17 = b[17]
                    s0_18 = b[18]
                    s0_19 = b[19]
                    s0_20 = b[20]
                    s0_21 = b[21]
                    s0_22 = b[22]
                    s0_23 = b[23]
                    s0_24 = b[24]
                    s0_25 = b[25]
                    s0_26 = b[26]
                    s0_27 = b[27]
                    s0_28 = b[28]
                    s0_29 = b[29]
                    s0_30 = b[30]
                    s0_31 = b[31]
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
                    s1_16 = b[16]
                    s1_17 = b[17]
                    s1_18 = b[18]
                    s1_19 = b[19]
                    s1_20 = b[20]
                    s1_21 = b[21]
                    s1_22 = b[22]
                    s1_23 = b[23]
                    s1_24 = b[24]
                    s1_25 = b[25]
                    s1_26 = b[26]
                    s1_27 = b[27]
                    s1_28 = b[28]
                    s1_29 = b[29]
                    s1_30 = b[30]
                    s1_31 = b[31]
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
                    s2_16 = b[16]
                    s2_17 = b[17]
                    s2_18 = b[18]
                    s2_19 = b[19]
                    s2_20 = b[20]
                    s2_21 = b[21]
                    s2_22 = b[22]
                    s2_23 = b[23]
                    s2_24 = b[24]
                    s2_25 = b[25]
                    s2_26 = b[26]
                    s2_27 = b[27]
                    s2_28 = b[28]
                    s2_29 = b[29]
                    s2_30 = b[30]
                    s2_31 = b[31]
                    base = ox * step
                    for i in range(kh):
                        image_row = image[top + i * dh]
                        w_row = w[i]
                        for t in range(span):
                            w_t = w_row[t]
                            v0 = image_row[base + t]
                            v1 = image_row[base + 1 * step + t]
                            v2 = image_row[base + 2 * step + t]
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
                            w16 = w_t[16]
                            w17 = w_t[17]
                            w18 = w_t[18]
                            w19 = w_t[19]
                            w20 = w_t[20]
                            w21 = w_t[21]
                            w22 = w_t[22]
                            w23 = w_t[23]
                            w24 = w_t[24]
                            w25 = w_t[25]
                            w26 = w_t[26]
                            w27 = w_t[27]
                            w28 = w_t[28]
                            w29 = w_t[29]
                            w30 = w_t[30]
                            w31 = w_t[31]
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
                            s0_16 += v0 * w16
                            s0_17 += v0 * w17
                            s0_18 += v0 * w18
                            s0_19 += v0 * w19
                            s0_20 += v0 * w20
                            s0_21 += v0 * w21
                            s0_22 += v0 * w22
                            s0_23 += v0 * w23
                            s0_24 += v0 * w24
                            s0_25 += v0 * w25
                            s0_26 += v0 * w26
                            s0_27 += v0 * w27
                            s0_28 += v0 * w28
                            s0_29 += v0 * w29
                            s0_30 += v0 * w30
                            s0_31 += v0 * w31
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
                            s1_16 += v1 * w16
                            s1_17 += v1 * w17
                            s1_18 += v1 * w18
                            s1_19 += v1 * w19
                            s1_20 += v1 * w20
                            s1_21 += v1 * w21
                            s1_22 += v1 * w22
                            s1_23 += v1 * w23
                            s1_24 += v1 * w24
                            s1_25 += v1 * w25
                            s1_26 += v1 * w26
                            s1_27 += v1 * w27
                            s1_28 += v1 * w28
                            s1_29 += v1 * w29
                            s1_30 += v1 * w30
                            s1_31 += v1 * w31
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
                            s2_16 += v2 * w16
                            s2_17 += v2 * w17
                            s2_18 += v2 * w18
                            s2_19 += v2 * w19
                            s2_20 += v2 * w20
                            s2_21 += v2 * w21
                            s2_22 += v2 * w22
                            s2_23 += v2 * w23
                            s2_24 += v2 * w24
                            s2_25 += v2 * w25
                            s2_26 += v2 * w26
                            s2_27 += v2 * w27
                            s2_28 += v2 * w28
                            s2_29 += v2 * w29
                            s2_30 += v2 * w30
                            s2_31 += v2 * w31
                    d = out[n, oy, ox, first : first + 32]
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
                    d[16] = s0_16
                    d[17] = s0_17
                    d[18] = s0_18
                    d[19] = s0_19
                    d[20] = s0_20
                    d[21] = s0_21
                    d[22] = s0_22
                    d[23] = s0_23
                    d[24] = s0_24
                    d[25] = s0_25
                    d[26] = s0_26
                    d[27] = s0_27
                    d[28] = s0_28
                    d[29] = s0_29
                    d[30] = s0_30
                    d[31] = s0_31
                    if ox + 1 < ow:  # (not past the row)
                        d = out[n, oy, ox + 1, first : first + 32]
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
                        d[16] = s1_16
                        d[17] = s1_17
                        d[18] = s1_18
                        d[19] = s1_19
                        d[20] = s1_20
                        d[21] = s1_21
                        d[22] = s1_22
                        d[23] = s1_23
                        d[24] = s1_24
                        d[25] = s1_25
                        d[26] = s1_26
                        d[27] = s1_27
                        d[28] = s1_28
                        d[29] = s1_29
                        d[30] = s1_30
                        d[31] = s1_31
                    if ox + 2 < ow:  # (not past the row)
                        d = out[n, oy, ox + 2, first : first + 32]
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
                        d[16] = s2_16
                        d[17] = s2_17
                        d[18] = s2_18
                        d[19] = s2_19
                        d[20] = s2_20
                        d[21] = s2_21
                        d[22] = s2_22
                        d[23] = s2_23
                        d[24] = s2_24
                        d[25] = s2_25
                        d[26] = s2_26
                        d[27] = s2_27
                        d[28] = s2_28
                        d[29] = s2_29
                        d[30] = s2_30
                        d[31] = s2_31
