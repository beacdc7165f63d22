"""A register-blocked kernel of :mod:`convlens.ops.direct_filters_jit`, written by ``write_kernels()``.

Do not edit: regenerate every kernel with ``python -c "from convlens.ops.direct_filters_jit import write_kernels;
write_kernels()"`` (a test checks the files are current).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _kernel_grad_16(
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
    # x: (N, H, W * C); grad: (N, OH, OW, F); bias_parts: (chunks, F); parts: (chunks, F / 16, KH,
    # KW * C rounded up to a multiple of 6, 16)
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
    u3 = np.uint64(3)
    u4 = np.uint64(4)
    u5 = np.uint64(5)
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
                first = g * 16
                part_g = part[g]
                for i in range(kh):
                    sums = part_g[i]
                    for run in range(span // 6):  # 6 taps x 16 filters of running sums
                        t = run * 6
                        row0 = sums[t + 0]
                        row1 = sums[t + 1]
                        row2 = sums[t + 2]
                        row3 = sums[t + 3]
                        row4 = sums[t + 4]
                        row5 = sums[t + 5]
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
                        s3_0 = row3[0]
                        s3_1 = row3[1]
                        s3_2 = row3[2]
                        s3_3 = row3[3]
                        s3_4 = row3[4]
                        s3_5 = row3[5]
                        s3_6 = row3[6]
                        s3_7 = row3[7]
                        s3_8 = row3[8]
                        s3_9 = row3[9]
                        s3_10 = row3[10]
                        s3_11 = row3[11]
                        s3_12 = row3[12]
                        s3_13 = row3[13]
                        s3_14 = row3[14]
                        s3_15 = row3[15]
                        s4_0 = row4[0]
                        s4_1 = row4[1]
                        s4_2 = row4[2]
                        s4_3 = row4[3]
                        s4_4 = row4[4]
                        s4_5 = row4[5]
                        s4_6 = row4[6]
                        s4_7 = row4[7]
                        s4_8 = row4[8]
                        s4_9 = row4[9]
                        s4_10 = row4[10]
                        s4_11 = row4[11]
                        s4_12 = row4[12]
                        s4_13 = row4[13]
                        s4_14 = row4[14]
                        s4_15 = row4[15]
                        s5_0 = row5[0]
                        s5_1 = row5[1]
                        s5_2 = row5[2]
                        s5_3 = row5[3]
                        s5_4 = row5[4]
                        s5_5 = row5[5]
                        s5_6 = row5[6]
                        s5_7 = row5[7]
                        s5_8 = row5[8]
                        s5_9 = row5[9]
                        s5_10 = row5[10]
                        s5_11 = row5[11]
                        s5_12 = row5[12]
                        s5_13 = row5[13]
                        s5_14 = row5[14]
                        s5_15 = row5[15]
                        for oy in range(oh):
                            image_row = image[oy * sh + i * dh]
                            grad_row = grad_n[oy]
                            q = np.uint64(t)  # the pixel's first tap in the scratch row
                            for ox in range(ow):
                                w = grad_row[ox, first : first + 16]
                                v0 = image_row[q]
                                v1 = image_row[q + u1]
                                v2 = image_row[q + u2]
                                v3 = image_row[q + u3]
                                v4 = image_row[q + u4]
                                v5 = image_row[q + u5]
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
                        row3[0] = s3_0
                        row3[1] = s3_1
                        row3[2] = s3_2
                        row3[3] = s3_3
                        row3[4] = s3_4
                        row3[5] = s3_5
                        row3[6] = s3_6
                        row3[7] = s3_7
                        row3[8] = s3_8
                        row3[9] = s3_9
                        row3[10] = s3_10
                        row3[11] = s3_11
                        row3[12] = s3_12
                        row3[13] = s3_13
                        row3[14] = s3_14
                        row3[15] = s3_15
                        row4[0] = s4_0
                        row4[1] = s4_1
                        row4[2] = s4_2
                        row4[3] = s4_3
                        row4[4] = s4_4
                        row4[5] = s4_5
                        row4[6] = s4_6
                        row4[7] = s4_7
                        row4[8] = s4_8
                        row4[9] = s4_9
                        row4[10] = s4_10
                        row4[11] = s4_11
                        row4[12] = s4_12
                        row4[13] = s4_13
                        row4[14] = s4_14
                        row4[15] = s4_15
                        row5[0] = s5_0
                        row5[1] = s5_1
                        row5[2] = s5_2
                        row5[3] = s5_3
                        row5[4] = s5_4
                        row5[5] = s5_5
                        row5[6] = s5_6
                        row5[7] = s5_7
                        row5[8] = s5_8
                        row5[9] = s5_9
                        row5[10] = s5_10
                        row5[11] = s5_11
                        row5[12] = s5_12
                        row5[13] = s5_13
                        row5[14] = s5_14
                        row5[15] = s5_15
