"""The Adam update of one parameter as one compiled pass (:class:`convlens.optimizers.Adam`, AdamW after its decay).

``Adam._update`` in NumPy makes twelve passes over a parameter (``m``, ``v``, the step, each a few ufunc calls on
a scratch array). For the small parameters of a small model each pass is call overhead (~0.6 us), and the
whole update runs between two training steps, on one thread, while the other threads wait: LeNet-5's ten
parameters took 147 us of each step in ``optimizer.apply`` (66 us with this kernel; AMD EPYC). Here each value
goes through the same float operations in the same order, in one loop:

    m += (g - m) * c1;  v += (g * g - v) * c2;  p -= m / (sqrt(v) + eps) * alpha

with ``c1 = 1 - beta_1``, ``c2 = 1 - beta_2``, ``eps`` and ``alpha`` rounded to the parameter's dtype first, as
NumPy rounds a Python float that meets a float32 array (NEP 50). No multiply-add is fused (Numba contracts none
without ``fastmath``), so the results are the NumPy update's bits (the tests compare them bit for bit).

Shapes:
    param, grad, m, v: (K,) contiguous, one float dtype
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens.ops.jit import compiled_for, compiled_kernels

__all__ = ["adam_update_jit"]


def _adam_kernel(param: Any, grad: Any, m: Any, v: Any, c1: Any, c2: Any, eps: Any, alpha: Any) -> None:
    for i in range(param.shape[0]):  # pragma: no cover - compiled by Numba
        g = grad[i]
        mi = m[i] + (g - m[i]) * c1
        m[i] = mi
        vi = v[i] + (g * g - v[i]) * c2
        v[i] = vi
        param[i] = param[i] - mi / (np.sqrt(vi) + eps) * alpha


def _kernels() -> tuple[Any, ...]:
    """The compiled kernel; imports Numba on the first call."""
    return compiled_kernels(globals(), [_adam_kernel])


def adam_update_jit(
    param: np.ndarray,
    grad: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    one_minus_beta_1: float,
    one_minus_beta_2: float,
    epsilon: float,
    alpha: float,
) -> bool:
    """Update ``param``, ``m`` and ``v`` in place by the compiled kernel and return True, or return False
    (nothing changed) where it does not run: compiled kernels off for the dtype, arrays of different dtypes or
    shapes, not C-contiguous, or a gradient in its parameter's memory (the caller then runs the NumPy update).

    Shapes:
        param, grad, m, v: any one shape S
    """
    dtype, shape = param.dtype, param.shape
    # (plain comparisons, no generator: this runs once per parameter and step, ~1 us of checks in all)
    if grad.dtype != dtype or m.dtype != dtype or v.dtype != dtype or not compiled_for(dtype):
        return False
    if grad.shape != shape or m.shape != shape or v.shape != shape or not param.flags.writeable:
        return False
    if not (param.flags.c_contiguous and grad.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        return False
    if np.may_share_memory(param, grad):  # (m and v are the optimizer's own arrays)
        return False
    scalar = dtype.type
    _kernels()[0](
        param.reshape(-1),
        grad.reshape(-1),
        m.reshape(-1),
        v.reshape(-1),
        scalar(one_minus_beta_1),
        scalar(one_minus_beta_2),
        scalar(epsilon),
        scalar(alpha),
    )
    return True
