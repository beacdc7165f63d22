"""The Keras-style layer contract every layer follows.

A layer validates its arguments in ``__init__``, creates weights in ``build(input_shape, rng)``,
computes shapes with pure arithmetic in ``compute_output_shape`` (no forward pass), runs
``forward(x, training)`` and ``backward(grad_out) -> grad_x`` (filling ``grads``), and round-trips
through a JSON-safe ``get_config``/``from_config``.

Shapes exclude the batch axis in ``input_shape``/``output_shape`` arguments except where
noted: ``compute_output_shape((None, 28, 28, 1))`` includes it, like Keras.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, ClassVar, TypeVar

import numpy as np

from convlens import constraints, regularizers
from convlens.errors import (
    MAX_SIZE,
    ConfigError,
    ConfigTypeError,
    ShapeError,
    StateError,
    check_bool,
    short_repr,
)
from convlens.layers.symbolic import KerasTensor, Node, is_symbolic, symbolic_call
from convlens.ops._checks import as_float_array
from convlens.resources import check_arrays

__all__ = ["LAYER_REGISTRY", "Layer", "register", "reset_name_counters"]

Shape = tuple[int | None, ...]
L = TypeVar("L", bound="type[Layer]")

LAYER_REGISTRY: dict[str, type[Layer]] = {}
_NAME_COUNTS: defaultdict[str, int] = defaultdict(int)


def register(cls: L) -> L:
    """Class decorator: make a layer loadable by ``from_config`` / ``load_model``."""
    LAYER_REGISTRY[cls.__name__] = cls
    return cls


def reset_name_counters() -> None:
    """Restart automatic names (``conv2d``, ``conv2d_1`` ...), as ``keras.backend.clear_session``."""
    _NAME_COUNTS.clear()


def _snake(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _is_size(value: Any) -> bool:
    """A positive int (NumPy's too) of at most MAX_SIZE; not a bool."""
    return bool(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 < value <= MAX_SIZE)


def _unique_name(base: str) -> str:
    count = _NAME_COUNTS[base]
    _NAME_COUNTS[base] += 1
    return base if count == 0 else f"{base}_{count}"


class Layer:
    """Base class. Subclasses set ``weight_names`` (Keras order of ``get_weights``).

    Attributes:
        name: unique name (``conv2d``, ``conv2d_1``...), used in summaries and errors.
        params: trainable weights by name (``kernel``, ``bias``...).
        grads: gradients with the same keys as ``params``, filled by ``backward``.
        state: non-trainable weights (e.g. BatchNormalization's moving statistics).
        compute_grad_x: set False by the model for a first layer so backward skips the input gradient.
        regularizers, constraints: per weight name (e.g. ``kernel``), from ``kernel_regularizer=`` and friends.
        activity_regularizer: penalises the layer's output (divided by the batch size, as Keras 3).
        inbound_nodes: the symbolic calls of this layer (Functional API), see :mod:`convlens.layers.symbolic`.
    """

    weight_names: ClassVar[tuple[str, ...]] = ()
    takes_list: ClassVar[bool] = False  # merge layers take a list of inputs
    state_names: ClassVar[tuple[str, ...]] = ()
    min_ndim: ClassVar[int | None] = None  # input rank including batch
    max_ndim: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        name: str | None = None,
        input_shape: Any = None,
        input_dim: int | None = None,
        trainable: bool = True,
        dtype: Any = "float32",
        activity_regularizer: Any = None,
        autocast: bool = True,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            unknown = ", ".join(sorted(str(k)[:40] for k in kwargs))
            raise ConfigTypeError(
                f"{type(self).__name__}: unexpected keyword argument(s): {unknown}. Either Keras has no such "
                f"argument or convlens does not support it; see help(convlens.layers.{type(self).__name__})."
            )
        if input_dim is not None:
            input_shape = (input_dim,)
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigTypeError(f"{type(self).__name__}: `name` must be a non-empty string, got {short_repr(name)}.")
        self.name = name or _unique_name(_snake(type(self).__name__))
        if input_shape is not None:
            input_shape = self._check_input_shape_arg(input_shape)
        self.input_shape_arg: tuple[int | None, ...] | None = input_shape
        self.trainable = check_bool(trainable, "trainable", owner=repr(self))
        if dtype is None:
            dtype = "float32"
        try:
            resolved = np.dtype(dtype) if isinstance(dtype, (str, type, np.dtype)) else None
        except TypeError:
            resolved = None
        if resolved is None or str(resolved) not in ("float32", "float64"):
            raise ConfigError(f"{self!r}: `dtype` must be 'float32' or 'float64', got {short_repr(dtype)}.")
        self.dtype = resolved
        self.autocast = check_bool(autocast, "autocast", owner=repr(self))
        self.activity_regularizer = regularizers.get(
            activity_regularizer, owner=repr(self), name="activity_regularizer"
        )
        self.regularizers: dict[str, regularizers.Regularizer] = {}
        self.constraints: dict[str, constraints.Constraint] = {}
        self.inbound_nodes: list[Node] = []
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.built = False
        self.input_shape: Shape | None = None
        self.compute_grad_x = True

    # ----- helpers for subclasses -------------------------------------------------------------
    def _check_input_shape_arg(self, input_shape: Any) -> tuple[int | None, ...]:
        if _is_size(input_shape):
            input_shape = (input_shape,)
        try:
            shape = tuple(input_shape) if not isinstance(input_shape, (str, bytes, dict)) else ()
        except TypeError:
            shape = ()
        if not shape or len(shape) > 32 or not all(s is None or _is_size(s) for s in shape):
            raise ConfigError(
                f"{type(self).__name__}: `input_shape` must be a tuple of positive ints (at most {MAX_SIZE}) "
                f"without the batch axis, e.g. (28, 28, 1); got {short_repr(input_shape)}."
            )
        return tuple(None if s is None else int(s) for s in shape)

    def check_input_shape(self, input_shape: Shape) -> None:
        """Raise ``ShapeError`` when the input rank is outside what this layer takes."""
        ndim = len(input_shape)
        if (self.min_ndim is not None and ndim < self.min_ndim) or (self.max_ndim is not None and ndim > self.max_ndim):
            if self.min_ndim == self.max_ndim:
                want = f"{self.min_ndim}-D"
            elif self.max_ndim is None:
                want = f"at least {self.min_ndim}-D"
            elif self.min_ndim is None:
                want = f"at most {self.max_ndim}-D"
            else:
                want = f"{self.min_ndim}-D to {self.max_ndim}-D"
            hint = ""
            if self.min_ndim == 4 and ndim == 3:
                hint = " Add a channel axis: x[..., None]."
            raise ShapeError(
                f"{self!r}: expects {want} input (batch included), got shape {input_shape} ({ndim}-D).{hint}"
            )

    def add_weight(self, name: str, value: np.ndarray) -> None:
        """Register a trainable weight (and its zero gradient)."""
        self.params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self.params[name])

    def make_weight(
        self, name: str, initializer: Any, shape: tuple[int, ...], rng: np.random.Generator, *, trainable: bool = True
    ) -> None:
        """Create weight ``name`` of ``shape`` with ``initializer`` once the resource guard agrees; register it.

        Trainable weights go to ``params`` (with a zero gradient), the others to ``state``.

        Raises:
            ResourceError: when the weight (float64 draws, the weight, its gradient) would not fit in memory.
            ConfigError: when a custom initializer returns something that is not numbers of ``shape``.
        """
        check_arrays(
            [(f"weight '{name}'", shape, 8 + 3 * self.dtype.itemsize)],
            owner=repr(self),
            hint="Use fewer filters or units, or a smaller input.",
        )
        value = initializer(shape, rng)
        checked = as_float_array(value, name, f"{self!r}: the initializer")
        if checked.shape != tuple(shape):
            raise ConfigError(
                f"{self!r}: the initializer of '{name}' must return shape {tuple(shape)}, got {checked.shape}."
            )
        if trainable:
            self.add_weight(name, checked)
        else:
            self.state[name] = np.ascontiguousarray(checked, dtype=self.dtype)

    def set_weight_options(self, weight: str, regularizer: Any = None, constraint: Any = None) -> None:
        """Attach Keras's ``<weight>_regularizer`` / ``<weight>_constraint`` arguments to weight ``weight``."""
        owner = repr(self)
        reg = regularizers.get(regularizer, owner=owner, name=f"{weight}_regularizer")
        con = constraints.get(constraint, owner=owner, name=f"{weight}_constraint")
        if reg is not None:
            self.regularizers[weight] = reg
        if con is not None:
            self.constraints[weight] = con

    def regularization_penalty(self, add_gradients: bool = False) -> float:
        """Sum of the weight regularizers' penalties; with ``add_gradients`` also add their gradients to ``grads``."""
        total = 0.0
        for name, reg in self.regularizers.items():
            if name in self.params:
                total += reg(self.params[name])
                if add_gradients:
                    self.grads[name] += reg.gradient(self.params[name])
        return total

    def apply_constraints(self) -> None:
        """Project the constrained weights in place (after an optimizer step, as Keras)."""
        for name, con in self.constraints.items():
            if name in self.params:
                self.params[name][...] = con(self.params[name])

    # ----- the contract -----------------------------------------------------------------------
    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        """Create weights for ``input_shape`` (batch axis included, may be None)."""
        input_shape = tuple(input_shape)
        self.check_input_shape(input_shape)
        if any(s is not None and (not isinstance(s, (int, np.integer)) or s < 1) for s in input_shape[1:]):
            raise ShapeError(f"{self!r}: every input dimension but the batch must be positive, got {input_shape}.")
        self.compute_output_shape(input_shape)  # validates sizes before any weight exists
        self.input_shape = input_shape
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Output shape for ``input_shape`` (batch axis included), by arithmetic only."""
        return tuple(input_shape)

    @property
    def output_shape(self) -> Any:
        """Output shape (batch axis included) for the shape the layer was built with (Keras 2's attribute)."""
        if not self.built or self.input_shape is None:
            raise StateError(f"{self!r}: output_shape is known once the layer is built (add it to a built model).")
        return self.compute_output_shape(self.input_shape)

    def _only_node(self, what: str) -> Node:
        if len(self.inbound_nodes) != 1:
            state = (
                "has never been called on symbolic tensors" if not self.inbound_nodes else "was called several times"
            )
            raise StateError(
                f"{self!r}: `{what}` needs exactly one symbolic call, but the layer {state}; build its model "
                "with cl.Input(...) first."
            )
        return self.inbound_nodes[0]

    @property
    def input(self) -> Any:
        """The symbolic input tensor (a list for merge layers) of the layer's one call (Functional API)."""
        node = self._only_node("input")
        return list(node.inputs) if self.takes_list else node.inputs[0]

    @property
    def output(self) -> KerasTensor:
        """The symbolic output tensor of the layer's one call (Functional API)."""
        output = self._only_node("output").output
        if output is None:  # pragma: no cover - set by symbolic_call
            raise StateError(f"{self!r}: its call has no output.")
        return output

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Compute the output for a batch ``x``."""
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Given dL/d(output) for the last ``forward(training=True)``, fill ``grads``; return dL/dx."""
        raise NotImplementedError

    def __call__(self, x: Any, training: bool = False) -> Any:
        """Build on first call, check the input, run ``forward`` (an empty batch gives an empty output); on
        symbolic tensors (the Functional API) record the call and return a
        :class:`~convlens.layers.symbolic.KerasTensor` instead."""
        if is_symbolic(x):
            return symbolic_call(self, x)
        training = check_bool(training, "training", owner=repr(self))
        x = as_float_array(x, "x", repr(self)).astype(self.dtype, copy=False)
        if not self.built:
            self.build((None, *x.shape[1:]), np.random.default_rng())
        self.check_call_input(x)
        if x.ndim and x.shape[0] == 0:
            out_shape = self.compute_output_shape((None, *x.shape[1:]))
            return np.zeros((0, *(0 if s is None else s for s in out_shape[1:])), self.dtype)
        return self.forward(x, training=training)

    def check_call_input(self, x: np.ndarray) -> None:
        """Raise ``ShapeError`` when ``x`` does not match the shape the layer was built for."""
        expected = self.input_shape
        if expected is None:
            return
        if x.ndim != len(expected) or any(e is not None and e != a for e, a in zip(expected, x.shape, strict=False)):
            shown = "(None, " + ", ".join(str(e) for e in expected[1:]) + ")"
            raise ShapeError(f"{self!r}: expected input of shape {shown}, got {x.shape}.")

    # ----- weights ------------------------------------------------------------------------------
    def _weight_arrays(self) -> list[tuple[str, np.ndarray]]:
        found = [(n, self.params[n]) for n in self.weight_names if n in self.params]
        found += [(n, self.state[n]) for n in self.state_names if n in self.state]
        return found

    def get_weights(self) -> list[np.ndarray]:
        """Weights in Keras order (trainable first, then non-trainable), as copies."""
        return [w.copy() for _, w in self._weight_arrays()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Set weights from a list in :meth:`get_weights` order and Keras layouts (finite numbers only)."""
        if not self.built:
            raise StateError(f"{self!r}: build the layer (or its model) before set_weights.")
        if not isinstance(weights, (list, tuple)):
            raise ConfigTypeError(f"{self!r}: set_weights expects a list of arrays, got {short_repr(weights)}.")
        current = self._weight_arrays()
        if len(weights) != len(current):
            raise ShapeError(f"{self!r}: set_weights expects {len(current)} arrays, got {len(weights)}.")
        checked = []
        for (name, old), new in zip(current, weights, strict=False):
            new = as_float_array(new, f"weight '{name}'", f"{self!r}: set_weights")
            if new.shape != old.shape:
                raise ShapeError(f"{self!r}: weight '{name}' must have shape {old.shape}, got {new.shape}.")
            if not np.all(np.isfinite(new)):
                raise ConfigError(f"{self!r}: weight '{name}' holds NaN or infinite values; set_weights refuses them.")
            checked.append(new)
        for (_, old), new in zip(current, checked, strict=True):
            old[...] = new

    def count_params(self) -> int:
        """Number of scalars in all weights (trainable and not)."""
        return int(sum(w.size for _, w in self._weight_arrays()))

    # ----- config ---------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """JSON-safe constructor arguments."""
        config: dict[str, Any] = {"name": self.name, "trainable": self.trainable, "dtype": str(self.dtype)}
        if self.input_shape_arg is not None:
            config["input_shape"] = list(self.input_shape_arg)
        if self.activity_regularizer is not None:
            config["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        for name, reg in self.regularizers.items():
            config[f"{self.option_prefix(name)}_regularizer"] = regularizers.serialize(reg)
        for name, con in self.constraints.items():
            config[f"{self.option_prefix(name)}_constraint"] = constraints.serialize(con)
        return config

    def option_prefix(self, weight: str) -> str:
        """The prefix of weight ``weight``'s Keras arguments (``kernel`` -> ``kernel_regularizer``)."""
        return weight

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Inverse of :meth:`get_config`."""
        config = dict(config)
        if "input_shape" in config and config["input_shape"] is not None:
            config["input_shape"] = tuple(config["input_shape"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__} '{self.name}'"
