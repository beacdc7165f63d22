"""Batch normalisation over the last (channel) axis, Keras semantics, with exact gradients.

Training normalises with the batch mean and the *biased* batch variance (Keras 3's
``ops.moments``) and updates the moving statistics in place with the same biased variance::

    moving = moving * momentum + batch_statistic * (1 - momentum)

Inference normalises with the moving statistics. ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta``.

Shapes:
    x, y: (..., C) with every leading axis reduced (e.g. (N, H, W, C) or (N, C))
    gamma, beta, moving_mean, moving_variance: (C,)

>>> import numpy as np
>>> x = np.array([[0.0], [2.0]], np.float32)
>>> mm, mv = np.zeros(1, np.float32), np.ones(1, np.float32)
>>> y, _ = batch_norm_forward(x, None, None, mm, mv, epsilon=0.0, training=True)
>>> y[:, 0], mm, mv
(array([-1.,  1.], dtype=float32), array([0.01], dtype=float32), array([1.], dtype=float32))
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from convlens.errors import ConfigTypeError, ShapeError, check_bool, check_float
from convlens.ops._checks import as_float_array, as_optional_float_array

__all__ = [
    "BatchNormCache",
    "batch_norm_backward",
    "batch_norm_forward",
    "inference_affine",
    "inverse_std",
    "update_moving",
]


class BatchNormCache(NamedTuple):
    """What :func:`batch_norm_backward` needs from the forward pass."""

    x_hat: np.ndarray  # normalised input, (M, C) with M the product of the leading axes
    inv_std: np.ndarray  # (C,)
    gamma: np.ndarray | None
    training: bool
    shape: tuple[int, ...]


def _channel_sum(a2d: np.ndarray) -> np.ndarray:
    """Sum over rows of an (M, C) array as a GEMV with ones (BLAS accumulation)."""
    return np.asarray(np.ones(a2d.shape[0], a2d.dtype) @ a2d)


def update_moving(
    moving_mean: np.ndarray, moving_variance: np.ndarray, mean: np.ndarray, var: np.ndarray, momentum: float
) -> None:
    """Keras's running statistics, in place: ``moving = momentum * moving + (1 - momentum) * batch``.

    Shapes:
        every array: (C,).
    """
    moving_mean *= momentum
    moving_mean += (1.0 - momentum) * mean.astype(moving_mean.dtype, copy=False)
    moving_variance *= momentum
    moving_variance += (1.0 - momentum) * var.astype(moving_variance.dtype, copy=False)


def _check_vector(v: np.ndarray | None, name: str, channels: int, owner: str) -> None:
    if v is not None and v.shape != (channels,):
        raise ShapeError(f"{owner}: `{name}` must have shape ({channels},) (one per channel), got {v.shape}.")


def _moving(v: Any, name: str, owner: str) -> np.ndarray:
    """A moving statistic: updated in place, so it must be a writeable float ndarray (not a list or a view)."""
    if not isinstance(v, np.ndarray):
        raise ConfigTypeError(f"{owner}: `{name}` must be a float ndarray (updated in place), got {type(v).__name__}.")
    checked = as_float_array(v, name, owner)
    if checked is not v or not v.flags.writeable:
        raise ConfigTypeError(
            f"{owner}: `{name}` must be a writeable float32 or float64 ndarray (updated in place), got dtype "
            f"{v.dtype}{'' if v.flags.writeable else ' (read-only)'}."
        )
    return v


def inverse_std(var: np.ndarray, epsilon: float, dtype: Any) -> np.ndarray:
    """``1 / sqrt(var + epsilon)`` in ``dtype``: the one way every batch-norm path computes it.

    Shapes:
        var: (C,); returns (C,).
    """
    return (1.0 / np.sqrt(var + epsilon)).astype(dtype, copy=False)


def inference_affine(
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    moving_mean: np.ndarray,
    moving_variance: np.ndarray,
    epsilon: float,
    dtype: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, shift)`` with inference's batch norm ``y = x * scale + shift`` (what a preceding linear layer can
    fold in): scale = gamma / sqrt(moving_variance + epsilon), shift = beta - moving_mean * scale.

    >>> scale, shift = inference_affine(None, np.ones(2), np.array([1.0, 2.0]), np.array([3.0, 0.0]), 1.0, float)
    >>> scale.tolist(), shift.tolist()
    ([0.5, 1.0], [0.5, -1.0])

    Shapes:
        gamma, beta (or None), moving_mean, moving_variance: (C,); returns two (C,) arrays.
    """
    scale = inverse_std(moving_variance.astype(dtype, copy=False), epsilon, dtype)
    if gamma is not None:
        scale = scale * gamma.astype(dtype, copy=False)
    shift = -moving_mean.astype(dtype, copy=False) * scale
    if beta is not None:
        shift += beta.astype(dtype, copy=False)
    return scale, shift


def batch_norm_forward(
    x: Any,
    gamma: np.ndarray | None,
    beta: np.ndarray | None,
    moving_mean: np.ndarray,
    moving_variance: np.ndarray,
    *,
    momentum: float = 0.99,
    epsilon: float = 1e-3,
    training: bool,
) -> tuple[np.ndarray, BatchNormCache]:
    """Normalise ``x`` over every axis but the last; update moving stats in place when training.

    Args:
        x: (..., C) input (channels last).
        gamma: (C,) scale, or None for ``scale=False``.
        beta: (C,) offset, or None for ``center=False``.
        moving_mean: (C,) array, updated in place when ``training``.
        moving_variance: (C,) array, updated in place when ``training``.
        momentum: weight of the old moving statistic.
        epsilon: added to the variance before the square root.
        training: batch statistics (True) or moving statistics (False).

    Returns:
        ``(y, cache)``: y has x's shape and dtype.

    Shapes:
        x, y: (..., C); gamma, beta, moving_mean, moving_variance: (C,).
    """
    owner = "batch_norm_forward"
    x = as_float_array(x, "x", owner)
    momentum = check_float(momentum, "momentum", owner=owner, minimum=0.0, maximum=1.0)
    epsilon = check_float(epsilon, "epsilon", owner=owner, minimum=0.0)
    training = check_bool(training, "training", owner=owner)
    if x.ndim < 1:
        raise ShapeError(f"{owner}: `x` must have a channel axis, got a scalar.")
    channels = x.shape[-1]
    gamma = as_optional_float_array(gamma, "gamma", owner)
    beta = as_optional_float_array(beta, "beta", owner)
    moving_mean = _moving(moving_mean, "moving_mean", owner)
    moving_variance = _moving(moving_variance, "moving_variance", owner)
    for name, v in (("gamma", gamma), ("beta", beta), ("moving_mean", moving_mean)):
        _check_vector(v, name, channels, owner)
    _check_vector(moving_variance, "moving_variance", channels, owner)
    if channels == 0:
        raise ShapeError(f"{owner}: `x` must have at least one channel, got shape {x.shape}.")
    dtype = x.dtype
    x2d = x.reshape(-1, channels)
    if training:
        rows = x2d.shape[0]
        if rows == 0:
            raise ShapeError(f"{owner}: training needs at least one value per channel, got shape {x.shape}.")
        mean = _channel_sum(x2d) / rows
        centered = x2d - mean
        var = _channel_sum(centered * centered) / rows
        update_moving(moving_mean, moving_variance, mean, var, momentum)
    else:
        mean = moving_mean.astype(dtype, copy=False)
        var = moving_variance.astype(dtype, copy=False)
        centered = x2d - mean
    inv_std = inverse_std(var, epsilon, dtype)
    x_hat = centered * inv_std  # centered is a fresh array in both branches
    y = x_hat * gamma.astype(dtype, copy=False) if gamma is not None else x_hat.copy()
    if beta is not None:
        y += beta.astype(dtype, copy=False)
    cache = BatchNormCache(x_hat, inv_std, gamma, bool(training), x.shape)
    return y.reshape(x.shape), cache


def batch_norm_backward(grad_out: Any, cache: BatchNormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm_forward`: ``(grad_x, grad_gamma, grad_beta)``.

    In training mode the batch statistics depend on ``x``:
    ``grad_x = inv_std / M * (M * g_hat - sum(g_hat) - x_hat * sum(g_hat * x_hat))`` with
    ``g_hat = grad_out * gamma`` and M values per channel; in inference mode the statistics are
    constants and ``grad_x = g_hat * inv_std``. ``grad_gamma``/``grad_beta`` are returned even
    when the forward had no gamma/beta (the gradient they would have).

    Shapes:
        grad_out, grad_x: (..., C); grad_gamma, grad_beta: (C,).
    """
    if not isinstance(cache, BatchNormCache):
        raise ConfigTypeError(
            f"batch_norm_backward: `cache` must be the BatchNormCache batch_norm_forward returned, got "
            f"{type(cache).__name__}."
        )
    grad_out = as_float_array(grad_out, "grad_out", "batch_norm_backward")
    if grad_out.shape != cache.shape:
        raise ShapeError(
            f"batch_norm_backward: `grad_out` must have the input shape {cache.shape}, got {grad_out.shape}."
        )
    x_hat = cache.x_hat
    dtype = x_hat.dtype
    g2d = grad_out.reshape(x_hat.shape).astype(dtype, copy=False)
    grad_beta = _channel_sum(g2d)
    grad_gamma = _channel_sum(g2d * x_hat)
    scale = cache.inv_std if cache.gamma is None else cache.inv_std * cache.gamma.astype(dtype, copy=False)
    if not cache.training:
        return (g2d * scale).reshape(cache.shape), grad_gamma, grad_beta
    rows = x_hat.shape[0]
    # g_hat = g * gamma, so sums of g_hat are gamma times the sums of g.
    grad_x = g2d - (grad_beta / rows) - x_hat * (grad_gamma / rows)
    grad_x *= scale
    return grad_x.reshape(cache.shape), grad_gamma, grad_beta
