"""float32 tanh: Eigen's rational interpolant, the formula TensorFlow (so Keras) evaluates on the CPU.

NumPy's ``np.tanh`` for float32 has no vector loop on AVX2 machines: 2.6-4 ns an element on the AMD EPYC
(against 0.5 for ``np.maximum``), about a fifth of LeNet-5's inference. Eigen's ``generic_fast_tanh_float``
is a 13/6-degree rational interpolant, evaluated here in float32, element by element:

    c = clamp(x, -9, 9);  tanh(x) ~ c * P(c^2) / Q(c^2), clamped to [-1, 1];  x itself where |x| < 0.0004

Two implementations give the same bits: a Numba kernel (0.8 ns an element, vectorised; no fused
multiply-adds, so each ``*`` and ``+`` rounds as NumPy's does) and its NumPy twin (the same operations in
the same order over 64 KB blocks: 5 ns an element against np.tanh's 4), which runs without Numba or with
``CONVLENS_JIT=0``: a model's outputs do not depend on whether Numba is installed. float64 keeps
``np.tanh`` (the interpolant is a float32 one).

Accuracy (measured over every float32 in [-10.5, 10.5]; ``tests/ops/test_tanh_float32.py`` checks a
sample): within 7 ulp of the exact tanh, odd (``tanh(-x) == -tanh(x)`` bit for bit), ``-0.0`` kept, NaN
passed through, exactly +-1 beyond ``|x| = 9``, never outside [-1, 1]. Not exactly monotone: 0.8% of the
steps between neighbouring floats go down, by at most 4.8e-7 (the fused convolution + max pooling stage
pools before the activation, so between two values that close it can pick another winner than
max-after-tanh; see :mod:`convlens.ops.fused`). Keras's CPU results use this formula with fused
multiply-adds (its bits differ by an ulp or two); PyTorch's (Sleef, 1 ulp) differ by these few ulp.
Subnormal intermediates (inputs below ~1e-19 in magnitude) run several times slower.

Shapes:
    x, out: (K,) float32, ``out`` contiguous
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.ops.jit import compiled_for, compiled_kernels

__all__ = ["BLOCK", "tanh_float32", "tanh_float32_numpy"]

# Eigen's coefficients (MathFunctionsImpl.h, generic_fast_tanh_float) as float32 constants: Numba types a
# global np.float32 as float32, so the whole evaluation stays in float32.
_LIMIT = np.float32(9.0)
_ONE = np.float32(1.0)
_TINY = np.float32(0.0004)
_A = tuple(
    np.float32(a)
    for a in (  # x^13 ... x^1
        -2.76076847742355e-16,
        2.00018790482477e-13,
        -8.60467152213735e-11,
        5.12229709037114e-08,
        1.48572235717979e-05,
        6.37261928875436e-04,
        4.89352455891786e-03,
    )
)
_B = tuple(
    np.float32(b) for b in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)
)  # x^6 ... x^0
_A13, _A11, _A9, _A7, _A5, _A3, _A1 = _A
_B6, _B4, _B2, _B0 = _B

#: Elements per block of the NumPy twin: its ~20 passes run over 64 KB blocks that stay in the L2 cache (4096: 10 ns
#: an element, call overhead; 16384: 5.2; 262144: 4.9; np.tanh 4.0 on the AMD EPYC).
BLOCK = 16384


def _tanh_kernel(x: Any, out: Any) -> None:  # pragma: no cover - compiled by Numba
    for i in range(x.shape[0]):
        v = x[i]
        c = _LIMIT if v > _LIMIT else (-_LIMIT if v < -_LIMIT else v)
        c2 = c * c
        p = c2 * _A13 + _A11
        p = p * c2 + _A9
        p = p * c2 + _A7
        p = p * c2 + _A5
        p = p * c2 + _A3
        p = p * c2 + _A1
        p = p * c
        q = c2 * _B6 + _B4
        q = q * c2 + _B2
        q = q * c2 + _B0
        t = p / q
        t = _ONE if t > _ONE else (-_ONE if t < -_ONE else t)  # (the interpolant reaches 1 + 2 ulp near 9)
        t = v if abs(v) < _TINY else t  # tanh(x) = x in float32 there; the interpolant loses subnormals
        out[i] = v if v != v else t  # NaN in, the same NaN out


def _kernels() -> tuple[Any, ...]:
    """The compiled kernel; imports Numba on the first call. (Compiled with ``error_model='numpy'``, as every
    kernel: Numba's default checks every division for zero, which kept LLVM from vectorising this loop, 3.3
    instead of 0.5 ns an element; ``q >= 0.0049`` here, never zero.)"""
    return compiled_kernels(globals(), [_tanh_kernel])


def tanh_float32_numpy(x: np.ndarray, out: np.ndarray) -> None:
    """The compiled kernel's twin in NumPy: the same float32 operations in the same order (the same bits).

    Shapes:
        x: (K,) float32; out: (K,) float32 contiguous
    """
    size = min(BLOCK, x.size)
    c, c2, p, q = (np.empty(size, np.float32) for _ in range(4))
    keep = np.empty(size, bool)
    for lo in range(0, x.size, BLOCK):
        v, t = x[lo : lo + BLOCK], out[lo : lo + BLOCK]
        n = v.size
        cv, c2v, pv, qv, kv = c[:n], c2[:n], p[:n], q[:n], keep[:n]
        np.clip(v, -_LIMIT, _LIMIT, out=cv)
        np.multiply(cv, cv, out=c2v)
        np.multiply(c2v, _A13, out=pv)
        pv += _A11
        for a in _A[2:]:
            pv *= c2v
            pv += a
        pv *= cv
        np.multiply(c2v, _B6, out=qv)
        qv += _B4
        qv *= c2v
        qv += _B2
        qv *= c2v
        qv += _B0
        np.divide(pv, qv, out=t)
        np.clip(t, -_ONE, _ONE, out=t)
        np.abs(v, out=pv)
        np.less(pv, _TINY, out=kv)  # (False for NaN: see below)
        np.copyto(t, v, where=kv)
        np.not_equal(v, v, out=kv)
        np.copyto(t, v, where=kv)


def tanh_float32(x: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` with tanh(``x``): the compiled kernel where float32 kernels run, else its NumPy twin.

    Shapes:
        x: (K,) float32; out: (K,) float32 contiguous
    """
    if compiled_for(np.float32):
        _kernels()[0](x, out)
    else:
        tanh_float32_numpy(x, out)
