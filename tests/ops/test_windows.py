"""The window primitive: pad/crop, tap_slices, window_view, im2col/col2im (adjoint), Workspace."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convlens.geometry import WindowGeometry
from convlens.ops.windows import Workspace, col2im, crop, im2col, pad, tap_slices, window_view
from tests.conftest import require


@st.composite
def problems(draw: st.DrawFn) -> tuple[WindowGeometry, tuple[int, int, int, int]]:
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    strides = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding: Any = draw(
        st.one_of(
            st.sampled_from(["same", "valid"]),
            st.tuples(*(st.tuples(st.integers(0, 2), st.integers(0, 2)),) * 2),
        )
    )
    size = tuple(draw(st.integers((k - 1) * d + 1, (k - 1) * d + 5)) for k, d in zip(kernel, dilation, strict=True))
    channels = draw(st.sampled_from([1, 3, 8, 9]))  # both copy strategies (< 8 and >= 8)
    geometry = WindowGeometry.resolve(size, kernel, strides, padding, dilation)
    return geometry, (draw(st.integers(1, 2)), size[0], size[1], channels)


def windows_by_taps(x: np.ndarray, geometry: WindowGeometry) -> np.ndarray:
    """Loop reference for im2col: read every tap's input coordinate, zero outside the input."""
    batch, height, width, channels = x.shape
    oh, ow = geometry.output_size
    kh, kw = geometry.kernel_size
    out = np.zeros((batch, oh, ow, kh, kw, channels))
    for r in range(oh):
        for c in range(ow):
            for t, (row, col) in enumerate(geometry.taps((r, c))):
                if 0 <= row < height and 0 <= col < width:
                    out[:, r, c, t // kw, t % kw, :] = x[:, row, col, :]
    return out


@given(problem=problems())
def test_im2col_matches_taps_and_window_view(problem: tuple[WindowGeometry, tuple[int, ...]]) -> None:
    geometry, shape = problem
    x = np.random.default_rng(0).standard_normal(shape)
    cols = im2col(x, geometry)
    np.testing.assert_array_equal(cols, windows_by_taps(x, geometry))
    np.testing.assert_array_equal(window_view(pad(x, geometry), geometry), cols)
    assert cols.flags.c_contiguous


@given(problem=problems())
def test_im2col_col2im_are_adjoint(problem: tuple[WindowGeometry, tuple[int, ...]]) -> None:
    geometry, shape = problem
    gen = np.random.default_rng(1)
    x = gen.standard_normal(shape)
    oh, ow = geometry.output_size
    kh, kw = geometry.kernel_size
    y = gen.standard_normal((shape[0], oh, ow, kh, kw, shape[3]))
    back = col2im(y, geometry)
    assert back.shape == x.shape
    lhs = float(np.vdot(im2col(x, geometry), y))
    rhs = float(np.vdot(x, back))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


def test_pad_fills_borders_and_crop_inverts() -> None:
    x = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2) + 1
    geometry = WindowGeometry.resolve((3, 4), 2, 1, ((1, 2), (0, 3)))
    padded = pad(x, geometry, value=-7.0)
    assert padded.shape == (2, 6, 7, 2)
    assert padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:, 1:4, 0:4], x)
    mask = np.ones(padded.shape, bool)
    mask[:, 1:4, 0:4] = False
    assert np.all(padded[mask] == -7.0)
    np.testing.assert_array_equal(crop(padded, geometry), x)


def test_pad_returns_input_when_unpadded() -> None:
    x = np.ones((1, 4, 4, 1))
    assert pad(x, WindowGeometry.resolve((4, 4), 3, 1, "valid")) is x


def test_tap_slices() -> None:
    geometry = WindowGeometry.resolve((9, 9), (2, 3), (3, 2), "valid", (2, 1))
    assert geometry.output_size == ((9 - 3) // 3 + 1, (9 - 3) // 2 + 1)
    rows, cols = tap_slices(geometry, 1, 2)
    assert list(range(9))[rows] == [2, 5, 8]
    assert list(range(9))[cols] == [2, 4, 6, 8]


def test_col2im_counts_overlaps() -> None:
    # Adding ones through every window counts how many windows read each pixel.
    geometry = WindowGeometry.resolve((4, 4), 3, 1, "valid")
    counts = col2im(np.ones((1, 2, 2, 3, 3, 1)), geometry)[0, :, :, 0]
    expected = np.outer([1, 2, 2, 1], [1, 2, 2, 1])
    np.testing.assert_array_equal(counts, expected)


def test_float32_stays_float32() -> None:
    geometry = WindowGeometry.resolve((5, 5), 3, 2, "same")
    x = np.ones((1, 5, 5, 3), np.float32)
    cols = im2col(x, geometry)
    assert cols.dtype == np.float32
    assert col2im(cols, geometry).dtype == np.float32


# ----------------------------------------------------------------------------- Workspace
def test_workspace_reuses_matching_buffers() -> None:
    ws = Workspace()
    a = ws.get("a", (2, 3), np.float32)
    assert ws.get("a", (2, 3), np.float32) is a
    assert ws.get("a", (2, 3), "float32") is a
    b = ws.get("a", (3, 2), np.float32)
    assert b is not a
    assert b.shape == (3, 2)
    c = ws.get("a", (3, 2), np.float64)
    assert c.dtype == np.float64
    assert c is not b
    assert ws.get("other", (3, 2), np.float64) is not c
    c[...] = 5.0
    zeroed = ws.get("a", (3, 2), np.float64, zero=True)
    assert zeroed is c
    assert not zeroed.any()
    ws.clear()
    assert ws.get("a", (3, 2), np.float64) is not c


@pytest.mark.parametrize("channels", [2, 8])
def test_workspace_im2col_col2im_reuse(channels: int) -> None:
    geometry = WindowGeometry.resolve((6, 5), 3, 2, "same")
    ws = Workspace()
    gen = np.random.default_rng(2)
    x1, x2 = gen.standard_normal((2, 6, 5, channels)), gen.standard_normal((2, 6, 5, channels))
    cols1 = im2col(x1, geometry, workspace=ws)
    expected1 = im2col(x1, geometry)
    np.testing.assert_array_equal(cols1, expected1)
    cols2 = im2col(x2, geometry, workspace=ws)
    assert cols2 is cols1  # the buffer is reused, so callers must consume cols before the next call
    np.testing.assert_array_equal(cols2, im2col(x2, geometry))
    # col2im with a workspace returns a fresh array: a second call must not overwrite the first result.
    back1 = col2im(expected1, geometry, workspace=ws)
    kept = back1.copy()
    back2 = col2im(np.ones_like(expected1), geometry, workspace=ws)
    np.testing.assert_array_equal(back1, kept)
    np.testing.assert_array_equal(back1, col2im(expected1, geometry))
    np.testing.assert_array_equal(back2, col2im(np.ones_like(expected1), geometry))


@given(problem=problems())
def test_im2col_into_a_wider_matrix(problem: tuple[WindowGeometry, tuple[int, ...]]) -> None:
    # Conv2DPlan writes the windows into the leading columns of a matrix with a trailing ones column.
    geometry, shape = problem
    x = np.random.default_rng(0).standard_normal(shape)
    expected = im2col(x, geometry)
    batch, oh, ow, kh, kw, c = expected.shape
    depth = kh * kw * c
    wide = np.full((batch * oh * ow, depth + 1), 7.0)
    view = wide[:, :depth].reshape(expected.shape)
    assert np.may_share_memory(view, wide)
    im2col(x, geometry, out=view)
    np.testing.assert_array_equal(wide[:, :depth], expected.reshape(-1, depth))
    np.testing.assert_array_equal(wide[:, depth], 7.0)  # the extra column is untouched


def test_workspace_init_runs_only_on_allocation() -> None:
    ws = Workspace()
    calls: list[tuple[int, ...]] = []

    def init(buf: np.ndarray) -> None:
        calls.append(buf.shape)
        buf.fill(1.0)

    first = ws.get("b", (2, 3), np.float32, init=init)
    first[0, 0] = 5.0
    again = ws.get("b", (2, 3), np.float32, init=init)
    assert again is first
    assert again[0, 0] == 5.0
    assert calls == [(2, 3)]
    ws.get("b", (4, 3), np.float32, init=init)  # new shape: a new buffer, initialised again
    assert calls == [(2, 3), (4, 3)]


@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.float64_kernels)])
@given(problem=problems())
def test_compiled_im2col_col2im_equal_numpy_bit_for_bit(
    problem: tuple[WindowGeometry, tuple[int, ...]], dtype: Any
) -> None:
    from convlens.ops import windows_jit

    require("numba")
    geometry, shape = problem
    gen = np.random.default_rng(1)
    x = gen.standard_normal(shape).astype(dtype)
    cols = np.empty((shape[0], *geometry.output_size, *geometry.kernel_size, shape[3]), dtype)
    grad_cols = gen.standard_normal(cols.shape).astype(dtype)
    grad = np.empty(shape, dtype)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVLENS_JIT", "1")
        assert windows_jit.im2col_jit(x, cols, geometry) == (shape[3] >= 2)  # one channel stays on NumPy
        assert windows_jit.col2im_jit(grad_cols, grad, geometry)
        mp.setenv("CONVLENS_JIT", "0")
        if shape[3] >= 2:
            np.testing.assert_array_equal(cols, im2col(x, geometry))
        np.testing.assert_array_equal(grad, col2im(grad_cols, geometry))
    assert grad.dtype == dtype


def test_numpy_windows_do_not_call_the_compiled_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    from convlens.ops import windows_jit

    def boom(*_: Any) -> None:
        raise AssertionError("compiled kernel called with CONVLENS_JIT=0")

    monkeypatch.setenv("CONVLENS_JIT", "0")
    monkeypatch.setattr(windows_jit, "_KERNELS", (boom, boom))
    geometry = WindowGeometry.resolve((5, 5), (3, 3), 1, "same")
    x = np.ones((1, 5, 5, 2), np.float32)
    col2im(im2col(x, geometry), geometry)
    monkeypatch.setenv("CONVLENS_JIT", "1")
    require("numba")
    with pytest.raises(AssertionError, match="compiled kernel called"):
        im2col(x, geometry)


def test_workspace_slots_lend_separate_buffers() -> None:
    from convlens.ops.parallel import workspace_slot

    workspace = Workspace()
    a = workspace.get("cols", (3, 4), np.float32)
    with workspace_slot(1):
        b = workspace.get("cols", (3, 4), np.float32)
        assert workspace.get("cols", (3, 4), np.float32) is b
    assert b is not a
    assert not np.shares_memory(a, b)
    assert workspace.get("cols", (3, 4), np.float32) is a
    workspace.clear()
    assert workspace.get("cols", (3, 4), np.float32) is not a


@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.float64_kernels)])
@given(problem=problems(), extra=st.integers(0, 2))
def test_compiled_row_im2col_matches_the_loop_reference(
    problem: tuple[WindowGeometry, tuple[int, ...]], extra: int, dtype: Any
) -> None:
    """im2col_rows_jit: every window row as slices of x, into the leading columns of a wider C-contiguous
    matrix (the columns after them untouched); nothing done where the width is dilated."""
    from convlens.ops import windows_jit

    require("numba")
    geometry, shape = problem
    x = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    depth = int(np.prod(geometry.kernel_size)) * shape[3]
    rows = shape[0] * int(np.prod(geometry.output_size))
    cols = np.full((rows, depth + extra), np.nan, dtype)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVLENS_JIT", "1")
        ran = windows_jit.im2col_rows_jit(x, cols, geometry)
    assert ran == (geometry.dilation_rate[1] == 1)
    if ran:
        expected = windows_by_taps(x, geometry).reshape(rows, depth)
        np.testing.assert_array_equal(cols[:, :depth], expected.astype(dtype))
        assert np.isnan(cols[:, depth:]).all()
    else:
        assert np.isnan(cols).all()


def test_row_im2col_declines_what_it_cannot_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    from convlens.ops import windows_jit

    require("numba")
    monkeypatch.setenv("CONVLENS_JIT", "1")
    geometry = WindowGeometry.resolve((6, 6), (3, 3), 1, "same")
    x = np.ones((2, 6, 6, 3), np.float32)
    assert windows_jit.im2col_rows_jit(x, np.empty((72, 27), np.float32), geometry)
    assert not windows_jit.im2col_rows_jit(x, np.empty((72, 26), np.float32), geometry)  # too narrow
    assert not windows_jit.im2col_rows_jit(x, np.empty((71, 27), np.float32), geometry)  # rows
    assert not windows_jit.im2col_rows_jit(x, np.empty((72, 27), np.float64), geometry)  # dtype
    assert not windows_jit.im2col_rows_jit(x, np.empty((72, 54), np.float32)[:, ::2], geometry)  # strided
    monkeypatch.setenv("CONVLENS_JIT", "0")
    assert not windows_jit.im2col_rows_jit(x, np.empty((72, 27), np.float32), geometry)
