"""A register-blocked kernel of :mod:`convlens.ops.direct_filters_jit`, written by ``write_kernels()``.

Do not edit: regenerate every kernel with ``python -c "from convlens.ops.direct_filters_jit import write_kernels;
write_kernels()"`` (a test checks the files are current).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _kernel_grad_32(
    x: Any,
    grad: Any,
    parts: Any,
    bias_parts: Any,
    bounds: Any,
    t0: int,
    t1: int,
    channels: int,
    sh: int,
    sw: int,
    dh: int,
    pt: int,
    pl: int,
) -> None:  # pragma: no cover - compiled by Numba
    # x: (N, H, W * C); grad: (N, OH, OW, F); bias_parts: (chunks, F); parts: (chunks, F / 32, KH,
    # KW * C rounded up to a multiple of 3, 32)
    _, height, row = x.shape
    _, oh, ow, _ = grad.shape
    groups, kh, span = parts.shape[1], parts.shape[2], parts.shape[3]
    step = sw * channels
    wide = (ow - 1) * step + span
    tall = (oh - 1) * sh + (kh - 1) * dh + 1
    image = np.zeros((tall, wide), x.dtype)
    left = min(pl * channels, wide)
    inner = min(row, wide - left)
    ustep = np.uint64(step)
    u1 = np.uint64(1)
    u2 = np.uint64(2)
    for c in range(t0, t1):
        part = parts[c]
        part[:] = 0
        bias_sum = bias_parts[c]
        bias_sum[:] = 0
        for n in range(bounds[c], bounds[c + 1]):
            for r in range(max(0, pt), min(tall, pt + height)):  # the interior (the border stays zero)
                dst = image[r]
                src = x[n, r - pt]
                for q in range(inner):
                    dst[left + q] = src[q]
            grad_n = grad[n]
            for oy in range(oh):
                for ox in range(ow):
                    pixel = grad_n[oy, ox]
                    for f in range(pixel.shape[0]):
                        bias_sum[f] += pixel[f]
            for g in range(groups):
                first = g * 32
                part_g = part[g]
                for i in range(kh):
                    sums = part_g[i]
                    for run in range(span // 3):  # 3 taps x 32 filters of running sums
                        t = run * 3
                        row0 = sums[t + 0]
                        row1 = sums[t + 1]
                        row2 = sums[t + 2]
                        s0_0 = row0[0]
                        s0_1 = row0[1]
                        s0_2 = row0[2]
                        s0_3 = row0[3]
                        s0_4 = row0[4]
                        s0_5 = row0[5]
                        s0_6 = row0[6]
                        s0_7 = row0[7]
                        s0_8 = row0[8]
                        s0_9 = row0[9]
                        s0_10 = row0[10]
                        s0_11 = row0[11]
                        s0_12 = row0[12]
                        s0_13 = row0[13]
                        s0_14 = row0[14]
                        s0_15 = row0[15]
                        s0_16 = row0[16]
                        s0_17 = row0[17]
                        s0_18 = row0[18]
                        s0_19 = row0[19]
                        s0_20 = row0[20]
                        s0_21 = row0[21]
                        s0_22 = row0[22]
                        s0_23 = row0[23]
                        s0_24 = row0[24]
                        s0_25 = row0[25]
                        s0_26 = row0[26]
                        s0_27 = row0[27]
                        s0_28 = row0[28]
                        s0_29 = row0[29]
                        s0_30 = row0[30]
                        s0_31 = row0[31]
                        s1_0 = row1[0]
                        s1_1 = row1[1]
                        s1_2 = row1[2]
                        s1_3 = row1[3]
                        s1_4 = row1[4]
                        s1_5 = row1[5]
                        s1_6 = row1[6]
                        s1_7 = row1[7]
                        s1_8 = row1[8]
                        s1_9 = row1[9]
                        s1_10 = row1[10]
                        s1_11 = row1[11]
                        s1_12 = row1[12]
                        s1_13 = row1[13]
                        s1_14 = row1[14]
                        s1_15 = row1[15]
                        s1_16 = row1[16]
                        s1_17 = row1[17]
                        s1_18 = row1[18]
                        s1_19 = row1[19]
                        s1_20 = row1[20]
                        s1_21 = row1[21]
                        s1_22 = row1[22]
                        s1_23 = row1[23]
                        s1_24 = row1[24]
                        s1_25 = row1[25]
                        s1_26 = row1[26]
                        s1_27 = row1[27]
                        s1_28 = row1[28]
                        s1_29 = row1[29]
                        s1_30 = row1[30]
                        s1_31 = row1[31]
                        s2_0 = row2[0]
                        s2_1 = row2[1]
                        s2_2 = row2[2]
                        s2_3 = row2[3]
                        s2_4 = row2[4]
                        s2_5 = row2[5]
                        s2_6 = row2[6]
                        s2_7 = row2[7]
                        s2_8 = row2[8]
                        s2_9 = row2[9]
                        s2_10 = row2[10]
                        s2_11 = row2[11]
                        s2_12 = row2[12]
                        s2_13 = row2[13]
                        s2_14 = row2[14]
                        s2_15 = row2[15]
                        s2_16 = row2[16]
                        s2_17 = row2[17]
                        s2_18 = row2[18]
                        s2_19 = row2[19]
                        s2_20 = row2[20]
                        s2_21 = row2[21]
                        s2_22 = row2[22]
                        s2_23 = row2[23]
                        s2_24 = row2[24]
                        s2_25 = row2[25]
                        s2_26 = row2[26]
                        s2_27 = row2[27]
                        s2_28 = row2[28]
                        s2_29 = row2[29]
                        s2_30 = row2[30]
                        s2_31 = row2[31]
                        for oy in range(oh):
                            image_row = image[oy * sh + i * dh]
                            grad_row = grad_n[oy]
                            q = np.uint64(t)  # the pixel's first tap in the scratch row
                            for ox in range(ow):
                                w = grad_row[ox, first : first + 32]
                                v0 = image_row[q]
                                v1 = image_row[q + u1]
                                v2 = image_row[q + u2]
                                w0 = w[0]
                                w1 = w[1]
                                w2 = w[2]
                                w3 = w[3]
                                w4 = w[4]
                                w5 = w[5]
                                w6 = w[6]
                                w7 = w[7]
                                w8 = w[8]
                                w9 = w[9]
                                w10 = w[10]
                                w11 = w[11]
                                w12 = w[12]
                                w13 = w[13]
                                w14 = w[14]
                                w15 = w[15]
                                w16 = w[16]
                                w17 = w[17]
                                w18 = w[18]
                                w19 = w[19]
                                w20 = w[20]
                                w21 = w[21]
                                w22 = w[22]
                                w23 = w[23]
                                w24 = w[24]
                                w25 = w[25]
                                w26 = w[26]
                                w27 = w[27]
                                w28 = w[28]
                                w29 = w[29]
                                w30 = w[30]
                                w31 = w[31]
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
                                q += ustep
                        row0[0] = s0_0
                        row0[1] = s0_1
                        row0[2] = s0_2
                        row0[3] = s0_3
                        row0[4] = s0_4
                        row0[5] = s0_5
                        row0[6] = s0_6
                        row0[7] = s0_7
                        row0[8] = s0_8
                        row0[9] = s0_9
                        row0[10] = s0_10
                        row0[11] = s0_11
                        row0[12] = s0_12
                        row0[13] = s0_13
                        row0[14] = s0_14
                        row0[15] = s0_15
                        row0[16] = s0_16
                        row0[17] = s0_17
                        row0[18] = s0_18
                        row0[19] = s0_19
                        row0[20] = s0_20
                        row0[21] = s0_21
                        row0[22] = s0_22
                        row0[23] = s0_23
                        row0[24] = s0_24
                        row0[25] = s0_25
                        row0[26] = s0_26
                        row0[27] = s0_27
                        row0[28] = s0_28
                        row0[29] = s0_29
                        row0[30] = s0_30
                        row0[31] = s0_31
                        row1[0] = s1_0
                        row1[1] = s1_1
                        row1[2] = s1_2
                        row1[3] = s1_3
                        row1[4] = s1_4
                        row1[5] = s1_5
                        row1[6] = s1_6
                        row1[7] = s1_7
                        row1[8] = s1_8
                        row1[9] = s1_9
                        row1[10] = s1_10
                        row1[11] = s1_11
                        row1[12] = s1_12
                        row1[13] = s1_13
                        row1[14] = s1_14
                        row1[15] = s1_15
                        row1[16] = s1_16
                        row1[17] = s1_17
                        row1[18] = s1_18
                        row1[19] = s1_19
                        row1[20] = s1_20
                        row1[21] = s1_21
                        row1[22] = s1_22
                        row1[23] = s1_23
                        row1[24] = s1_24
                        row1[25] = s1_25
                        row1[26] = s1_26
                        row1[27] = s1_27
                        row1[28] = s1_28
                        row1[29] = s1_29
                        row1[30] = s1_30
                        row1[31] = s1_31
                        row2[0] = s2_0
                        row2[1] = s2_1
                        row2[2] = s2_2
                        row2[3] = s2_3
                        row2[4] = s2_4
                        row2[5] = s2_5
                        row2[6] = s2_6
                        row2[7] = s2_7
                        row2[8] = s2_8
                        row2[9] = s2_9
                        row2[10] = s2_10
                        row2[11] = s2_11
                        row2[12] = s2_12
                        row2[13] = s2_13
                        row2[14] = s2_14
                        row2[15] = s2_15
                        row2[16] = s2_16
                        row2[17] = s2_17
                        row2[18] = s2_18
                        row2[19] = s2_19
                        row2[20] = s2_20
                        row2[21] = s2_21
                        row2[22] = s2_22
                        row2[23] = s2_23
                        row2[24] = s2_24
                        row2[25] = s2_25
                        row2[26] = s2_26
                        row2[27] = s2_27
                        row2[28] = s2_28
                        row2[29] = s2_29
                        row2[30] = s2_30
                        row2[31] = s2_31
