"""Slow, obviously-correct loop references for the element-wise, dense, batch-norm and loss ops.

Everything here works value by value with the ``math`` module in Python floats (float64), so
it shares no code and no vectorisation tricks with ``convlens``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# ----- scalar activations ---------------------------------------------------------------------------


def _sigmoid(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


SCALAR_ACTIVATIONS: dict[str, Callable[[float], float]] = {
    "linear": lambda v: v,
    "relu": lambda v: v if v > 0 else 0.0,
    "relu6": lambda v: min(max(v, 0.0), 6.0),
    "leaky_relu": lambda v: v if v >= 0 else 0.2 * v,
    "elu": lambda v: v if v > 0 else math.exp(v) - 1.0,
    "selu": lambda v: 1.0507009873554805 * (v if v > 0 else 1.6732632423543772 * (math.exp(v) - 1.0)),
    "gelu": lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))),
    "sigmoid": _sigmoid,
    "tanh": math.tanh,
    "softplus": lambda v: max(v, 0.0) + math.log1p(math.exp(-abs(v))),
    "silu": lambda v: v * _sigmoid(v),
}


def elementwise(fn: Callable[[float], float], x: np.ndarray) -> np.ndarray:
    """Apply a scalar function to every value, one at a time."""
    out = np.empty(x.shape, np.float64)
    for index in np.ndindex(x.shape):
        out[index] = fn(float(x[index]))
    return out


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, row by row."""
    out = np.empty(x.shape, np.float64)
    for index in np.ndindex(x.shape[:-1]):
        row = [float(v) for v in x[index]]
        top = max(row)
        exps = [math.exp(v - top) for v in row]
        total = sum(exps)
        out[index] = [e / total for e in exps]
    return out


# ----- dense and batch norm ----------------------------------------------------------------------------


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Three nested loops over rows, units and inputs."""
    rows = x.reshape(-1, x.shape[-1])
    depth, units = kernel.shape
    out = np.zeros((rows.shape[0], units), np.float64)
    for r in range(rows.shape[0]):
        for u in range(units):
            acc = 0.0 if bias is None else float(bias[u])
            for d in range(depth):
                acc += float(rows[r, d]) * float(kernel[d, u])
            out[r, u] = acc
    return out.reshape(*x.shape[:-1], units)


def batch_norm(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray | None = None,
    var: np.ndarray | None = None,
    epsilon: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel loops; batch statistics (biased variance) when ``mean``/``var`` are None."""
    channels = x.shape[-1]
    rows = x.reshape(-1, channels)
    count = rows.shape[0]
    means = np.zeros(channels)
    variances = np.zeros(channels)
    out = np.zeros(rows.shape)
    for c in range(channels):
        values = [float(v) for v in rows[:, c]]
        m = sum(values) / count if mean is None else float(mean[c])
        v = sum((val - m) ** 2 for val in values) / count if var is None else float(var[c])
        means[c], variances[c] = m, v
        for r in range(count):
            out[r, c] = float(gamma[c]) * (values[r] - m) / math.sqrt(v + epsilon) + float(beta[c])
    return out.reshape(x.shape), means, variances


def zero_pad_2d(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """Copy every pixel into a zero canvas, one at a time."""
    (pt, pb), (pl, pr) = pads
    n, h, w, c = x.shape
    out = np.zeros((n, h + pt + pb, w + pl + pr, c), x.dtype)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                for k in range(c):
                    out[b, pt + i, pl + j, k] = x[b, i, j, k]
    return out


# ----- losses (mean over samples) ------------------------------------------------------------------------

EPS = 1e-7


def _clip(p: float) -> float:
    return min(max(p, EPS), 1.0 - EPS)


def sparse_cce(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean of -log(clip(p[label] / sum(p)))."""
    total = 0.0
    rows = probs.reshape(-1, probs.shape[-1])
    flat = labels.reshape(-1)
    for r in range(rows.shape[0]):
        s = sum(float(v) for v in rows[r])
        total += -math.log(_clip(float(rows[r, int(flat[r])]) / s))
    return total / rows.shape[0]


def cce(target: np.ndarray, probs: np.ndarray) -> float:
    """Mean over rows of -sum(t * log(clip(p / sum(p))))."""
    rows = probs.reshape(-1, probs.shape[-1])
    trows = target.reshape(rows.shape)
    total = 0.0
    for r in range(rows.shape[0]):
        s = sum(float(v) for v in rows[r])
        for k in range(rows.shape[1]):
            total += -float(trows[r, k]) * math.log(_clip(float(rows[r, k]) / s))
    return total / rows.shape[0]


def bce(target: np.ndarray, probs: np.ndarray) -> float:
    """Mean over every value of -(t log p + (1 - t) log(1 - p)), p clipped."""
    total = 0.0
    for index in np.ndindex(probs.shape):
        p, t = _clip(float(probs[index])), float(target[index])
        total += -(t * math.log(p) + (1.0 - t) * math.log(1.0 - p))
    return total / probs.size


def bce_logits(target: np.ndarray, logits: np.ndarray) -> float:
    """Mean over every value of the logistic loss, via log(1 + exp(-|z|))."""
    total = 0.0
    for index in np.ndindex(logits.shape):
        z, t = float(logits[index]), float(target[index])
        total += max(z, 0.0) - z * t + math.log1p(math.exp(-abs(z)))
    return total / logits.size


def softmax_ce_logits(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean of logsumexp(z) - z[label]."""
    rows = logits.reshape(-1, logits.shape[-1])
    flat = labels.reshape(-1)
    total = 0.0
    for r in range(rows.shape[0]):
        row = [float(v) for v in rows[r]]
        top = max(row)
        lse = top + math.log(sum(math.exp(v - top) for v in row))
        total += lse - row[int(flat[r])]
    return total / rows.shape[0]


def mse(target: np.ndarray, pred: np.ndarray) -> float:
    """Mean of squared differences."""
    total = 0.0
    for index in np.ndindex(pred.shape):
        total += (float(pred[index]) - float(target[index])) ** 2
    return total / pred.size


# ----- finite differences ---------------------------------------------------------------------------------


def numeric_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``x`` (modified in place, restored)."""
    grad = np.zeros(x.shape, np.float64)
    for index in np.ndindex(x.shape):
        old = float(x[index])
        x[index] = old + eps
        up = f()
        x[index] = old - eps
        down = f()
        x[index] = old
        grad[index] = (up - down) / (2 * eps)
    return grad
