"""Receptive fields measured with PyTorch autograd (the oracle): the input pixels one output unit depends on.

Every layer becomes its linear, all-positive twin (conv kernels of ones, max pooling replaced by average
pooling over the same windows, no activation), so no contribution cancels and the input gradient of one
output unit is non-zero exactly on its receptive field. Padding follows TensorFlow's 'same' rule
(``reference.tf_same_pads``), written out explicitly as PyTorch refuses 'same' with strides.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.support.reference import tf_same_pads


def receptive_mask(layers: list[dict[str, Any]], size: tuple[int, int], unit: tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) mask of the input pixels output ``unit`` of the last layer depends on.

    ``layers``: dicts with ``kind`` ('conv' or 'pool'), ``kernel`` (kh, kw), ``strides`` (sh, sw),
    ``padding`` ('same' or 'valid') and, for convs, ``dilation`` (dh, dw).
    """
    import torch
    import torch.nn.functional as functional

    x = torch.ones((1, 1, *size), dtype=torch.float64, requires_grad=True)
    y = x
    for layer in layers:
        kh, kw = layer["kernel"]
        sh, sw = layer["strides"]
        dh, dw = layer.get("dilation", (1, 1))
        if layer["padding"] == "same":
            top, bottom = tf_same_pads(y.shape[2], kh, sh, dh)
            left, right = tf_same_pads(y.shape[3], kw, sw, dw)
            y = functional.pad(y, (left, right, top, bottom))
        if layer["kind"] == "conv":
            y = functional.conv2d(
                y, torch.ones((1, 1, kh, kw), dtype=torch.float64), stride=(sh, sw), dilation=(dh, dw)
            )
        else:
            y = functional.avg_pool2d(y, (kh, kw), stride=(sh, sw))
    y[0, 0, unit[0], unit[1]].backward()
    assert x.grad is not None
    return np.asarray(x.grad[0, 0].numpy() != 0)


def box(mask: np.ndarray) -> dict[str, list[int]]:
    """The rows and columns ([first, last]) a mask covers."""
    rows, cols = np.nonzero(mask)
    return {"rows": [int(rows.min()), int(rows.max())], "cols": [int(cols.min()), int(cols.max())]}
