"""PyTorch in and out: ``from_module``, ``to_module``, state dicts (``.pt`` or ``.safetensors``).

* ``from_module(module, input_shape)``: an ``nn.Sequential``-style CNN -> a convlens model taking
  channels-last input ``(N, *input_shape)`` (``input_shape`` is convlens's (H, W, C), not torch's (C, H, W)).
* ``to_module(model)``: standard torch modules (``nn.Sequential``) taking torch's (N, C, H, W).
* ``to_state_dict(model)`` / ``load_state_dict(model, state)`` / ``save_state_dict(model, path)``: the
  weights in torch layouts, named like ``to_module(model).state_dict()``; loading matches tensors to
  layers in order with shape checks, so a state dict of your own ``nn.Sequential`` loads as well.

No pickle: ``.pt`` files are read with ``torch.load(weights_only=True)`` (a pickled full model is refused),
``.safetensors`` files need no torch at all.

Shapes:
    convlens (N, *S, C) <-> torch (N, C, *S); Flatten: convlens (H, W, C) order, torch (C, H, W), the
    following Linear's weight columns permuted to match.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from convlens.errors import ConfigError, DataError, ShapeError
from convlens.interop.chain import ChainBuilder
from convlens.interop.layout import atomic_write_bytes
from convlens.interop.torch_export import ModuleSpec, plan_modules
from convlens.models import Sequential

__all__ = ["FROM_MODULES", "from_module", "load_state_dict", "save_state_dict", "to_module", "to_state_dict"]


def _arr(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().cpu().numpy(), dtype=np.float32)


def _pairs(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * rank


def _conv(b: ChainBuilder, m: Any, where: str) -> None:
    rank = len(m.kernel_size)
    if m.padding_mode != "zeros":
        raise ConfigError(f"{b.source}: {where}: padding_mode={m.padding_mode!r}; convlens pads with zeros only.")
    if isinstance(m.padding, str):  # 'valid' or 'same' (stride 1): torch puts the odd pad after, as TF
        extent = [(k - 1) * d for k, d in zip(m.kernel_size, m.dilation, strict=True)]
        pads = tuple((0, 0) if m.padding == "valid" else (e // 2, e - e // 2) for e in extent)
    else:
        pads = tuple((p, p) for p in _pairs(m.padding, rank))
    bias = None if m.bias is None else _arr(m.bias)
    b.conv(_arr(m.weight), bias, strides=m.stride, pads=pads, dilation=m.dilation, groups=m.groups, where=where)


def _pool(b: ChainBuilder, m: Any, where: str, extra: Any = None) -> None:
    """Max/avg pooling; ``extra``: pads of a ConstantPad(-inf) just before a MaxPool (padded cells never win)."""
    rank = 2 if type(m).__name__.endswith("2d") else 1
    kernel = _pairs(m.kernel_size, rank)
    strides = _pairs(m.stride if m.stride is not None else m.kernel_size, rank)
    kind = "max" if type(m).__name__.startswith("Max") else "avg"
    if kind == "max" and (any(d != 1 for d in _pairs(m.dilation, rank)) or m.return_indices):
        raise ConfigError(f"{b.source}: {where}: dilation or return_indices is not supported.")
    if kind == "avg" and getattr(m, "divisor_override", None) is not None:
        raise ConfigError(f"{b.source}: {where}: divisor_override is not supported.")
    pads = tuple((p, p) for p in _pairs(m.padding, rank))
    if extra is not None:
        pads = tuple((b0 + e0, a0 + e1) for (b0, a0), (e0, e1) in zip(pads, extra, strict=True))
    include = bool(getattr(m, "count_include_pad", False))
    b.pool(kind, kernel, strides, pads, count_include_pad=include, ceil_mode=bool(m.ceil_mode), where=where)


def _adaptive(b: ChainBuilder, m: Any, where: str) -> None:
    if any(s != 1 for s in _pairs(m.output_size, len(b.shape) - 1)):
        raise ConfigError(
            f"{b.source}: {where}: only output_size=1 (global pooling) is supported, got {m.output_size}."
        )
    b.global_pool("max" if "Max" in type(m).__name__ else "avg", keepdims=True, where=where)


def _batch_norm(b: ChainBuilder, m: Any, where: str) -> None:
    if m.running_mean is None:
        raise ConfigError(f"{b.source}: {where}: track_running_stats=False (batch statistics at inference).")
    channels = m.num_features
    gamma = _arr(m.weight) if m.affine else np.ones(channels, np.float32)
    beta = _arr(m.bias) if m.affine else np.zeros(channels, np.float32)
    momentum = 0.99 if m.momentum is None else 1.0 - float(m.momentum)
    b.batch_norm(gamma, beta, _arr(m.running_mean), _arr(m.running_var), epsilon=m.eps, momentum=momentum, where=where)


def _linear(b: ChainBuilder, m: Any, where: str) -> None:
    b.dense(_arr(m.weight).T, None if m.bias is None else _arr(m.bias), where)


def _pad_pairs(m: Any) -> list[tuple[int, int]]:
    flat = list(m.padding)  # last axis first: (left, right, top, bottom)
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)][::-1]


def _pad(b: ChainBuilder, m: Any, where: str) -> None:
    if float(getattr(m, "value", 0.0)) != 0.0:
        raise ConfigError(
            f"{b.source}: {where}: only zero padding (or -inf padding right before a MaxPool) is supported, "
            f"value={m.value}."
        )
    b.zero_pad(_pad_pairs(m), where)


def _flatten(b: ChainBuilder, m: Any, where: str) -> None:
    if m.start_dim != 1 or m.end_dim != -1:
        raise ConfigError(f"{b.source}: {where}: only Flatten(start_dim=1, end_dim=-1) is supported.")
    b.flatten(where)


def _softmax(b: ChainBuilder, m: Any, where: str) -> None:
    if m.dim is None:
        raise ConfigError(f"{b.source}: {where}: Softmax needs an explicit dim.")
    b.softmax(int(m.dim), where)


def _act(name: str, **options: Any) -> Any:
    def convert(b: ChainBuilder, m: Any, where: str) -> None:
        if name == "elu" and float(m.alpha) != 1.0:
            raise ConfigError(f"{b.source}: {where}: ELU(alpha={m.alpha}); convlens's elu has alpha=1.")
        if name == "gelu" and m.approximate != "none":
            raise ConfigError(f"{b.source}: {where}: GELU(approximate={m.approximate!r}); convlens: 'none'.")
        b.activation(name, where, **{k: float(getattr(m, v)) for k, v in options.items()})

    return convert


FROM_MODULES: dict[str, Any] = {
    "Conv1d": _conv,
    "Conv2d": _conv,
    "MaxPool1d": _pool,
    "MaxPool2d": _pool,
    "AvgPool1d": _pool,
    "AvgPool2d": _pool,
    "AdaptiveAvgPool1d": _adaptive,
    "AdaptiveAvgPool2d": _adaptive,
    "AdaptiveMaxPool1d": _adaptive,
    "AdaptiveMaxPool2d": _adaptive,
    "BatchNorm1d": _batch_norm,
    "BatchNorm2d": _batch_norm,
    "Linear": _linear,
    "Flatten": _flatten,
    "ReLU": _act("relu"),
    "ReLU6": _act("relu6"),
    "LeakyReLU": _act("relu", negative_slope="negative_slope"),
    "Sigmoid": _act("sigmoid"),
    "Tanh": _act("tanh"),
    "ELU": _act("elu"),
    "SELU": _act("selu"),
    "GELU": _act("gelu"),
    "SiLU": _act("silu"),
    "Softmax": _softmax,
    "ZeroPad1d": _pad,
    "ZeroPad2d": _pad,
    "ConstantPad1d": _pad,
    "ConstantPad2d": _pad,
    "Dropout": lambda b, m, where: b.add(_dropout(m), where=where),
    "Identity": lambda b, m, where: None,
    "AvgPoolSame": lambda b, m, where: b.pool(
        "avg", m.kernel_size, m.stride, m.pads, count_include_pad=False, where=where
    ),
}


def _dropout(m: Any) -> Any:
    from convlens.layers import Dropout

    return Dropout(float(m.p))


def _leaves(module: Any, prefix: str) -> list[tuple[str, Any]]:
    import torch

    if isinstance(module, torch.nn.Sequential):
        found = []
        for name, child in module.named_children():
            found += _leaves(child, f"{prefix}.{name}" if prefix else name)
        return found
    return [(prefix or type(module).__name__, module)]


def _is_max_pad(module: Any) -> bool:
    return type(module).__name__.startswith("ConstantPad") and float(module.value) == float("-inf")


def from_module(module: Any, input_shape: Any) -> Sequential:
    """Convert a torch ``nn.Sequential`` CNN (nested Sequentials allowed) into a convlens model.

    Args:
        module: the torch module (put it in ``eval()`` mode first to compare outputs).
        input_shape: convlens's channels-last input shape without batch: (H, W, C), (L, C) or (D,).

    Raises:
        ConfigError: for a module convlens does not have (naming it and listing the supported ones), or a
            setting it cannot express; ShapeError when ``input_shape`` does not fit the first layer.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise ConfigError(f"from_module: expected a torch.nn.Module, got {type(module).__name__}.")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if not shape or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ConfigError(f"from_module: `input_shape` must be positive ints such as (28, 28, 1), got {input_shape!r}.")
    source = f"torch module {type(module).__name__}"
    builder = ChainBuilder(shape, channels_first=len(shape) > 1, source=source)
    leaves = _leaves(module, "")
    for i, (name, leaf) in enumerate(leaves):
        kind = type(leaf).__name__
        if i and _is_max_pad(leaves[i - 1][1]):
            continue  # folded into this MaxPool below
        if _is_max_pad(leaf) and i + 1 < len(leaves) and type(leaves[i + 1][1]).__name__.startswith("MaxPool"):
            _pool(builder, leaves[i + 1][1], f"modules '{name}', '{leaves[i + 1][0]}'", extra=_pad_pairs(leaf))
            continue
        where = f"module '{name}' ({kind})"
        convert = FROM_MODULES.get(kind)
        if convert is None:
            raise ConfigError(
                f"{source}: {where} is not supported; convlens converts nn.Sequential chains of "
                f"{', '.join(sorted(FROM_MODULES))}."
            )
        first_conv = kind.startswith("Conv") and not builder.model.layers
        if first_conv and leaf.in_channels != shape[-1]:
            raise ShapeError(
                f"{source}: {where} takes {leaf.in_channels} channels but input_shape {shape} has {shape[-1]}; "
                f"input_shape is channels-last (H, W, C), e.g. {(*shape[1:], shape[0])} for torch's {shape}."
            )
        convert(builder, leaf, where)
    return builder.finish("the last module")


def avg_pool_same(kernel_size: Any, stride: Any, pads: Any) -> Any:
    """A torch module: average pooling over per-side ``pads`` that leaves padded cells out of each mean.

    torch's ``AvgPool`` pads both sides alike; TensorFlow's 'same' puts the odd pad after (a 2x2 stride-1
    pool pads (0, 1)). The mean is the window sum over the zero-padded input divided by its real-cell count.
    """
    import torch
    from torch.nn import functional

    class AvgPoolSame(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.kernel_size, self.stride = tuple(kernel_size), tuple(stride)
            self.pads = tuple(tuple(p) for p in pads)

        def forward(self, x: Any) -> Any:
            flat = tuple(p for pair in reversed(self.pads) for p in pair)
            pool = functional.avg_pool2d if len(self.kernel_size) == 2 else functional.avg_pool1d
            sums = pool(functional.pad(x, flat), self.kernel_size, self.stride)
            return sums / pool(functional.pad(torch.ones_like(x[:1, :1]), flat), self.kernel_size, self.stride)

        def extra_repr(self) -> str:
            return f"kernel_size={self.kernel_size}, stride={self.stride}, pads={self.pads}"

    return AvgPoolSame()


def to_module(model: Sequential) -> Any:
    """A ``torch.nn.Sequential`` (eval mode) computing what ``model`` computes, on channel-first input.

    Standard ``torch.nn`` modules, except 'same' average pooling with uneven pads (``AvgPoolSame``).
    """
    import torch

    modules = []
    for spec in plan_modules(model):
        factory = avg_pool_same if spec.cls == "AvgPoolSame" else getattr(torch.nn, spec.cls)
        module = factory(**spec.kwargs)
        with torch.no_grad():
            for name, value in spec.tensors.items():
                getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
        modules.append(module)
    return torch.nn.Sequential(*modules).eval()


def _state_arrays(model: Sequential) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for i, spec in enumerate(plan_modules(model)):
        for name, value in spec.tensors.items():
            arrays[f"{i}.{name}"] = np.ascontiguousarray(value, dtype=np.float32)
        if spec.cls.startswith("BatchNorm"):
            arrays[f"{i}.num_batches_tracked"] = np.zeros((), np.int64)
    return arrays


def to_state_dict(model: Sequential) -> dict[str, Any]:
    """``to_module(model).state_dict()`` without building the modules: torch tensors by name."""
    import torch

    return {k: torch.from_numpy(v) for k, v in _state_arrays(model).items()}


def save_state_dict(model: Sequential, path: Any) -> Path:
    """Write the state dict (atomically): ``.safetensors`` (no torch needed) or ``.pt``/``.pth``."""
    path = Path(path)
    arrays = _state_arrays(model)
    if path.suffix == ".safetensors":
        from safetensors.numpy import save

        metadata = {"format": "pt", "convlens.order": json.dumps(list(arrays))}
        return atomic_write_bytes(path, save(arrays, metadata=metadata))
    if path.suffix in (".pt", ".pth"):
        import torch

        buffer = io.BytesIO()
        torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, buffer)
        return atomic_write_bytes(path, buffer.getvalue())
    raise ConfigError(f"save_state_dict: `path` must end in .safetensors, .pt or .pth, got '{path.name}'.")


def _natural(key: str) -> list[Any]:
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.]", key)]


def read_state_file(path: Any) -> dict[str, np.ndarray]:
    """Arrays of a ``.safetensors`` or ``.pt``/``.pth`` state dict, in the file's module order (no pickle)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"load_state_dict: no such file: '{path}'.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="numpy") as handle:
                order = json.loads((handle.metadata() or {}).get("convlens.order", "[]"))
                keys = order if sorted(order) == sorted(handle.keys()) else sorted(handle.keys(), key=_natural)
                return {k: handle.get_tensor(k) for k in keys}
        except (SafetensorError, OSError, ValueError) as exc:
            raise DataError(f"load_state_dict: '{path}' is not a valid safetensors file: {exc}.") from None
    import pickle

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on pickle protocols; the refusal is ours
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DataError(
            f"load_state_dict: '{path}' holds pickled Python objects (a whole model?) beyond tensors; unpickling "
            "them could run arbitrary code, so convlens reads state dicts only. In PyTorch save "
            "torch.save(model.state_dict(), path) or use safetensors, or convert the module with "
            "convlens.interop.torch.from_module."
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise DataError(f"load_state_dict: '{path}' is not a readable torch file: {exc}.") from None
    if not isinstance(state, Mapping) or not all(hasattr(v, "detach") for v in state.values()):
        raise DataError(f"load_state_dict: '{path}' holds a {type(state).__name__}, not a state dict of tensors.")
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def load_state_dict(model: Sequential, state: Any) -> Sequential:
    """Set ``model``'s weights from a torch state dict (a mapping of tensors/arrays, or a file path).

    Tensors are matched to convlens layers by order (module by module) and shape, so the names may be
    yours (``features.0.weight``) or ``to_state_dict``'s (``0.weight``); ``num_batches_tracked`` is ignored.

    Raises:
        ShapeError: when the modules or shapes do not match the model, naming the first mismatch.
    """
    arrays = (
        read_state_file(state)
        if isinstance(state, (str, Path))
        else {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)) for k, v in state.items()}
    )
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, value in arrays.items():
        prefix, _, name = key.rpartition(".")
        if name != "num_batches_tracked":
            groups.setdefault(prefix, {})[name] = np.asarray(value)
    specs: list[ModuleSpec] = [s for s in plan_modules(model) if s.tensors]
    if len(groups) != len(specs):
        raise ShapeError(
            f"load_state_dict: the state dict has {len(groups)} modules with weights ({', '.join(groups)}), "
            f"{model!r} needs {len(specs)} ({', '.join(repr(s.layer) for s in specs)})."
        )
    for (prefix, tensors), spec in zip(groups.items(), specs, strict=True):
        expected = {k: v.shape for k, v in spec.tensors.items()}
        found = {k: v.shape for k, v in tensors.items()}
        if expected != found:
            raise ShapeError(f"load_state_dict: module '{prefix}' has {found}, {spec.layer!r} needs {expected}.")
        spec.layer.set_weights(spec.to_weights(tensors))  # type: ignore[misc, union-attr]
    return model
