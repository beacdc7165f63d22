"""Element-wise activations (Keras names and defaults), each beside its backward.

Every function keeps the input's floating dtype (float32 in, float32 out) and raises no
floating-point warnings for large inputs (``sigmoid(±1e4)`` is exactly 0 or 1).
Derivatives at kinks follow TensorFlow and PyTorch: ``relu'(0) = 0``.

Shapes:
    x, y, grad_out, grad_x: any shape, all the same; softmax normalises along ``axis``.

>>> import numpy as np
>>> act = get_activation("relu")
>>> act.forward(np.array([-1.0, 0.0, 2.0], np.float32))
array([0., 0., 2.], dtype=float32)
>>> get_activation(None).name
'linear'
"""

from __future__ import annotations

import math
import mmap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from convlens.errors import ConfigError, check_bool, check_float
from convlens.ops._checks import as_float_array, check_axis, check_same_shape
from convlens.ops.parallel import MIN_SPLIT_BYTES, num_threads, parallel_ranges
from convlens.ops.tanh_float32 import tanh_float32

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "elu",
    "erf",
    "erfc",
    "gelu",
    "gelu_backward",
    "get_activation",
    "leaky_relu",
    "leaky_relu_backward",
    "linear",
    "relu",
    "relu_backward",
    "relu_inplace",
    "selu",
    "sigmoid",
    "sigmoid_backward",
    "silu",
    "softmax",
    "softmax_backward",
    "softplus",
    "tanh",
    "tanh_backward",
]

Array = np.ndarray

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _float(x: Any, owner: str, name: str = "x") -> Array:
    """The one input check of every activation (see :func:`convlens.ops._checks.as_float_array`)."""
    return as_float_array(x, name, owner)


def _in_pieces(compute: Callable[..., Any], *arrays: Array) -> Array:
    """``compute(*pieces, out=piece of the result)`` over contiguous pieces of the flattened ``arrays`` (one
    shape), one piece per thread when they are large: NumPy runs transcendental ufuncs (~1 ns an element here)
    on one core. Element-wise, so the bits do not depend on the pieces.
    """
    first = arrays[0]
    out = np.empty(first.shape, np.result_type(*arrays))
    if num_threads() > 1 and first.nbytes >= MIN_SPLIT_BYTES and all(a.flags.c_contiguous for a in arrays):
        flats, flat_out = [a.reshape(-1) for a in arrays], out.reshape(-1)
        parallel_ranges(
            lambda lo, hi: compute(*(a[lo:hi] for a in flats), out=flat_out[lo:hi]), first.size, first.nbytes
        )
    else:
        compute(*arrays, out=out)
    return out


def _tanh_backward_into(g: Array, y: Array, out: Array) -> None:
    np.multiply(y, y, out=out)
    np.subtract(1.0, out, out=out)
    np.multiply(g, out, out=out)


def _pair(grad_out: Any, other: Any, owner: str, name: str) -> tuple[Array, Array]:
    """A backward's ``grad_out`` and its saved ``x`` or ``y``: float arrays of one shape."""
    grad_out = as_float_array(grad_out, "grad_out", owner)
    other = as_float_array(other, name, owner)
    check_same_shape(other, grad_out, (name, "grad_out"), owner)
    return grad_out, other


# ----- piecewise-linear -------------------------------------------------------------------------
def linear(x: Array) -> Array:
    """Identity: returns ``x`` itself (no copy) once it is a float array."""
    return _float(x, "linear")


def relu(x: Array, out: Array | None = None) -> Array:
    """``max(x, 0)``; pass ``out=x`` to work in place."""
    x = _float(x, "relu")
    if out is x:
        return relu_inplace(x)
    return np.asarray(np.maximum(x, 0, out=out))


#: Below this many bytes ``np.maximum(x, 0)`` is left as it is (the zeros' set-up would cost more than it saves).
ZEROS_MIN_BYTES = 64 << 10
_zero_pages: np.ndarray = np.zeros(0, np.uint8)
_zero_pages_lock = threading.Lock()


def _zeros_like(x: np.ndarray) -> np.ndarray:
    """A read-only array of zeros shaped like ``x``, a view of anonymous memory that is never written: every page
    is the kernel's one zero page, so it holds no memory of its own and its reads come from cache."""
    global _zero_pages
    zeros = _zero_pages
    if zeros.size < x.nbytes:
        with _zero_pages_lock:
            if _zero_pages.size < x.nbytes:
                size = max(x.nbytes, 2 * _zero_pages.size)
                pages = np.frombuffer(mmap.mmap(-1, size), np.uint8)
                pages.flags.writeable = False
                _zero_pages = pages
            zeros = _zero_pages
    return zeros[: x.nbytes].view(x.dtype).reshape(x.shape)


def relu_inplace(x: np.ndarray) -> np.ndarray:
    """``x[...] = max(x, 0)``, bit for bit ``np.maximum(x, 0, out=x)`` (NaN stays NaN, -0 becomes +0); returns ``x``.

    NumPy's ``maximum`` against a scalar is not vectorised on the AMD EPYC here (NumPy 2.4): 180 us for 1.35 MB of
    float32 (the depthwise-separable model's widest activation in a 32-image piece), 4x an add's time; against a
    whole array of zeros it is (~45 us). The zeros are :func:`_zeros_like`'s, which cost no memory.

    >>> relu_inplace(np.array([-2.0, -0.0, 3.0, np.nan])).tolist()
    [0.0, 0.0, 3.0, nan]
    """
    if x.nbytes < ZEROS_MIN_BYTES or not x.flags.c_contiguous:
        return np.maximum(x, 0, out=x)
    return np.maximum(x, _zeros_like(x), out=x)


def relu_backward(grad_out: Array, y: Array) -> Array:
    """Gradient of :func:`relu` from its output ``y`` (0 at x == 0, as TF and torch)."""
    grad_out, y = _pair(grad_out, y, "relu_backward", "y")
    return np.asarray(np.multiply(grad_out, y > 0, dtype=np.result_type(grad_out, y)))


def leaky_relu(x: Array, negative_slope: float = 0.2) -> Array:
    """``x`` for x >= 0, ``negative_slope * x`` otherwise (Keras ``activations.leaky_relu`` default 0.2)."""
    x = _float(x, "leaky_relu")
    slope = check_float(negative_slope, "negative_slope", owner="leaky_relu")
    return np.where(x >= 0, x, x * x.dtype.type(slope))


def leaky_relu_backward(grad_out: Array, x: Array, negative_slope: float = 0.2) -> Array:
    """Gradient of :func:`leaky_relu` (slope 1 at x == 0)."""
    grad_out, x = _pair(grad_out, x, "leaky_relu_backward", "x")
    slope = check_float(negative_slope, "negative_slope", owner="leaky_relu_backward")
    return np.where(x >= 0, grad_out, grad_out * grad_out.dtype.type(slope))


def elu(x: Array, alpha: float = 1.0) -> Array:
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""
    x = _float(x, "elu")
    alpha = check_float(alpha, "alpha", owner="elu")
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))


def selu(x: Array) -> Array:
    """Scaled ELU with Keras's constants (alpha 1.67326..., scale 1.05070...)."""
    y = elu(x, _SELU_ALPHA)
    return y * y.dtype.type(_SELU_SCALE)


# ----- smooth ---------------------------------------------------------------------------------------
def sigmoid(x: Array) -> Array:
    """``1 / (1 + exp(-x))`` without overflow: uses ``exp(-|x|)`` only."""
    x = _float(x, "sigmoid")
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1.0, e) / (1.0 + e))


def sigmoid_backward(grad_out: Array, y: Array) -> Array:
    """Gradient of :func:`sigmoid` from its output: ``grad * y * (1 - y)``."""
    grad_out, y = _pair(grad_out, y, "sigmoid_backward", "y")
    return np.asarray(grad_out * (y * (1.0 - y)))


def _tanh_float32_into(x: Array, out: Array) -> None:
    tanh_float32(np.ascontiguousarray(x).reshape(-1), out.reshape(-1))


def tanh(x: Array) -> Array:
    """Hyperbolic tangent (large arrays split over the threads). float32: Eigen's rational interpolant, as
    TensorFlow's CPU kernel, within 7 ulp (:mod:`convlens.ops.tanh_float32`); float64: ``np.tanh``."""
    x = _float(x, "tanh")
    return _in_pieces(_tanh_float32_into if x.dtype == np.float32 else np.tanh, x)


def tanh_backward(grad_out: Array, y: Array) -> Array:
    """Gradient of :func:`tanh` from its output: ``grad * (1 - y**2)``."""
    grad_out, y = _pair(grad_out, y, "tanh_backward", "y")
    return _in_pieces(_tanh_backward_into, grad_out, y)


def softplus(x: Array) -> Array:
    """``log(1 + exp(x))``, computed as ``logaddexp(0, x)`` (no overflow)."""
    x = _float(x, "softplus")
    return np.asarray(np.logaddexp(x.dtype.type(0), x))


def silu(x: Array) -> Array:
    """``x * sigmoid(x)`` (Keras ``silu`` / ``swish``)."""
    x = _float(x, "silu")
    return np.asarray(x * sigmoid(x))


def softmax(x: Array, axis: int = -1) -> Array:
    """Softmax along ``axis``, shifted by the max so no ``exp`` overflows (an empty axis gives an empty result)."""
    x = _float(x, "softmax")
    axis = check_axis(axis, max(x.ndim, 1), "softmax")
    if x.size == 0 or x.ndim == 0:
        return np.ones_like(x) if x.ndim == 0 else x.copy()
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    e /= np.sum(e, axis=axis, keepdims=True)
    return np.asarray(e)


def softmax_backward(grad_out: Array, y: Array, axis: int = -1) -> Array:
    """Gradient of :func:`softmax` from its output: ``y * (g - sum(g * y))``."""
    grad_out, y = _pair(grad_out, y, "softmax_backward", "y")
    axis = check_axis(axis, max(y.ndim, 1), "softmax_backward")
    if y.ndim == 0:
        return np.zeros_like(y)
    return np.asarray(y * (grad_out - np.sum(grad_out * y, axis=axis, keepdims=True)))


# ----- erf and gelu -------------------------------------------------------------------------------------
# W. J. Cody's rational approximations (SPECFUN CALERF, netlib), ~1e-16 relative in float64.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03)
_ERF_A4 = 1.85777706184603153e-1
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERFC_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
)
_ERFC_C8 = 2.15311535474403846e-8
_ERFC_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
_ERFC_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
)
_ERFC_P5 = 1.63153871373020978e-2
_ERFC_Q = (
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)


def _ratio(z: Array, top: float, num: tuple[float, ...], den: tuple[float, ...]) -> tuple[Array, Array]:
    """Cody's nested evaluation: returns (numerator, denominator) before their last constant."""
    xnum = top * z
    xden = z.copy()
    for a, b in zip(num[:-1], den[:-1], strict=True):
        xnum = (xnum + a) * z
        xden = (xden + b) * z
    return xnum + num[-1], xden + den[-1]


def _erfc_abs(y: Array) -> Array:
    """erfc(y) for y >= 0, float64, on three ranges (|y| <= 0.46875, <= 4, > 4)."""
    out = np.empty_like(y)
    small = y <= 0.46875
    mid = ~small & (y <= 4.0)
    large = y > 4.0
    if small.any():
        ys = y[small]
        num, den = _ratio(ys * ys, _ERF_A4, _ERF_A, _ERF_B)
        out[small] = 1.0 - ys * num / den
    if mid.any():
        ym = y[mid]
        num, den = _ratio(ym, _ERFC_C8, _ERFC_C, _ERFC_D)
        out[mid] = _exp_neg_square(ym) * num / den
    if large.any():
        yl = np.minimum(y[large], 27.0)  # erfc underflows to 0 in float64 beyond 26.6
        z = 1.0 / (yl * yl)
        num, den = _ratio(z, _ERFC_P5, _ERFC_P, _ERFC_Q)
        out[large] = _exp_neg_square(yl) * (_INV_SQRT_PI - z * num / den) / yl
    return out


def _exp_neg_square(y: Array) -> Array:
    """``exp(-y*y)`` with Cody's split of y*y for accuracy in the tail."""
    head = np.trunc(y * 16.0) / 16.0
    return np.exp(-head * head) * np.exp(-(y - head) * (y + head))


def erfc(x: Array) -> Array:
    """Complementary error function, accurate to ~1e-15 relative (computed in float64).

    >>> float(erfc(np.array(0.0)))
    1.0
    """
    x = _float(x, "erfc")
    x64 = np.asarray(x, dtype=np.float64)
    result = _erfc_abs(np.abs(x64))
    result = np.where(x64 < 0, 2.0 - result, result)
    return result.astype(x.dtype, copy=False)


def erf(x: Array) -> Array:
    """Error function (``1 - erfc``, except near 0 where erf is computed directly)."""
    x = _float(x, "erf")
    x64 = np.asarray(x, dtype=np.float64)
    y = np.abs(x64)
    result = 1.0 - _erfc_abs(y)
    small = y <= 0.46875
    if small.any():
        ys = y[small]
        num, den = _ratio(ys * ys, _ERF_A4, _ERF_A, _ERF_B)
        result[small] = ys * num / den
    return (np.sign(x64) * result).astype(x.dtype, copy=False)


def gelu(x: Array, approximate: bool = False) -> Array:
    """GELU: exact ``x * Phi(x)`` (Keras default) or the tanh approximation.

    Exact form: ``0.5 * x * erfc(-x / sqrt(2))``; approximate:
    ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``.
    """
    x = _float(x, "gelu")
    if check_bool(approximate, "approximate", owner="gelu"):
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return np.asarray(0.5 * x * (1.0 + np.tanh(inner)))
    return np.asarray((0.5 * x * erfc(-x * _SQRT_HALF)).astype(x.dtype, copy=False))


def gelu_backward(grad_out: Array, x: Array, approximate: bool = False) -> Array:
    """Gradient of :func:`gelu` with respect to ``x``."""
    grad_out, x = _pair(grad_out, x, "gelu_backward", "x")
    if check_bool(approximate, "approximate", owner="gelu_backward"):
        c = math.sqrt(2.0 / math.pi)
        t = np.tanh(c * (x + 0.044715 * x * x * x))
        d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * x * x)
        return np.asarray(grad_out * d)
    cdf = 0.5 * erfc(-x * _SQRT_HALF)
    pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    return np.asarray(grad_out * (cdf + x * pdf))


# ----- registry ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Activation:
    """A named activation: ``forward(x) -> y`` and ``backward(grad_out, x, y) -> grad_x``.

    ``backward`` may read ``x`` or ``y``, whichever is cheaper; callers keep both.
    """

    name: str
    forward: Callable[[Array], Array]
    backward: Callable[[Array, Array, Array], Array]

    @property
    def is_identity(self) -> bool:
        """Whether forward returns its input unchanged."""
        return self.name == "linear"


def _elu_backward(g: Array, x: Array, y: Array) -> Array:
    return np.where(x > 0, g, g * (y + 1.0))


def _selu_backward(g: Array, x: Array, y: Array) -> Array:
    return np.where(x > 0, g * _SELU_SCALE, g * (y + _SELU_SCALE * _SELU_ALPHA))


def _silu_backward(g: Array, x: Array, y: Array) -> Array:
    s = sigmoid(x)
    return g * (s * (1.0 + x * (1.0 - s)))


def _relu6_backward(g: Array, x: Array, y: Array) -> Array:
    return np.asarray(np.multiply(g, (x > 0) & (x < 6), dtype=np.result_type(g, x)))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("linear", linear, lambda g, x, y: g),
        Activation("relu", relu, lambda g, x, y: relu_backward(g, y)),
        Activation("relu6", lambda x: np.clip(_float(x, "relu6"), 0, 6), _relu6_backward),
        Activation("leaky_relu", leaky_relu, lambda g, x, y: leaky_relu_backward(g, x)),
        Activation("elu", elu, _elu_backward),
        Activation("selu", selu, _selu_backward),
        Activation("gelu", gelu, lambda g, x, y: gelu_backward(g, x)),
        Activation("sigmoid", sigmoid, lambda g, x, y: sigmoid_backward(g, y)),
        Activation("tanh", tanh, lambda g, x, y: tanh_backward(g, y)),
        Activation("softmax", softmax, lambda g, x, y: softmax_backward(g, y)),
        Activation("softplus", softplus, lambda g, x, y: g * sigmoid(x)),
        Activation("silu", silu, _silu_backward),
    )
}
_ALIASES = {"swish": "silu", "identity": "linear"}


def get_activation(identifier: Any, *, owner: str | None = None) -> Activation:
    """Look up an activation by Keras name (``None`` and ``'linear'`` give the identity).

    Raises:
        ConfigError: for an unknown name, listing the valid ones.
    """
    if identifier is None:
        return ACTIVATIONS["linear"]
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        key = _ALIASES.get(key, key)
        if key in ACTIVATIONS:
            return ACTIVATIONS[key]
    prefix = f"{owner}: " if owner else ""
    names = ", ".join(repr(n) for n in sorted([*ACTIVATIONS, *_ALIASES]))
    raise ConfigError(f"{prefix}unknown `activation` {identifier!r}; choose one of {names} (or None).")
