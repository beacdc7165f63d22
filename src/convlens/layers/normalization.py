"""``BatchNormalization`` and ``LayerNormalization`` with Keras 3 arguments, weights and semantics.

Weights in ``get_weights`` order: ``[gamma, beta, moving_mean, moving_variance]`` (gamma/beta
only when ``scale``/``center``); gamma and beta are trainable (``params``), the moving
statistics are ``state``. As Keras 3, batch statistics are used only when
``training and trainable``; a frozen layer (``trainable=False``) always runs in inference mode.

Shapes:
    x, out: (N, ..., C, ...) with C at ``axis`` (default the last); every weight: (C,)

>>> import numpy as np
>>> bn = BatchNormalization(name="bn")
>>> bn.build((None, 28, 28, 32), np.random.default_rng(0)); bn.count_params()  # 4 * 32
128
"""

from __future__ import annotations

from typing import Any

import numpy as np

from convlens import initializers
from convlens.errors import ConfigError, ShapeError, StateError, check_bool, check_float, check_int
from convlens.layers.base import Layer, Shape, register
from convlens.ops.batch_norm_plans import BatchNormPlan
from convlens.ops.layer_normalization import LayerNormCache, layer_norm_backward, layer_norm_forward
from convlens.ops.normalization import inference_affine

__all__ = ["BatchNormalization", "LayerNormalization"]


def _init_name(identifier: Any) -> Any:
    return identifier.lower() if isinstance(identifier, str) else getattr(identifier, "__name__", None)


@register
class BatchNormalization(Layer):
    """Normalise each channel with batch statistics while training, moving statistics otherwise.

    ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta``; the moving statistics follow
    ``moving = moving * momentum + batch * (1 - momentum)`` with the biased batch variance.
    """

    weight_names = ("gamma", "beta")
    state_names = ("moving_mean", "moving_variance")
    min_ndim = 2

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 0.001,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        self.set_weight_options("beta", beta_regularizer, beta_constraint)
        self.set_weight_options("gamma", gamma_regularizer, gamma_constraint)
        self.axis = check_int(axis, "axis", owner=owner)
        self.momentum = check_float(momentum, "momentum", owner=owner, minimum=0.0, maximum=1.0)
        self.epsilon = check_float(epsilon, "epsilon", owner=owner, minimum=0.0)
        self.center = check_bool(center, "center", owner=owner)
        self.scale = check_bool(scale, "scale", owner=owner)
        names = (
            "beta_initializer",
            "gamma_initializer",
            "moving_mean_initializer",
            "moving_variance_initializer",
        )
        given = (beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer)
        self._initializers = {n: initializers.get(v, owner=owner, name=n) for n, v in zip(names, given, strict=True)}
        self._initializer_ids = {n: _init_name(v) for n, v in zip(names, given, strict=True)}
        self._cache: tuple[BatchNormPlan, tuple[int, ...]] | None = None
        self._plans: dict[bool, BatchNormPlan] = {}
        self._channel_axis: int | None = None

    def _resolve_axis(self, ndim: int) -> int:
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ShapeError(f"{self!r}: `axis` {self.axis} is not a non-batch axis of a {ndim}-D input.")
        return self.axis % ndim

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        axis = self._resolve_axis(len(input_shape))
        if input_shape[axis] is None:
            raise ShapeError(f"{self!r}: the channel axis {self.axis} must be known, got shape {input_shape}.")
        return input_shape

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape, rng)
        rng = rng if rng is not None else np.random.default_rng()
        self._channel_axis = self._resolve_axis(len(input_shape))
        channels = int(input_shape[self._channel_axis])  # type: ignore[arg-type]
        inits = self._initializers
        if self.scale:
            self.make_weight("gamma", inits["gamma_initializer"], (channels,), rng)
        if self.center:
            self.make_weight("beta", inits["beta_initializer"], (channels,), rng)
        for name in self.state_names:
            self.make_weight(name, inits[f"{name}_initializer"], (channels,), rng, trainable=False)

    def _to_last(self, a: np.ndarray) -> np.ndarray:
        axis = self._channel_axis
        return a if axis is None or axis == a.ndim - 1 else np.moveaxis(a, axis, -1)

    def _from_last(self, a: np.ndarray) -> np.ndarray:
        axis = self._channel_axis
        if axis is None or axis == a.ndim - 1:
            return a
        return np.ascontiguousarray(np.moveaxis(a, -1, axis))

    def plan(self, relu: bool = False) -> BatchNormPlan:
        """The layer's :class:`~convlens.ops.batch_norm_plans.BatchNormPlan` (``relu``: fused with a ReLU after it)."""
        plan = self._plans.get(relu)
        if plan is None:
            plan = self._plans[relu] = BatchNormPlan(self.dtype, relu, owner=repr(self))
        return plan

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.forward_fused(x, training)

    def inference_affine(self) -> tuple[np.ndarray, np.ndarray]:
        """``(scale, shift)`` (C,) with this layer's inference output ``x * scale + shift`` (moving statistics)."""
        return inference_affine(
            self.params.get("gamma"),
            self.params.get("beta"),
            self.state["moving_mean"],
            self.state["moving_variance"],
            self.epsilon,
            self.dtype,
        )

    def forward_fused(self, x: np.ndarray, training: bool = False, relu: bool = False) -> np.ndarray:
        """:meth:`forward`, followed by ReLU when ``relu`` (a fused ``BatchNormalization -> ReLU`` pair)."""
        x = np.asarray(x, dtype=self.dtype)
        last = self._to_last(x)
        plan = self.plan(relu)
        y = plan.forward(
            last.reshape(-1, last.shape[-1]),
            self.params.get("gamma"),
            self.params.get("beta"),
            self.state["moving_mean"],
            self.state["moving_variance"],
            momentum=self.momentum,
            epsilon=self.epsilon,
            training=bool(training and self.trainable),
            keep=training,
        )
        self._cache = (plan, last.shape) if training else None
        return self._from_last(y.reshape(last.shape))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise StateError(f"{self!r}: backward called without a forward(training=True) first.")
        (plan, shape), self._cache = self._cache, None
        grad = self._to_last(grad_out)
        grad_x, grad_gamma, grad_beta = plan.backward(grad.reshape(-1, shape[-1]))
        if self.scale:
            self.grads["gamma"][...] = grad_gamma
        if self.center:
            self.grads["beta"][...] = grad_beta
        return self._from_last(grad_x.reshape(shape))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            axis=self.axis,
            momentum=self.momentum,
            epsilon=self.epsilon,
            center=self.center,
            scale=self.scale,
            **self._initializer_ids,
        )
        return config


@register
class LayerNormalization(Layer):
    """Normalise each sample over ``axis`` (default the last; an int or a list), ``keras.layers.LayerNormalization``.

    ``gamma``/``beta`` have the normalised axes' sizes (``scale``/``center`` switch them off); ``epsilon`` 1e-3
    as Keras. The same computation in training and inference (see :mod:`convlens.ops.layer_normalization`).
    Keras's deprecated ``rms_scaling=True`` is refused.

    Shapes:
        x, out: (N, ...); gamma, beta: the sizes of the ``axis`` axes, e.g. (C,) for axis=-1.
    """

    weight_names = ("gamma", "beta")
    min_ndim = 2

    def __init__(
        self,
        axis: Any = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        rms_scaling: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        if check_bool(rms_scaling, "rms_scaling", owner=owner):
            raise ConfigError(f"{owner}: `rms_scaling=True` is not supported (Keras deprecates it too).")
        self.axis: int | list[int] = (
            [check_int(a, "axis", owner=owner) for a in axis]
            if isinstance(axis, (list, tuple))
            else check_int(axis, "axis", owner=owner)
        )
        self.epsilon = check_float(epsilon, "epsilon", owner=owner, minimum=0.0)
        self.center = check_bool(center, "center", owner=owner)
        self.scale = check_bool(scale, "scale", owner=owner)
        given = {"beta_initializer": beta_initializer, "gamma_initializer": gamma_initializer}
        self._initializers = {n: initializers.get(v, owner=owner, name=n) for n, v in given.items()}
        self._initializer_ids = {n: _init_name(v) for n, v in given.items()}
        self.set_weight_options("beta", beta_regularizer, beta_constraint)
        self.set_weight_options("gamma", gamma_regularizer, gamma_constraint)
        self._cache: LayerNormCache | None = None
        self._axes: tuple[int, ...] = ()

    def _resolve_axes(self, ndim: int) -> tuple[int, ...]:
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if not axes or any(not -ndim <= a < ndim or a % ndim == 0 for a in axes):
            raise ShapeError(f"{self!r}: `axis` {self.axis} must name non-batch axes of a {ndim}-D input.")
        return tuple(sorted({a % ndim for a in axes}))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        if any(input_shape[a] is None for a in self._resolve_axes(len(input_shape))):
            raise ShapeError(f"{self!r}: the normalised axes {self.axis} must be known, got shape {input_shape}.")
        return input_shape

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape, rng)
        rng = rng if rng is not None else np.random.default_rng()
        self._axes = self._resolve_axes(len(input_shape))
        shape = tuple(int(input_shape[a]) for a in self._axes)  # type: ignore[arg-type]
        if self.scale:
            self.make_weight("gamma", self._initializers["gamma_initializer"], shape, rng)
        if self.center:
            self.make_weight("beta", self._initializers["beta_initializer"], shape, rng)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        y, cache = layer_norm_forward(x, self.params.get("gamma"), self.params.get("beta"), self._axes, self.epsilon)
        self._cache = cache if training else None
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise StateError(f"{self!r}: backward called without a forward(training=True) first.")
        grad_x, grad_gamma, grad_beta = layer_norm_backward(np.asarray(grad_out, dtype=self.dtype), self._cache)
        self._cache = None
        if grad_gamma is not None:
            self.grads["gamma"][...] = grad_gamma
        if self.center:
            self.grads["beta"][...] = grad_beta
        return grad_x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            axis=self.axis, epsilon=self.epsilon, center=self.center, scale=self.scale, **self._initializer_ids
        )
        return config
