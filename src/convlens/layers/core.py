"""Core layers: ``Input``, ``Dense``, ``Flatten``, ``Dropout``, ``Activation``, ``ReLU``, ``Softmax``.

Keras argument names, defaults and weight layouts (Dense kernel (D, U)).

Shapes:
    Dense: (N, ..., D) -> (N, ..., units)
    Flatten: (N, D1, D2, ...) -> (N, D1 * D2 * ...) in row-major (H, W, C) order
    the others: output shape == input shape

>>> import numpy as np
>>> layer = Dense(10, activation="softmax", name="d")
>>> layer.compute_output_shape((None, 6272))
(None, 10)
>>> layer.build((None, 6272), np.random.default_rng(0)); layer.count_params()  # 6272*10 + 10
62730
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from convlens import initializers
from convlens.errors import ConfigError, ShapeError, StateError, check_bool, check_float, check_int
from convlens.layers.base import Layer, Shape, register
from convlens.layers.symbolic import KerasTensor, Node
from convlens.ops.activations import get_activation, relu_backward, relu_inplace, softmax, softmax_backward
from convlens.ops.dense import dense_backward
from convlens.ops.dropout import dropout

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "Input", "InputLayer", "ReLU", "Softmax"]


def _no_forward(layer: Layer) -> StateError:
    return StateError(f"{layer!r}: backward called without a forward(training=True) first.")


def _initializer_name(identifier: Any) -> Any:
    return identifier.lower() if isinstance(identifier, str) else getattr(identifier, "__name__", None)


@register
class Input(Layer):
    """The model input (``keras.Input`` and ``keras.layers.InputLayer`` in one): marks the input shape of a
    ``Sequential`` model, and is the symbolic tensor a Functional model starts from.

    ``cl.Input((28, 28, 1))`` can be the first entry of ``Sequential([...])`` or be given to layers:
    ``x = cl.Input((28, 28, 1)); y = cl.layers.Conv2D(8, 3)(x); model = cl.Model(x, y)``. As a layer it
    is the identity and is not counted in a Sequential summary (``is_input``).

    Args:
        shape: input shape without the batch axis, e.g. (28, 28, 1).
        batch_size: fixed batch size (default None: any).
        dtype, name: as Keras (the default name is ``input_layer``).
        batch_shape: the shape with the batch axis instead of ``shape`` and ``batch_size``.

    Shapes:
        ``shape`` attribute: (batch_size, *shape), the batch axis first, as ``keras.Input(...).shape``.
    """

    is_input: ClassVar[bool] = True

    def __init__(
        self,
        shape: Any = None,
        batch_size: int | None = None,
        dtype: Any = None,
        sparse: Any = None,
        batch_shape: Any = None,
        name: str | None = None,
        tensor: Any = None,
        optional: bool = False,
        **kwargs: Any,
    ) -> None:
        for arg, value, default in (("sparse", sparse, None), ("tensor", tensor, None), ("optional", optional, False)):
            if value not in (default, False):
                raise ConfigError(f"Input: `{arg}` is not supported by convlens, got {arg}={value!r}.")
        if batch_shape is not None:
            if shape is not None:
                raise ConfigError("Input: give `shape` or `batch_shape`, not both.")
            batch_shape = tuple(batch_shape)
            batch_size, shape = (batch_shape[0], batch_shape[1:]) if batch_shape else (None, None)
        if shape is None and kwargs.get("input_shape") is None:
            raise ConfigError("Input: `shape` is required, e.g. Input(shape=(28, 28, 1)).")
        if shape is not None:
            kwargs["input_shape"] = shape
        super().__init__(name=name or _unique_input_name(), dtype=dtype, **kwargs)
        if self.input_shape_arg is None:  # pragma: no cover - guarded above
            raise ConfigError("Input: `shape` is required.")
        if batch_size is not None:
            batch_size = check_int(batch_size, "batch_size", owner=repr(self), minimum=1)
        self.batch_size = batch_size
        self.shape: tuple[int | None, ...] = (batch_size, *self.input_shape_arg)
        self.input_shape = self.shape
        self.built = True
        node = Node(self, [])
        node.output = KerasTensor(self.shape, str(self.dtype), node)
        self.inbound_nodes.append(node)

    @property
    def ndim(self) -> int:
        """Number of axes, batch included (as a symbolic tensor's)."""
        return len(self.shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("input_shape", None)
        config["shape"] = list(self.shape[1:])
        if self.batch_size is not None:
            config["batch_size"] = self.batch_size
        return config


InputLayer = Input


def _unique_input_name() -> str:
    from convlens.layers.base import _unique_name

    return _unique_name("input_layer")


@register
class Dense(Layer):
    """Fully connected layer on the last axis: ``activation(x @ kernel + bias)``.

    Shapes:
        x: (N, ..., D); kernel: (D, units); bias: (units,); out: (N, ..., units).
    """

    weight_names = ("kernel", "bias")
    min_ndim = 2

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        self.set_weight_options("kernel", kernel_regularizer, kernel_constraint)
        self.set_weight_options("bias", bias_regularizer, bias_constraint)
        self.units = check_int(units, "units", owner=owner, minimum=1)
        self.activation = get_activation(activation, owner=owner)
        self.use_bias = check_bool(use_bias, "use_bias", owner=owner)
        self.kernel_initializer = initializers.get(kernel_initializer, owner=owner, name="kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, owner=owner, name="bias_initializer")
        self._initializer_ids = (_initializer_name(kernel_initializer), _initializer_name(bias_initializer))
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._x_shape: tuple[int, ...] = ()

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        if input_shape[-1] is None:
            raise ShapeError(f"{self!r}: the last input axis must be known, got shape {input_shape}.")
        return (*input_shape[:-1], self.units)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape, rng)
        rng = rng if rng is not None else np.random.default_rng()
        depth = int(input_shape[-1])  # type: ignore[arg-type]  # checked by compute_output_shape
        self.make_weight("kernel", self.kernel_initializer, (depth, self.units), rng)
        if self.use_bias:
            self.make_weight("bias", self.bias_initializer, (self.units,), rng)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        x2d = x.reshape(-1, x.shape[-1])
        pre = x2d @ self.params["kernel"]
        if self.use_bias:
            pre += self.params["bias"]
        # relu in place: its backward needs only the output.
        y = relu_inplace(pre) if self.activation.name == "relu" else self.activation.forward(pre)
        if training:
            self._cache = (x2d, pre, y)
            self._x_shape = x.shape
        return np.asarray(y.reshape(*x.shape[:-1], self.units))

    @property
    def pre_activation(self) -> np.ndarray:
        """``x @ kernel + bias`` of the last ``forward(training=True)`` (the logits for a softmax layer).

        For ``activation='relu'`` this is the output itself (relu runs in place).

        Shapes:
            (N, ..., units).
        """
        if self._cache is None:
            raise _no_forward(self)
        return self._cache[1].reshape(*self._x_shape[:-1], self.units)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise _no_forward(self)
        _, pre, y = self._cache
        g2d = np.asarray(grad_out, dtype=self.dtype).reshape(pre.shape)
        grad_pre = relu_backward(g2d, y) if self.activation.name == "relu" else self.activation.backward(g2d, pre, y)
        return self.backward_linear(grad_pre)

    def backward_linear(self, grad_pre: np.ndarray) -> np.ndarray:
        """Backward from the gradient w.r.t. the pre-activation (skips the activation's backward).

        Shapes:
            grad_pre: (N, ..., units) (or its 2-D reshape (M, units)); returns the input's shape (N, ..., D).
        """
        if self._cache is None:
            raise _no_forward(self)
        x2d = self._cache[0]
        g2d = np.asarray(grad_pre, dtype=self.dtype).reshape(x2d.shape[0], self.units)
        grads = dense_backward(g2d, x2d, self.params["kernel"], compute_grad_x=self.compute_grad_x)
        self.grads["kernel"][...] = grads.kernel
        if self.use_bias:
            self.grads["bias"][...] = grads.bias
        self._cache = None
        if grads.x is None:
            return np.zeros(0, self.dtype)
        return grads.x.reshape(self._x_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            units=self.units,
            activation=self.activation.name,
            use_bias=self.use_bias,
            kernel_initializer=self._initializer_ids[0],
            bias_initializer=self._initializer_ids[1],
        )
        return config


@register
class Flatten(Layer):
    """Reshape to (N, -1) in row-major order: channels-last (H, W, C), as Keras."""

    min_ndim = 1

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ConfigError(f"{self!r}: only data_format='channels_last' is supported, got {data_format!r}.")
        self._x_shape: tuple[int, ...] | None = None

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        rest = input_shape[1:]
        size = None if any(s is None for s in rest) else math.prod(rest)  # type: ignore[arg-type]
        return (input_shape[0], size)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._x_shape is None:
            raise _no_forward(self)
        return np.asarray(grad_out).reshape(self._x_shape)


@register
class Dropout(Layer):
    """Inverted dropout while training (scale 1 / (1 - rate)); identity at inference.

    Draws from ``np.random.default_rng(seed)`` when ``seed`` is given, else the generator given to ``build``.
    """

    def __init__(self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        self.rate = check_float(rate, "rate", owner=owner, minimum=0.0, maximum=1.0, inclusive_max=False)
        if noise_shape is not None:
            raise ConfigError(f"{owner}: `noise_shape` is not supported, got {noise_shape!r}.")
        self.seed = None if seed is None else check_int(seed, "seed", owner=owner, minimum=0)
        self.rng: np.random.Generator | None = None
        self._mask: np.ndarray | None = None

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape, rng)
        if self.seed is not None:
            self.rng = np.random.default_rng(self.seed)
        else:
            self.rng = rng if rng is not None else np.random.default_rng()

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if self.rng is None:
            self.rng = np.random.default_rng(self.seed)
        y, self._mask = dropout(x, self.rate, self.rng, training)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        mask, self._mask = self._mask, None
        return grad_out if mask is None else grad_out * mask

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


class _Elementwise(Layer):
    """A parameter-free element-wise layer keeping (x, y) for its backward."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, grad_out: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y = self._forward(x)
        if training:
            self._cache = (x, y)
        return y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise _no_forward(self)
        (x, y), self._cache = self._cache, None
        return self._backward(grad_out, x, y)


@register
class Activation(_Elementwise):
    """Apply a named activation (``'relu'``, ``'softmax'``, ...; see :mod:`convlens.ops.activations`)."""

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = get_activation(activation, owner=repr(self))

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return self.activation.forward(x)

    def _backward(self, grad_out: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.activation.backward(grad_out, x, y)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["activation"] = self.activation.name
        return config


@register
class ReLU(_Elementwise):
    """Keras ``ReLU``: ``max_value`` for x >= max_value, x for threshold <= x < max_value,
    ``negative_slope * (x - threshold)`` otherwise."""

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = repr(self)
        self.max_value = (
            None if max_value is None else check_float(max_value, "max_value", owner=owner, minimum=0.0, allow_inf=True)
        )
        self.negative_slope = check_float(negative_slope, "negative_slope", owner=owner, minimum=0.0)
        self.threshold = check_float(threshold, "threshold", owner=owner, minimum=0.0)

    @property
    def _plain(self) -> bool:
        return self.max_value is None and self.negative_slope == 0.0 and self.threshold == 0.0

    def _forward(self, x: np.ndarray) -> np.ndarray:
        if self._plain:
            return np.asarray(np.maximum(x, 0))
        y = np.where(x >= self.threshold, x, (x - self.threshold) * self.negative_slope)
        if self.max_value is not None:
            np.minimum(y, self.max_value, out=y)
        return np.asarray(y)

    def _backward(self, grad_out: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self._plain:
            return relu_backward(grad_out, y)
        # Kinks: slope of the piece on the right of threshold, zero at and above max_value.
        slope = np.where(x > self.threshold, 1.0, self.negative_slope).astype(grad_out.dtype)
        if self.max_value is not None:
            slope[x >= self.max_value] = 0.0
        return np.asarray(grad_out * slope)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(max_value=self.max_value, negative_slope=self.negative_slope, threshold=self.threshold)
        return config


@register
class Softmax(_Elementwise):
    """Softmax along ``axis`` (default the last)."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = check_int(axis, "axis", owner=repr(self))

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        input_shape = tuple(input_shape)
        if not -len(input_shape) <= self.axis < len(input_shape) or self.axis % len(input_shape) == 0:
            raise ShapeError(f"{self!r}: `axis` {self.axis} is not a non-batch axis of input shape {input_shape}.")
        return input_shape

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return softmax(x, axis=self.axis)

    def _backward(self, grad_out: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return softmax_backward(grad_out, y, axis=self.axis)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["axis"] = self.axis
        return config
