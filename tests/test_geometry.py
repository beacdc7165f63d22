"""WindowGeometry and normalize_padding: formulas, TensorFlow's 'same' rule, torch shapes, errors."""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from convlens.errors import ConfigError, ShapeError
from convlens.geometry import PADDING_MODES, WindowGeometry, normalize_padding
from tests.support.reference import conv1d_backward_reference, tf_same_pads

sizes = st.integers(1, 12)
kernels = st.integers(1, 5)
steps = st.integers(1, 4)
dilations = st.integers(1, 3)


# ----------------------------------------------------------------------------- pinned cases
def test_course_case_28_3_2_same() -> None:
    g = WindowGeometry.resolve((28, 28), (3, 3), (2, 2), "same")
    assert g.output_size == (14, 14)
    assert g.pads == ((0, 1), (0, 1))
    assert g.padding == "same"


def test_course_case_28_3_1_same_keeps_size() -> None:
    g = WindowGeometry.resolve((28, 28), 3, 1, "same")
    assert g.output_size == (28, 28)
    assert g.pads == ((1, 1), (1, 1))


def test_valid_5_3() -> None:
    g = WindowGeometry.resolve((5, 5), (3, 3), 1, "valid")
    assert g.output_size == (3, 3)
    assert g.pads == ((0, 0), (0, 0))
    assert not g.is_padded


def test_scalar_input_size_is_rank_1() -> None:
    g = WindowGeometry.resolve(7, 3, 2, "causal")
    assert g.rank == 1
    assert g.pads == ((2, 0),)
    assert g.output_size == (4,)  # positions 0, 2, 4, 6 of the 7 inputs


def test_same_even_kernel_puts_odd_pixel_after() -> None:
    # k=4, s=1, i=6: total padding 3 -> 1 before, 2 after (TensorFlow), torch 'same' agrees.
    assert WindowGeometry.resolve((6,), 4, 1, "same").pads == ((1, 2),)


def test_same_stride_larger_than_kernel_needs_no_padding() -> None:
    g = WindowGeometry.resolve((5, 4), (1, 1), (3, 3), "same")
    assert g.output_size == (2, 2)
    assert g.pads == ((0, 0), (0, 0))


def test_same_dilated() -> None:
    # extent (3 - 1) * 2 + 1 = 5 -> total padding 4 at stride 1.
    g = WindowGeometry.resolve((6, 6), 3, 1, "same", dilation_rate=2)
    assert g.extent == (5, 5)
    assert g.pads == ((2, 2), (2, 2))
    assert g.output_size == (6, 6)


def test_properties() -> None:
    g = WindowGeometry.resolve((7, 8), (3, 2), (2, 3), ((1, 0), (2, 2)), (2, 1))
    assert g.rank == 2
    assert g.padding == "explicit"
    assert g.extent == (5, 2)
    assert g.padded_size == (8, 12)
    assert g.output_size == ((8 - 5) // 2 + 1, (12 - 2) // 3 + 1)
    assert g.used_size == ((2 - 1) * 2 + 5, (4 - 1) * 3 + 2)
    assert g.is_padded


def test_frozen() -> None:
    g = WindowGeometry.resolve((5, 5), 3)
    with pytest.raises(AttributeError):
        g.pads = ((1, 1), (1, 1))  # type: ignore[misc]


# ----------------------------------------------------------------------------- formulas (hypothesis)
@given(i=sizes, k=kernels, s=steps, d=dilations, mode=st.sampled_from(["valid", "same", "causal"]))
def test_rank1_matches_docstring_formulas(i: int, k: int, s: int, d: int, mode: str) -> None:
    e = (k - 1) * d + 1
    if mode == "valid" and i < e:
        with pytest.raises(ShapeError):
            WindowGeometry.resolve((i,), k, s, mode, d)
        return
    g = WindowGeometry.resolve((i,), k, s, mode, d)
    assert g.extent == (e,)
    if mode == "valid":
        assert g.pads == ((0, 0),)
        assert g.output_size == ((i - e) // s + 1,)
    elif mode == "same":
        o = -(-i // s)
        p = max((o - 1) * s + e - i, 0)
        assert g.output_size == (o,)
        assert g.pads == ((p // 2, p - p // 2),)
    else:
        assert g.pads == ((e - 1, 0),)
        assert g.output_size == ((i - 1) // s + 1,)


@given(i=sizes, k=kernels, s=steps, d=dilations)
def test_same_matches_tensorflow_rule(i: int, k: int, s: int, d: int) -> None:
    g = WindowGeometry.resolve((i, i + 1), (k, k), (s, s), "same", (d, d))
    assert g.output_size == (math.ceil(i / s), math.ceil((i + 1) / s))
    assert g.pads == (tf_same_pads(i, k, s, d), tf_same_pads(i + 1, k, s, d))
    before, after = g.pads[0]
    assert after - before in (0, 1)  # the odd pixel goes bottom/right


@given(i=sizes, k=kernels, s=steps, d=dilations, before=st.integers(0, 4), after=st.integers(0, 4))
def test_explicit_pads_formula_and_window_facts(i: int, k: int, s: int, d: int, before: int, after: int) -> None:
    e = (k - 1) * d + 1
    if i + before + after < e:
        with pytest.raises(ShapeError, match="does not fit"):
            WindowGeometry.resolve((i,), k, s, ((before, after),), d)
        return
    g = WindowGeometry.resolve((i,), k, s, ((before, after),), d)
    (o,) = g.output_size
    assert o == (i + before + after - e) // s + 1
    # Every window lies inside the padded input, and one more would not fit.
    assert g.window_start((0,)) == (-before,)
    last_taps = g.taps((o - 1,))
    assert last_taps[0] == (g.window_start((o - 1,))[0],)
    assert last_taps[-1][0] <= i + after - 1
    assert last_taps[-1][0] + s > i + after - 1
    assert g.used_size[0] <= g.padded_size[0] < g.used_size[0] + s


@given(
    h=sizes,
    w=sizes,
    kh=kernels,
    kw=kernels,
    sh=steps,
    sw=steps,
    dh=dilations,
    dw=dilations,
    pads=st.tuples(*(st.integers(0, 3),) * 4),
)
def test_output_size_matches_torch_with_explicit_pads(
    h: int, w: int, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, pads: tuple[int, int, int, int], torch: Any
) -> None:
    pt, pb, pl, pr = pads
    if h + pt + pb < (kh - 1) * dh + 1 or w + pl + pr < (kw - 1) * dw + 1:
        with pytest.raises(ShapeError):
            WindowGeometry.resolve((h, w), (kh, kw), (sh, sw), ((pt, pb), (pl, pr)), (dh, dw))
        return
    g = WindowGeometry.resolve((h, w), (kh, kw), (sh, sw), ((pt, pb), (pl, pr)), (dh, dw))
    x = torch.nn.functional.pad(torch.zeros(1, 1, h, w), (pl, pr, pt, pb))
    out = torch.nn.functional.conv2d(x, torch.zeros(1, 1, kh, kw), stride=(sh, sw), dilation=(dh, dw))
    assert g.output_size == tuple(out.shape[2:])


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
@given(h=sizes, w=sizes, k=kernels, d=dilations)
def test_same_stride_1_matches_torch_same(h: int, w: int, k: int, d: int, torch: Any) -> None:
    g = WindowGeometry.resolve((h, w), k, 1, "same", d)
    out = torch.nn.functional.conv2d(torch.zeros(1, 1, h, w), torch.zeros(1, 1, k, k), padding="same", dilation=d)
    assert g.output_size == tuple(out.shape[2:]) == (h, w)


# ----------------------------------------------------------------------------- taps / window_start
def test_taps_same_corner_reaches_into_padding() -> None:
    g = WindowGeometry.resolve((5, 5), 3, 1, "same")
    assert g.window_start((0, 0)) == (-1, -1)
    assert g.taps((0, 0)) == list(itertools.product([-1, 0, 1], [-1, 0, 1]))
    assert g.taps((4, 4))[-1] == (5, 5)  # last window's last tap is in the bottom/right padding


def test_taps_strided_dilated_row_major() -> None:
    g = WindowGeometry.resolve((9, 9), (2, 3), (3, 2), "valid", (2, 1))
    assert g.window_start((1, 2)) == (3, 4)
    assert g.taps((1, 2)) == [(3, 4), (3, 5), (3, 6), (5, 4), (5, 5), (5, 6)]


def test_taps_causal() -> None:
    g = WindowGeometry.resolve((6,), 3, 1, "causal", 2)
    assert g.taps((0,)) == [(-4,), (-2,), (0,)]  # sees only the present and the past
    assert g.taps((5,)) == [(1,), (3,), (5,)]


# ----------------------------------------------------------------------------- normalize_padding
@pytest.mark.parametrize(
    ("padding", "rank", "expected"),
    [
        ("valid", 2, "valid"),
        ("SAME", 2, "same"),
        ("Causal", 1, "causal"),
        (0, 2, ((0, 0), (0, 0))),
        (2, 1, ((2, 2),)),
        ((1, 2), 2, ((1, 1), (2, 2))),
        ([1, 2], 2, ((1, 1), (2, 2))),
        ((1, 2), 1, ((1, 2),)),  # rank 1: a pair is (before, after)
        ((3,), 1, ((3, 3),)),
        (((0, 1), (2, 3)), 2, ((0, 1), (2, 3))),
        ([[0, 1], [2, 3]], 2, ((0, 1), (2, 3))),
        (((4, 0),), 1, ((4, 0),)),
    ],
)
def test_normalize_padding_forms(padding: object, rank: int, expected: object) -> None:
    assert normalize_padding(padding, rank) == expected


def test_normalize_padding_numpy_ints() -> None:
    assert normalize_padding((np.int64(1), np.int32(2)), 2) == ((1, 1), (2, 2))


def test_padding_modes_constant() -> None:
    assert PADDING_MODES == ("valid", "same", "causal")


RANK2_MESSAGE = (
    "Conv2D 'c': `padding` must be 'valid', 'same', a non-negative int, a tuple of 2 non-negative ints "
    "or 2 (before, after) pairs, got {!r}."
)
RANK1_MESSAGE = (
    "`padding` must be 'valid', 'same', 'causal', a non-negative int, a tuple of 1 non-negative ints "
    "or 1 (before, after) pairs, got {!r}."
)


@pytest.mark.parametrize(
    "padding",
    [
        "causal",  # rank 2
        "full",
        "",
        -1,
        True,
        1.5,
        None,
        (1, 2, 3),
        (1,),
        (1, -1),
        ((0, 1),),
        ((0, 1), (2, -3)),
        ((0, 1), (2, 3, 4)),
        ((0, 1), 2),
        ((0, 1.0), (2, 3)),
        ("ab", "cd"),
        {1, 2},
    ],
)
def test_normalize_padding_rank2_rejects(padding: object) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(RANK2_MESSAGE.format(padding)) + "$"):
        normalize_padding(padding, 2, owner="Conv2D 'c'")


@pytest.mark.parametrize("padding", ["full", -2, (1, 2, 3), (-1, 0), ((1, 2), (3, 4)), (True, 1)])
def test_normalize_padding_rank1_rejects(padding: object) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(RANK1_MESSAGE.format(padding)) + "$"):
        normalize_padding(padding, 1)


def test_resolve_rejects_bad_padding_with_owner() -> None:
    with pytest.raises(
        ConfigError, match=r"^conv2d: `padding` must be 'valid', 'same', a non-negative.*got 'causal'\.$"
    ):
        WindowGeometry.resolve((5, 5), 3, 1, "causal", owner="conv2d")


# ----------------------------------------------------------------------------- resolve errors
def test_valid_empty_output_message_gives_sizes() -> None:
    expected = (
        "conv2d: a 'valid'-padded 5x5 window does not fit the 3x3 input (3x3 after padding): the output "
        "would be empty. Use a smaller kernel_size, padding='same', or a larger input."
    )
    with pytest.raises(ShapeError, match="^" + re.escape(expected) + "$"):
        WindowGeometry.resolve((3, 3), (5, 5), 1, "valid", owner="conv2d")


def test_dilated_empty_output_message_gives_extent() -> None:
    with pytest.raises(
        ShapeError,
        match=re.escape(
            "a 'valid'-padded 3x2 window (dilated extent 5x3) does not fit the 4x9 input (4x9 after padding)"
        ),
    ):
        WindowGeometry.resolve((4, 9), (3, 2), 1, "valid", (2, 2))


def test_explicit_empty_output_message_gives_padded_size() -> None:
    with pytest.raises(
        ShapeError, match=re.escape("a 'explicit'-padded 4 window does not fit the 1 input (3 after padding)")
    ):
        WindowGeometry.resolve((1,), 4, 1, (1, 1))


def test_zero_size_input_raises_even_with_same() -> None:
    with pytest.raises(ShapeError, match=re.escape("does not fit the 0x4 input")):
        WindowGeometry.resolve((0, 4), 1, 1, "same")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel_size": (3, 0)}, "L: `kernel_size` must be positive integers, got (3, 0)."),
        (
            {"kernel_size": (3, 3, 3)},
            "L: `kernel_size` must be an integer or a tuple of 2 integers, got (3, 3, 3).",
        ),
        ({"strides": 0}, "L: `strides` must be positive integers, got 0."),
        ({"strides": "2"}, "L: `strides` must be an integer or a tuple of 2 integers, got '2'."),
        (
            {"dilation_rate": (1, 1.5)},
            "L: `dilation_rate` must be an integer or a tuple of 2 integers, got (1, 1.5).",
        ),
        ({"input_size": (5, -1)}, "L: `input_size` must be integers >= 0, got (5, -1)."),
    ],
)
def test_resolve_argument_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"input_size": (5, 5), "kernel_size": 3, "strides": 1, "dilation_rate": 1}
    args.update(kwargs)
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        WindowGeometry.resolve(padding="valid", owner="L", **args)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- what the engine asks the geometry
paddings_1d = st.one_of(
    st.sampled_from(["valid", "same", "causal"]), st.tuples(st.integers(0, 4), st.integers(0, 4)).map(lambda p: (p,))
)


def fits(i: int, k: int, d: int, padding: Any) -> bool:
    try:
        WindowGeometry.resolve((i,), k, 1, padding, d)
    except ShapeError:
        return False
    return True


@given(i=sizes, k=kernels, s=steps, d=dilations, padding=paddings_1d)
def test_window_start_in_padded_coordinates(i: int, k: int, s: int, d: int, padding: Any) -> None:
    assume(fits(i, k, d, padding))
    g = WindowGeometry.resolve((i,), k, s, padding, d)
    for o in range(g.output_size[0]):
        assert g.window_start((o,), padded=True) == (g.window_start((o,))[0] + g.pads[0][0],)
        assert g.window_start((o,), padded=True)[0] >= 0


@given(i=sizes, k=kernels, s=steps, d=dilations, padding=paddings_1d)
def test_real_counts_and_real_taps_count_cells_inside_the_input(i: int, k: int, s: int, d: int, padding: Any) -> None:
    assume(fits(i, k, d, padding))
    g = WindowGeometry.resolve((i,), k, s, padding, d)
    (before, _), o = g.pads[0], g.output_size[0]
    # By hand: window p starts at p * s - before and reads k cells d apart.
    expected = tuple(sum(1 for t in range(k) if 0 <= p * s - before + t * d < i) for p in range(o))
    assert g.real_counts() == (expected,)
    assert [len(g.real_taps((p,))) for p in range(o)] == list(expected)


@given(i=sizes, k=kernels, s=steps, d=dilations, padding=paddings_1d, crop=st.booleans())
def test_full_convolution_gives_the_input_gradient(i: int, k: int, s: int, d: int, padding: Any, crop: bool) -> None:
    # The input gradient by loops (tests/support) against a stride-1 'valid' convolution of the zero-inserted
    # grad_out, padded as the geometry says (negative pads crop), with the flipped kernel.
    assume(fits(i, k, d, padding))
    g = WindowGeometry.resolve((i,), k, s, padding, d)
    gen = np.random.default_rng(i * 100 + k * 10 + s)
    kernel = gen.standard_normal((k, 1, 1))
    grad_out = gen.standard_normal((1, g.output_size[0], 1))
    expected, _, _ = conv1d_backward_reference(grad_out, np.zeros((1, i, 1)), kernel, s, g.pads[0], d)
    z = np.zeros(g.zero_inserted_size)
    z[::s] = grad_out[0, :, 0]
    ((left, right),) = g.full_convolution_pads(crop=crop)
    z = np.pad(z, (max(left, 0), max(right, 0)))  # a negative pad crops
    z = z[max(-left, 0) : len(z) - max(-right, 0)]
    flipped = kernel[::-1, 0, 0]
    e = (k - 1) * d + 1
    full = np.array([sum(z[p + t * d] * flipped[t] for t in range(k)) for p in range(len(z) - e + 1)])
    if crop:
        np.testing.assert_allclose(full, expected[0, :, 0], atol=1e-12)
    else:  # the gradient of the used part of the padded input
        (before, _) = g.pads[0]
        used = np.zeros(g.padded_size[0])
        used[: len(full)] = full
        assert len(full) == g.used_size[0]
        np.testing.assert_allclose(used[before : before + i], expected[0, :, 0], atol=1e-12)
    if crop and min(left, right) >= 0:
        assert g.full_convolution().output_size == (i,)


def test_full_convolution_refuses_an_over_padded_window() -> None:
    g = WindowGeometry.resolve((4,), 3, 1, ((3, 0),))
    assert g.full_convolution_pads() == ((-1, 2),)
    with pytest.raises(ShapeError, match=r"the forward pads \(\(3, 0\),\) exceed the dilated extent - 1 \(\(2,\)\)"):
        g.full_convolution()
    assert g.full_convolution(crop=False).pads == ((2, 2),)


@given(h=sizes, w=sizes, padding=st.sampled_from(["valid", "same", 1, ((2, 0), (1, 2)), ((0, 1), (0, 0))]))
def test_winograd_tiles_cover_the_output_in_2x2_blocks(h: int, w: int, padding: Any) -> None:
    try:
        g = WindowGeometry.resolve((h, w), 3, 1, padding)
    except ShapeError:
        return
    tiles, blocks = g.winograd_tiles(2)
    counts = tuple(math.ceil(o / 2) for o in g.output_size)
    assert tiles.output_size == blocks.output_size == counts
    assert tiles.kernel_size == (4, 4)
    assert blocks.pads == tuple((0, 2 * c - o) for c, o in zip(counts, g.output_size, strict=True))
    for t in itertools.product(*(range(c) for c in counts)):
        # The 4x4 tile t reads from where the window of output 2t starts.
        assert tiles.window_start(t) == g.window_start(tuple(2 * v for v in t))


def test_winograd_tiles_need_stride_1() -> None:
    with pytest.raises(ConfigError, match=r"Winograd tiles need stride 1 and no dilation, got strides \(2, 2\)"):
        WindowGeometry.resolve((8, 8), 3, 2, "same").winograd_tiles(2)
