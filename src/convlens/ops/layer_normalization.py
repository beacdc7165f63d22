"""Layer normalisation (Keras's ``LayerNormalization``): each sample normalised over ``axes``.

``y = gamma * (x - mean) / sqrt(var + epsilon) + beta`` with the mean and the biased variance taken over
``axes`` for each position of the other axes; ``gamma`` and ``beta`` have the normalised axes' sizes. Unlike
batch normalisation, training and inference compute the same thing.

Backward, with ``xhat = (x - mean) / sqrt(var + eps)`` and ``g = grad_out * gamma``:
``grad_x = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)`` (means over ``axes``);
``grad_gamma = sum(grad_out * xhat)``, ``grad_beta = sum(grad_out)`` over the other axes.

Shapes:
    x, y, grad_out, grad_x: any shape (N, ...); gamma, beta: the sizes of ``axes``.

>>> import numpy as np
>>> y, _ = layer_norm_forward(np.array([[1.0, 3.0]]), None, None, (1,), 0.0)
>>> y
array([[-1.,  1.]])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["LayerNormCache", "layer_norm_backward", "layer_norm_forward"]


class LayerNormCache(NamedTuple):
    """What the backward pass needs: the normalised input, 1 / std, gamma (or None) and the axes."""

    xhat: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray | None
    axes: tuple[int, ...]


def _broadcast(v: np.ndarray | None, ndim: int, axes: tuple[int, ...]) -> np.ndarray | None:
    if v is None:
        return None
    shape = [1] * ndim
    for axis, size in zip(axes, v.shape, strict=True):
        shape[axis] = size
    return v.reshape(shape)


def layer_norm_forward(
    x: np.ndarray, gamma: np.ndarray | None, beta: np.ndarray | None, axes: tuple[int, ...], epsilon: float
) -> tuple[np.ndarray, LayerNormCache]:
    """Normalise ``x`` over ``axes`` (non-negative, sorted), then scale by ``gamma`` and shift by ``beta``."""
    mean = np.mean(x, axis=axes, keepdims=True)
    centred = x - mean
    var = np.mean(centred * centred, axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + epsilon)
    xhat = centred * inv_std
    g, b = _broadcast(gamma, x.ndim, axes), _broadcast(beta, x.ndim, axes)
    y = xhat if g is None else xhat * g
    if b is not None:
        y = y + b
    return np.asarray(y, dtype=x.dtype), LayerNormCache(xhat, inv_std, g, axes)


def layer_norm_backward(
    grad_out: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(grad_x, grad_gamma, grad_beta)``; ``grad_gamma`` is None when there is no gamma.

    Shapes:
        grad_gamma, grad_beta: the sizes of ``axes`` (grad_beta is computed even without a beta).
    """
    xhat, inv_std, gamma, axes = cache
    others = tuple(i for i in range(grad_out.ndim) if i not in axes)
    shape = tuple(grad_out.shape[a] for a in axes)
    grad_beta = np.sum(grad_out, axis=others).reshape(shape)
    grad_gamma = None if gamma is None else np.sum(grad_out * xhat, axis=others).reshape(shape)
    g = grad_out if gamma is None else grad_out * gamma
    grad_x = (g - np.mean(g, axis=axes, keepdims=True) - xhat * np.mean(g * xhat, axis=axes, keepdims=True)) * inv_std
    return np.asarray(grad_x, dtype=grad_out.dtype), grad_gamma, grad_beta
