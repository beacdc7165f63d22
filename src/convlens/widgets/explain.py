"""ExplainWidget: the sliding window with sliders, re-traced in Python on every change.

>>> w = ExplainWidget("ramp", "sobel_x", input_size=(7, 7), strides=2, padding="same")
>>> w.output_size, w.error
([4, 4], '')
>>> w.strides = [3, 3]
>>> w.output_size, w.formula[-1]
([3, 3], 'out width:  OW = (W + PL + PR - ((KW - 1) * DW + 1)) // SW + 1 = (7 + 1 + 1 - 3) // 3 + 1 = 3')
"""

from __future__ import annotations

import dataclasses
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from convlens.errors import ConfigError, ConvlensError, check_choice, normalize_tuple
from convlens.geometry import WindowGeometry
from convlens.lab import explain
from convlens.lab.arithmetic import explain_geometry
from convlens.lab.explain_html import trace_data
from convlens.lab.kernels import KERNELS, describe_input, get_kernel
from convlens.lab.render_explain import describe_geometry, output_formula
from convlens.widgets._assets import widget_css, widget_esm

__all__ = ["MAX_INPUT", "MAX_KERNEL", "ExplainWidget"]

OPS = ("conv", "max", "avg")
SOURCES = ("ramp", "checker", "random", "given")
GENERATED = ("ones", "random")
PADDINGS = ("valid", "same", "explicit")
#: Largest input side the sliders offer (and the widget traces): a 28x28 digit fits.
MAX_INPUT = 32
#: Largest kernel / pool side the sliders offer.
MAX_KERNEL = 9
_OWNER = "ExplainWidget"
_SETTINGS = (
    "op", "source", "input_size", "seed", "kernel", "kernel_size", "bias", "strides", "padding", "pads",
    "dilation_rate", "pool_size",
)  # fmt: skip


def _pair(value: Any, name: str) -> list[int]:
    return list(normalize_tuple(value, 2, name, owner=_OWNER))


class ExplainWidget(anywidget.AnyWidget):  # type: ignore[misc]
    """A convolution or pooling on a small input, traced step by step, with its settings as controls.

    Every setting is a synced trait: move a slider in the notebook or assign the trait in Python
    (``w.strides = [2, 2]``), and the widget re-traces with :func:`convlens.lab.explain.convolution` (or
    :func:`~convlens.lab.explain.pooling`) and syncs the result: ``trace`` (``trace.to_dict()`` as the page
    gets it), ``formula`` (the output-size formula in these numbers), ``why``, ``output_size``; a setting
    without output sets ``error`` to the reason instead. The view draws ``trace`` with the browser lab's
    step view and steps through it (``step``: the 0-based step shown).

    Args:
        input: 'ramp', 'checker' or 'random' (generated at ``input_size``), or numbers / any input spec of
            :func:`convlens.lab.kernels.make_input` ('digit:7', an image path), used as given.
        kernel: a name of :data:`convlens.lab.kernels.KERNELS`, 'ones' or 'random' (integers -2..2, of
            ``kernel_size``), or numbers (a 2-D array or '1,0;0,-1').
        op: 'conv', or 'max' / 'avg' pooling.
        input_size: (H, W) of a generated input, 1..32 each.
        kernel_size: (KH, KW) of a generated kernel ('ones', 'random'), 1..9 each; a named or given kernel
            has its own size.
        strides, dilation_rate, pool_size: int or pair.
        padding: 'valid', 'same', or explicit pads (an int, (PH, PW) or ((PT, PB), (PL, PR))).
        bias: added to every sum.
        seed: seed of the random input and kernel.

    Shapes:
        input: (H, W); kernel: (KH, KW); output: (OH, OW),
        OH = (H + PT + PB - ((KH - 1) * DH + 1)) // SH + 1 (see :class:`convlens.geometry.WindowGeometry`).
    """

    _esm = widget_esm("explain.js")
    _css = widget_css()

    # the settings (the view's controls)
    op = t.Unicode("conv").tag(sync=True)
    source = t.Unicode("ramp").tag(sync=True)
    input_size = t.List(t.Int(), [6, 6]).tag(sync=True)
    seed = t.Int(0).tag(sync=True)
    kernel = t.Unicode("sobel_x").tag(sync=True)
    kernel_size = t.List(t.Int(), [3, 3]).tag(sync=True)
    bias = t.Float(0.0).tag(sync=True)
    strides = t.List(t.Int(), [1, 1]).tag(sync=True)
    padding = t.Unicode("valid").tag(sync=True)
    pads = t.List(t.List(t.Int()), [[0, 0], [0, 0]]).tag(sync=True)
    dilation_rate = t.List(t.Int(), [1, 1]).tag(sync=True)
    pool_size = t.List(t.Int(), [2, 2]).tag(sync=True)
    step = t.Int(0).tag(sync=True)
    # what Python computed
    trace = t.Dict().tag(sync=True)
    formula = t.List(t.Unicode()).tag(sync=True)
    why = t.Unicode("").tag(sync=True)
    output_size = t.List(t.Int()).tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    # choices and limits of the controls
    kernel_names = t.List(t.Unicode(), sorted(KERNELS)).tag(sync=True)
    max_input = t.Int(MAX_INPUT).tag(sync=True)
    max_kernel = t.Int(MAX_KERNEL).tag(sync=True)

    def __init__(
        self,
        input: Any = "ramp",
        kernel: Any = "sobel_x",
        *,
        op: str = "conv",
        input_size: Any = (6, 6),
        kernel_size: Any = (3, 3),
        strides: Any = 1,
        padding: Any = "valid",
        dilation_rate: Any = 1,
        pool_size: Any = 2,
        bias: float = 0.0,
        seed: int = 0,
    ) -> None:
        self._ready = False
        self._computed: tuple[Any, ...] | None = None
        self._traced: explain.ConvTrace | explain.PoolTrace | None = None
        self._given_input: tuple[np.ndarray, str] | None = None
        self._given_kernel: np.ndarray | None = None
        settings: dict[str, Any] = {
            "op": check_choice(op, "op", OPS, owner=_OWNER),
            "input_size": _pair(input_size, "input_size"),
            "kernel_size": _pair(kernel_size, "kernel_size"),
            "strides": _pair(strides, "strides"),
            "dilation_rate": _pair(dilation_rate, "dilation_rate"),
            "pool_size": _pair(pool_size, "pool_size"),
            "bias": float(bias),
            "seed": int(seed),
        }
        if isinstance(input, str) and input in SOURCES[:-1]:
            settings["source"] = input
        else:
            self._given_input = describe_input(input, seed=int(seed))
            settings["source"] = "given"
            settings["input_size"] = list(self._given_input[0].shape)
        if isinstance(kernel, str) and kernel in GENERATED:
            settings["kernel"] = kernel
        elif isinstance(kernel, str) and kernel.strip().lower() in KERNELS:
            settings["kernel"] = kernel.strip().lower()
        else:
            self._given_kernel = get_kernel(kernel)
            settings["kernel"] = "given"
        if isinstance(padding, str):
            settings["padding"] = check_choice(padding, "padding", PADDINGS, owner=_OWNER)
        else:  # explicit pads in any form WindowGeometry takes, resolved once to ((PT, PB), (PL, PR))
            window = settings["kernel_size"] if self._given_kernel is None else self._given_kernel.shape
            g = WindowGeometry.resolve(
                settings["input_size"], window, settings["strides"], padding, settings["dilation_rate"], owner=_OWNER
            )
            settings.update(padding="explicit", pads=[list(p) for p in g.pads])
        super().__init__(**settings)
        self._ready = True
        self._recompute()

    # ----- tracing -------------------------------------------------------------------------------
    def _input(self) -> tuple[np.ndarray, str]:
        source = check_choice(self.source, "source", SOURCES, owner=_OWNER)
        if source == "given":
            if self._given_input is None:
                raise ConfigError(f"{_OWNER}: `source` 'given' needs numbers: pass them as ExplainWidget(input=...).")
            return self._given_input
        h, w = self.input_size
        if not (1 <= h <= MAX_INPUT and 1 <= w <= MAX_INPUT):
            raise ConfigError(f"{_OWNER}: `input_size` must be 1..{MAX_INPUT} per side, got {tuple(self.input_size)}.")
        return describe_input(f"{source}:{h}x{w}", seed=self.seed)

    def _kernel(self) -> np.ndarray:
        name = self.kernel
        if name == "given":
            if self._given_kernel is None:
                raise ConfigError(f"{_OWNER}: `kernel` 'given' needs numbers: pass them as ExplainWidget(kernel=...).")
            return self._given_kernel
        if name in GENERATED:
            kh, kw = self.kernel_size
            if not (1 <= kh <= MAX_KERNEL and 1 <= kw <= MAX_KERNEL):
                raise ConfigError(
                    f"{_OWNER}: `kernel_size` must be 1..{MAX_KERNEL} per side, got {tuple(self.kernel_size)}."
                )
            if name == "ones":
                return np.ones((kh, kw))
            return np.random.default_rng(self.seed).integers(-2, 3, size=(kh, kw)).astype(np.float64)
        return get_kernel(check_choice(name, "kernel", (*sorted(KERNELS), *GENERATED, "given"), owner=_OWNER))

    def traced(self) -> explain.ConvTrace | explain.PoolTrace:
        """The trace of the current settings (raises what the explainer raises for a setting without output)."""
        op = check_choice(self.op, "op", OPS, owner=_OWNER)
        padding: Any = check_choice(self.padding, "padding", PADDINGS, owner=_OWNER)
        x, source = self._input()
        trace: explain.ConvTrace | explain.PoolTrace
        if op == "conv":
            if padding == "explicit":
                padding = tuple(tuple(p) for p in self.pads)
            trace = explain.convolution(
                x, self._kernel(), strides=self.strides, padding=padding, dilation_rate=self.dilation_rate,
                bias=self.bias,
            )  # fmt: skip
        else:
            trace = explain.pooling(x, pool_size=self.pool_size, strides=self.strides, padding=padding, kind=op)
        return dataclasses.replace(trace, source=source)

    def __repr__(self) -> str:
        if self._traced is None:
            return f"<ExplainWidget: no output: {self.error}>"
        what = "convolution" if self.op == "conv" else f"{self.op} pooling"
        return f"<ExplainWidget: {what}, {describe_geometry(self._traced.geometry)}; step {self.step + 1}>"

    @t.observe(*_SETTINGS)
    def _changed(self, change: dict[str, Any]) -> None:
        if self._ready:
            self._recompute()

    def _recompute(self) -> None:
        key = tuple(repr(getattr(self, name)) for name in _SETTINGS)
        if key == self._computed:
            return
        self._computed = key
        try:
            trace = self.traced()
        except ConvlensError as exc:
            self._traced = None
            with self.hold_sync():
                self.trace, self.formula, self.why, self.output_size, self.error = {}, [], "", [], str(exc)
            return
        self._traced = trace
        g = trace.geometry
        with self.hold_sync():
            self.trace = trace_data(trace)
            self.formula = output_formula(g)
            self.why = explain_geometry(g)
            self.output_size = list(g.output_size)
            self.error = ""
            self.step = min(self.step, len(trace.steps) - 1)
