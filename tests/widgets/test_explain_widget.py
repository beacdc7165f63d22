"""ExplainWidget's Python side: a changed setting re-traces, and the synced JSON is the engine's numbers.

A change arrives as the kernel applies a front end's message (``set_state``); the tests compare the synced
``trace``, ``output_size`` and ``formula`` with ``WindowGeometry``, ``ops.conv2d`` / the pooling ops and the
slow loop reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from convlens import ops
from convlens.errors import ConfigError
from convlens.geometry import WindowGeometry
from convlens.lab.kernels import KERNELS
from convlens.lab.render_explain import output_formula
from convlens.widgets import ExplainWidget
from tests.support.reference import conv2d_reference, explicit_pads

RAMP = np.arange(1, 8 * 7 + 1, dtype=float).reshape(8, 7)  # 'ramp' 8x7, written out here


def _conv(x: np.ndarray, k: np.ndarray, **kw: object) -> np.ndarray:
    return ops.conv2d(x[None, :, :, None], k[:, :, None, None], **kw)[0, :, :, 0]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "strides", "padding", "dilation"),
    [
        ({"strides": [2, 3]}, (2, 3), "valid", (1, 1)),
        ({"padding": "same", "strides": [2, 2]}, (2, 2), "same", (1, 1)),
        ({"padding": "explicit", "pads": [[2, 0], [1, 3]]}, (1, 1), ((2, 0), (1, 3)), (1, 1)),
        ({"dilation_rate": [2, 1], "padding": "same"}, (1, 1), "same", (2, 1)),
    ],
)
def test_a_front_end_change_retraces_with_the_engines_numbers(
    change: dict[str, object], strides: tuple[int, int], padding: object, dilation: tuple[int, int]
) -> None:
    widget = ExplainWidget("ramp", "sobel_x", input_size=(8, 7))
    widget.set_state(change)  # what the kernel does with the view's message
    g = WindowGeometry.resolve((8, 7), (3, 3), strides, padding, dilation)
    k = KERNELS["sobel_x"]
    assert widget.error == ""
    assert widget.output_size == list(g.output_size)
    assert widget.formula == output_formula(g)
    assert widget.trace["geometry"]["pads"] == [list(p) for p in g.pads]
    out = _conv(RAMP, k, strides=strides, padding=padding, dilation_rate=dilation)
    assert np.array(widget.trace["output"]).shape == out.shape
    np.testing.assert_array_equal(widget.trace["output"], out)
    pads = explicit_pads(padding, RAMP.shape, k.shape, strides, dilation)  # TF's rule, written out in tests/support
    assert widget.trace["geometry"]["pads"] == [list(p) for p in pads]
    ref = conv2d_reference(RAMP[None, :, :, None], k[:, :, None, None], None, strides, pads, dilation)
    np.testing.assert_array_equal(widget.trace["output"], ref[0, :, :, 0])
    assert len(widget.trace["steps"]) == g.output_size[0] * g.output_size[1]


def test_input_and_kernel_sliders_and_pooling() -> None:
    widget = ExplainWidget("checker", "ones", input_size=(5, 5), kernel_size=(2, 2))
    checker = np.indices((5, 5)).sum(axis=0) % 2 * 1.0
    np.testing.assert_array_equal(widget.trace["output"], _conv(checker, np.ones((2, 2))))
    widget.set_state({"input_size": [6, 4], "kernel_size": [3, 2]})
    checker = np.indices((6, 4)).sum(axis=0) % 2 * 1.0
    assert widget.output_size == [4, 3]
    np.testing.assert_array_equal(widget.trace["output"], _conv(checker, np.ones((3, 2))))
    widget.set_state({"op": "max", "pool_size": [2, 2], "strides": [2, 2]})
    assert widget.trace["kind"] == "pool"
    np.testing.assert_array_equal(
        widget.trace["output"], ops.max_pool2d(checker[None, :, :, None], pool_size=2, strides=2)[0, :, :, 0]
    )
    widget.set_state({"op": "avg", "padding": "same", "pool_size": [3, 3]})
    same = ops.avg_pool2d(checker[None, :, :, None], pool_size=3, strides=2, padding="same")[0, :, :, 0]
    np.testing.assert_allclose(widget.trace["output"], same, rtol=1e-12)
    assert widget.output_size == list(same.shape)


def test_given_numbers_bias_and_the_step() -> None:
    x = np.array([[3, 1, 4, 1], [5, 9, 2, 6], [5, 3, 5, 8]], dtype=float)
    k = np.array([[1, -1], [2, 0]], dtype=float)
    widget = ExplainWidget(x, k, bias=0.5, padding=((1, 0), (0, 1)))
    assert (widget.source, widget.kernel, widget.padding, widget.pads) == (
        "given",
        "given",
        "explicit",
        [[1, 0], [0, 1]],
    )
    expected = _conv(x, k, bias=np.array([0.5]), padding=((1, 0), (0, 1)))
    np.testing.assert_array_equal(widget.trace["output"], expected)
    assert widget.trace["steps"][4]["total"] == expected.ravel()[4]
    widget.step = 10
    widget.set_state({"strides": [2, 2]})  # fewer steps: the step shown stays inside the trace
    assert widget.step == len(widget.trace["steps"]) - 1 == 3


def test_a_setting_without_output_says_why() -> None:
    widget = ExplainWidget("ramp", "ones", input_size=(4, 4))
    widget.set_state({"kernel_size": [6, 3]})
    assert widget.trace == {}
    assert widget.output_size == []
    assert widget.formula == []
    assert "a 'valid'-padded 6x3 window does not fit the 4x4 input" in widget.error
    widget.set_state({"padding": "same"})
    assert widget.error == ""
    assert widget.output_size == [4, 4]
    widget.set_state({"input_size": [40, 4]})
    assert widget.error == "ExplainWidget: `input_size` must be 1..32 per side, got (40, 4)."
    widget.set_state({"input_size": [4, 4], "kernel_size": [10, 3]})
    assert widget.error == "ExplainWidget: `kernel_size` must be 1..9 per side, got (10, 3)."
    widget.set_state({"source": "given"})
    assert widget.error == "ExplainWidget: `source` 'given' needs numbers: pass them as ExplainWidget(input=...)."
    widget.set_state({"source": "ramp", "kernel": "given"})
    assert widget.error == "ExplainWidget: `kernel` 'given' needs numbers: pass them as ExplainWidget(kernel=...)."
    widget.set_state({"kernel": "ones", "op": "max", "input_size": [4, 4], "padding": "explicit"})
    assert widget.error.startswith("explain.pooling: `padding` must be one of")


def test_constructor_errors_name_the_argument() -> None:
    with pytest.raises(ConfigError, match=r"ExplainWidget: `op` must be one of 'conv', 'max', 'avg', got 'conv2d'"):
        ExplainWidget(op="conv2d")
    with pytest.raises(ConfigError, match=r"explain: `kernel` must be one of .*sobel_x.* got 'sobel'"):
        ExplainWidget(kernel="sobel")
    with pytest.raises(ConfigError, match=r"ExplainWidget: `padding` must be one of 'valid', 'same', 'explicit'"):
        ExplainWidget(padding="full")


def test_the_widget_shows_as_a_jupyter_widget_with_its_code_inside() -> None:
    widget = ExplainWidget()
    bundle, _ = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == (
        "<ExplainWidget: convolution, input 6x6, window 3x3, stride 1x1, padding 'valid': top 0, bottom 0, left 0, "
        "right 0, output 4x4; step 1>"
    )
    widget.kernel_size = [9, 9]
    widget.kernel = "ones"
    assert repr(widget).startswith("<ExplainWidget: no output: explain.convolution: a 'valid'-padded 9x9 window")
    assert widget._esm.rstrip().endswith("export default __cl_widgets_static_explain;")
    assert "import " not in widget._esm.replace("// ", "")  # no import left for the host to resolve
    assert ".convlens-widget {" in widget._css
    assert ":root" not in widget._css
