"""Convolution problems for the op tests: one case type, a hypothesis strategy per algorithm, the torch oracle.

Conversions to torch layouts (NHWC -> NCHW, (KH, KW, C/G, F) -> (F, C/G, KH, KW)) live only here and in the
tests that call torch directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from tests.support.reference import conv2d_backward_reference, conv2d_reference, explicit_pads


def close(actual: np.ndarray | None, expected: np.ndarray, rtol: float = 1e-10) -> None:
    """Compare with a tolerance relative to the largest expected magnitude."""
    assert actual is not None
    assert actual.shape == expected.shape
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


@dataclass(frozen=True)
class Case:
    """One 2-D convolution problem (channels-last shapes) with its explicit pads."""

    x_shape: tuple[int, int, int, int]
    kernel_shape: tuple[int, int, int, int]
    strides: tuple[int, int]
    padding: Any
    dilation: tuple[int, int]
    groups: int
    pads: tuple[tuple[int, int], tuple[int, int]]

    def kwargs(self) -> dict[str, Any]:
        return {"strides": self.strides, "padding": self.padding, "dilation_rate": self.dilation, "groups": self.groups}

    def arrays(self, seed: int = 0, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        gen = np.random.default_rng(seed)
        x = gen.standard_normal(self.x_shape).astype(dtype)
        kernel = gen.standard_normal(self.kernel_shape).astype(dtype)
        bias = gen.standard_normal(self.kernel_shape[3]).astype(dtype)
        return x, kernel, bias

    def reference(self, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        return conv2d_reference(x, kernel, bias, self.strides, self.pads, self.dilation, self.groups)

    def reference_backward(
        self, grad_out: np.ndarray, x: np.ndarray, kernel: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return conv2d_backward_reference(grad_out, x, kernel, self.strides, self.pads, self.dilation, self.groups)

    def __str__(self) -> str:
        return f"{self.x_shape}-{self.kernel_shape}-s{self.strides}-{self.padding}-d{self.dilation}-g{self.groups}"


def make_case(
    x_shape: tuple[int, int, int, int],
    kernel_shape: tuple[int, int, int, int],
    strides: Any = 1,
    padding: Any = "valid",
    dilation: Any = 1,
    groups: int = 1,
) -> Case:
    strides = (strides, strides) if isinstance(strides, int) else tuple(strides)
    dilation = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    pads = explicit_pads(padding, x_shape[1:3], kernel_shape[:2], strides, dilation)
    return Case(x_shape, kernel_shape, strides, padding, dilation, groups, pads)  # type: ignore[arg-type]


def _padding(draw: st.DrawFn, small: bool = False) -> Any:
    top = 1 if small else 2
    form = draw(st.sampled_from(["valid", "same", "int", "axis", "pairs"]))
    return {
        "valid": "valid",
        "same": "same",
        "int": draw(st.integers(0, top)),
        "axis": (draw(st.integers(0, top)), draw(st.integers(0, top))),
        "pairs": tuple((draw(st.integers(0, top)), draw(st.integers(0, top))) for _ in range(2)),
    }[form]


def _spatial(draw: st.DrawFn, kernel: Any, strides: Any, dilation: Any, padding: Any, extra: int = 4) -> list[int]:
    """Smallest size per axis that still gives a non-empty output under ``padding``, plus up to ``extra``."""
    spatial = []
    for axis in range(2):
        extent = (kernel[axis] - 1) * dilation[axis] + 1
        pad_guess = explicit_pads(padding, (extent,) * 2, kernel, strides, dilation)[axis]
        low = 1 if padding == "same" else max(1, extent - sum(pad_guess))
        spatial.append(draw(st.integers(low, low + extra)))
    return spatial


@st.composite
def cases(draw: st.DrawFn, *, wide: bool = False, shape: str = "any") -> Case:
    """Convolution problems; ``shape`` steers them to an algorithm's domain.

    ``'any'``: every kind (groups, depthwise, strides, dilation, paddings); ``'one_group'``: groups=1;
    ``'depthwise'``: one input channel per group; ``'winograd'``: 3x3, stride 1, no dilation, one group;
    ``'stride1'``: stride 1, one group, pads that fit a full convolution; ``'pointwise'``: 1x1, stride 1,
    unpadded, one group; ``'filter_blocks'``: one group, 16, 32, 48 or 64 filters, dilation 1 along the width (the
    register blocks of ``direct_filters``); ``'pointwise_blocks'``: ``'pointwise'`` with those filter counts.
    ``wide`` draws channel counts of 16 and more too (Winograd's and the transposed gradient's own range).
    """
    one_group = shape in ("one_group", "winograd", "stride1", "pointwise", "filter_blocks", "pointwise_blocks")
    depthwise = shape == "depthwise" or (shape == "any" and draw(st.booleans()))
    groups = 1 if one_group else draw(st.integers(1, 3))
    if depthwise:
        groups = draw(st.integers(1, 3))
    widths = [1, 2, 3, 16, 17] if wide else [1, 2, 3]
    cg = 1 if depthwise else draw(st.sampled_from(widths))
    fg = draw(st.sampled_from([1, 2, 16, 18] if wide else [1, 2]))
    if shape in ("filter_blocks", "pointwise_blocks"):
        cg, fg = draw(st.sampled_from([1, 2, 3, 5, 8])), draw(st.sampled_from([16, 32, 48, 64]))
    if shape == "winograd":
        kernel, strides, dilation = (3, 3), (1, 1), (1, 1)
    elif shape.startswith("pointwise"):
        kernel, strides, dilation = (1, 1), (1, 1), (draw(st.integers(1, 2)), 1)
    else:
        kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        strides = (1, 1) if shape == "stride1" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        dilation = (draw(st.integers(1, 2)), 1 if shape == "filter_blocks" else draw(st.integers(1, 2)))
    pointwise = shape in ("pointwise", "pointwise_blocks")
    padding = draw(st.sampled_from(["valid", "same", 0])) if pointwise else _padding(draw, shape == "stride1")
    if shape == "stride1" and not isinstance(padding, str):
        # a full convolution needs pads <= the dilated extent - 1 on every side
        extents = [(k - 1) * d for k, d in zip(kernel, dilation, strict=True)]
        pads = explicit_pads(padding, (9, 9), kernel, strides, dilation)
        padding = tuple((min(b, e), min(a, e)) for (b, a), e in zip(pads, extents, strict=True))
    spatial = _spatial(draw, kernel, strides, dilation, padding, extra=3 if wide else 4)
    x_shape = (draw(st.integers(1, 2)), spatial[0], spatial[1], groups * cg)
    return make_case(x_shape, (*kernel, cg, groups * fg), strides, padding, dilation, groups)


def torch_conv2d(
    torch: Any, case: Case, x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, grad_out: np.ndarray
) -> tuple[np.ndarray, ...]:
    """(out, grad_x, grad_kernel, grad_bias) by torch, in Keras layouts."""
    functional = torch.nn.functional
    xt = torch.tensor(np.ascontiguousarray(np.moveaxis(x, -1, 1)), requires_grad=True)
    kt = torch.tensor(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)), requires_grad=True)  # (F, C/G, KH, KW)
    bt = torch.tensor(bias, requires_grad=True)
    (pt, pb), (pl, pr) = case.pads
    # torch refuses 'same' with stride > 1 and pads symmetrically: give it explicit asymmetric pads.
    out = functional.conv2d(
        functional.pad(xt, (pl, pr, pt, pb)), kt, bt, stride=case.strides, dilation=case.dilation, groups=case.groups
    )
    out.backward(torch.tensor(np.ascontiguousarray(np.moveaxis(grad_out, -1, 1))))
    return (
        out.detach().numpy().transpose(0, 2, 3, 1),
        xt.grad.numpy().transpose(0, 2, 3, 1),
        kt.grad.numpy().transpose(2, 3, 1, 0),
        bt.grad.numpy(),
    )
