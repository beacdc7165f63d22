"""Activation maximisation: the input that makes one filter (or unit) respond most, by gradient ascent.

The objective is the pre-activation of the chosen filter at the centre of its map (or its mean over
the map, or the chosen unit of a dense layer); its gradient with respect to the input comes
from the engine's own ``backward``.
Regularisation, as usual: random jitter (the image is rolled by a few pixels before each step and
the gradient rolled back), L2 decay of the image towards zero, and a light Gaussian blur every few
steps. Pixels stay in [0, 1], the range the model was trained on.
"""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convlens.errors import ConfigError, check_choice, check_float, check_int
from convlens.lab.viz._figure import FigureResult, new_figure, show_image
from convlens.lab.viz.activations import find_layer, layer_outputs, linear_activation, run_gradient
from convlens.lab.viz.images import _input_shape

__all__ = ["MaximizeResult", "blur", "maximize"]


@dataclass(repr=False)
class MaximizeResult(FigureResult):
    """The figure; the optimised ``image`` (H, W, C); the objective per step; its value before and after.

    ``objective`` has ``steps + 1`` values: the objective on the image before the first step and after each
    step, measured without jitter (so the curve shows the image's progress, not the random shifts).
    ``activation_before``/``activation_after`` are its first and last values. ``bound``: for a first-layer
    conv unit at the centre, the most its pre-activation can reach with pixels in [0, 1] (else None);
    ``note``: the sentence under the curve (did it rise, and if not, why); ``jitter``: the jitter used.
    """

    image: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    objective: list[float] = field(default_factory=list)
    activation_before: float = 0.0
    activation_after: float = 0.0
    layer: str = ""
    filter: int = 0
    jitter: int = 0
    bound: float | None = None
    note: str = ""

    def describe(self) -> str:
        """'layer' filter N: the curve's note."""
        return f"'{self.layer}' filter {self.filter}: {self.note}"


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W, C) image (radius 2 sigma, edges replicated).

    Shapes:
        image: (H, W, C); returns (H, W, C).
    """
    radius = max(1, round(2 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(image.dtype)
    out = image
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode="edge")
        size = out.shape[axis]
        acc = np.zeros_like(out)
        for k, tap in enumerate(taps):  # a loop over kernel taps only
            acc += tap * np.take(padded, np.arange(k, k + size), axis=axis)
        out = acc
    return out


def _auto_jitter(model: Any, index: int, center: bool) -> int:
    """min(2, (r - 1) // 4) for the smaller side r of what the objective reads: the centre unit's receptive
    field, or the whole input for a map's mean (and after Flatten)."""
    from convlens.lab.arithmetic import model_stats

    field_size = min(model_stats(model)[index].receptive_field) if center else min(_input_shape(model)[:-1])
    return int(min(2, (field_size - 1) // 4))


def _objective(out: np.ndarray, unit: int, center: bool) -> float:
    if center and out.ndim == 4:
        return float(out[0, out.shape[1] // 2, out.shape[2] // 2, unit])
    return float(out[0, ..., unit].mean())


def maximize(
    model: Any,
    layer: str | int,
    filter: int,
    *,
    steps: int = 100,
    learning_rate: float = 0.05,
    jitter: int | None = None,
    l2: float = 1e-3,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    seed: int = 0,
    start: np.ndarray | None = None,
    position: str = "center",
) -> MaximizeResult:
    """Gradient ascent on the input to maximise filter ``filter`` of layer ``layer``.

    ``position='center'`` maximises the filter's response at the centre of its map (the pattern it
    detects, framed by its receptive field); ``'mean'`` its mean over the whole map.
    Each step normalises the gradient (divides by its RMS), so ``learning_rate`` is in pixel units.
    ``jitter=None`` picks min(2, (r - 1) // 4) pixels, r the side of what the objective reads (the centre
    unit's receptive field; the whole input for ``'mean'``): a shift as large as half a first-layer 3x3
    filter's window moves the pattern out of the window it optimises, and the objective zig-zags.
    ``start`` defaults to mid-grey plus a little noise.

    Shapes:
        start: (H, W, C); image: (H, W, C).
    """
    center = check_choice(position, "position", ("center", "mean"), owner="maximize") == "center"
    index = find_layer(model, layer)
    target = model.layers[index]
    steps = check_int(steps, "steps", owner="maximize", minimum=1)
    auto_jitter = jitter is None
    jitter = (
        _auto_jitter(model, index, center)
        if jitter is None
        else check_int(jitter, "jitter", owner="maximize", minimum=0)
    )
    blur_every = check_int(blur_every, "blur_every", owner="maximize", minimum=0)
    learning_rate = check_float(learning_rate, "learning_rate", owner="maximize", minimum=0.0)
    l2 = check_float(l2, "l2", owner="maximize", minimum=0.0)
    blur_sigma = check_float(blur_sigma, "blur_sigma", owner="maximize", minimum=1e-6)
    shape = _input_shape(model)
    probe = layer_outputs(model, np.zeros((1, *shape), np.float32))[target.name]
    units = probe.shape[-1]
    if isinstance(filter, bool) or not isinstance(filter, (int, np.integer)) or not 0 <= filter < units:
        raise ConfigError(f"maximize: `filter` must be in [0, {units}) for layer '{target.name}', got {filter!r}.")
    rng = np.random.default_rng(seed)
    if start is None:
        image = np.float32(0.5) + np.float32(0.02) * rng.standard_normal(shape).astype(np.float32)
    else:
        image = np.asarray(start, dtype=np.float32).reshape(shape).copy()
    first = image.copy()

    def seed_grad(out: np.ndarray) -> np.ndarray:
        grad = np.zeros_like(out)
        if center and out.ndim == 4:
            grad[:, out.shape[1] // 2, out.shape[2] // 2, filter] = 1.0
        else:
            grad[..., filter] = 1.0 / (out[0, ..., 0].size)
        return grad

    def measure(img: np.ndarray) -> float:  # on the image itself, without jitter: what the curve shows
        return _objective(layer_outputs(model, img[None], upto=index)[target.name], filter, center)

    moved = False
    with linear_activation(target):
        history = [measure(image)]
        for step in range(steps):
            dy, dx = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2)) if jitter else (0, 0)
            shifted = np.roll(image, (dy, dx), axis=(0, 1))
            result = run_gradient(model, shifted[None], index, seed_grad)
            grad = np.roll(result.grad_x[0], (-dy, -dx), axis=(0, 1))
            rms = float(np.sqrt(np.mean(grad.astype(np.float64) ** 2)))
            moved = moved or rms > 0
            image = image + np.float32(learning_rate / (rms + 1e-12)) * grad - np.float32(learning_rate * l2) * image
            if blur_every and (step + 1) % blur_every == 0:
                image = blur(image, blur_sigma)
            image = np.clip(image, 0.0, 1.0).astype(np.float32)
            history.append(measure(image))
    before, after = history[0], history[-1]
    bound = _upper_bound(target, index, filter, center)
    note = _curve_note(history, bound, blur_every, zero_gradient=not moved)
    figure = _draw(first, image, history, bound, note, center=center)
    figure.suptitle(
        f"What '{target.name}' filter {filter} responds to: {steps} steps of gradient ascent "
        f"(lr {learning_rate:g}, jitter {jitter}px{' (auto)' if auto_jitter else ''}, L2 {l2:g}, "
        f"blur sigma {blur_sigma:g} every {blur_every})",
        fontsize=8,
    )
    return MaximizeResult(
        figure=figure,
        image=image,
        start=first,
        objective=history,
        activation_before=before,
        activation_after=after,
        layer=target.name,
        filter=int(filter),
        jitter=jitter,
        bound=bound,
        note=note,
    )


def _upper_bound(target: Any, index: int, unit: int, center: bool) -> float | None:
    """The largest pre-activation a first-layer conv unit can reach with pixels in [0, 1], else None.

    The centre unit reads one window of real pixels: its best input puts 1 under every positive weight
    and 0 under every negative one, so the bound is sum(max(w, 0)) + bias.
    """
    kernel = getattr(target, "params", {}).get("kernel")
    if index != 0 or not center or kernel is None or np.ndim(kernel) != 4:
        return None
    bias = target.params.get("bias")
    return float(np.maximum(kernel[..., unit], 0.0).sum() + (0.0 if bias is None else bias[unit]))


def _curve_note(history: list[float], bound: float | None, blur_every: int, *, zero_gradient: bool) -> str:
    """One sentence under the curve: whether it rose, and why not when it did not."""
    before, after, best = history[0], history[-1], max(history)
    if zero_gradient:
        return "flat: the gradient was zero at every step (this unit does not depend on the input here)"
    if after <= before:
        return (
            "did not rise: L2 decay and blur outweigh the gradient steps; try a larger learning_rate, "
            "l2=0 or blur_every=0"
        )
    text = f"rose from {before:.3g} to {after:.3g}"
    tolerance = 0.01 * abs(bound) + 1e-6 if bound is not None else 0.0
    if bound is not None and best >= bound - tolerance:
        reached = next(i for i, v in enumerate(history) if v >= bound - tolerance)
        text += f"; reached the upper bound (within 1%) at step {reached}"
    dips = sum(1 for a, b in itertools.pairwise(history) if b < a - 1e-6)
    if dips and blur_every:
        text += f"; small dips every {blur_every} steps come from the blur"
    return text


def _draw(
    first: np.ndarray, image: np.ndarray, history: list[float], bound: float | None, note: str, *, center: bool
) -> Any:
    figure = new_figure(9.0, 3.4)
    axes = figure.subplots(1, 3)
    where = "centre" if center else "mean"
    show_image(axes[0], first, vmin=0.0, vmax=1.0)
    axes[0].set_title(f"start: {where} pre-activation {history[0]:.3g}", fontsize=8)
    show_image(axes[1], image, vmin=0.0, vmax=1.0)
    axes[1].set_title(f"result: {where} pre-activation {history[-1]:.3g}", fontsize=8)
    ax = axes[2]
    ax.plot(np.arange(len(history)), history, label="objective after each step")
    if bound is not None:
        ax.axhline(bound, color="tab:red", linestyle="--", linewidth=1,
                   label=f"upper bound {bound:.3g}: sum(max(w, 0)) + b")  # fmt: skip
        ax.legend(fontsize=6, loc="lower right")
    ax.set_xlabel("step")
    ax.set_title(f"objective ({where} pre-activation, no jitter)\n" + textwrap.fill(note, 70), fontsize=7)
    ax.grid(alpha=0.3)
    return figure
