"""Every environment variable convlens reads, in one place.

Each switch is read when it is used (not once at import), so a test or a notebook can flip it with
``os.environ`` between calls. Performance switches never change results beyond float rounding
(``CONVLENS_JIT``, ``CONVLENS_FUSE`` and the algorithm choice keep every result within the tolerances
the tests pin; most paths are bit-identical).

| variable | default | effect |
|---|---|---|
| ``CONVLENS_JIT`` | ``1`` | ``0``: no compiled (Numba) kernels; every op runs its NumPy code |
| ``CONVLENS_JIT_DTYPES`` | ``float32,float64`` | dtypes that get compiled kernels; others run the NumPy code |
| ``CONVLENS_CONV_ALGORITHM`` | (empty) | force a convolution algorithm by name (``convlens.ops.conv_algorithms()``) |
| ``CONVLENS_WINOGRAD`` | ``1`` | ``0``: the automatic choice never picks Winograd (forcing it still works) |
| ``CONVLENS_FUSE`` | ``1`` | ``0``: no fused stages (conv + max-pool, batch norm + ReLU, conv + batch norm) |
| ``CONVLENS_NUM_THREADS`` | cores, at most 8 | threads for large NumPy copies (``1``: none) |
| ``CONVLENS_SPIN_US`` | ``1000`` | microseconds a waiting thread spins before it sleeps (``0``: sleep at once) |
| ``CONVLENS_SPLIT_PREDICT`` | ``1`` | ``0``: ``predict``/``evaluate`` threads split each layer's work, not the batch |
| ``CONVLENS_SPLIT_TRAIN`` | ``1`` | ``0``: a training step's threads split each layer's work, not the batch |
| ``CONVLENS_TUNE_MALLOC`` | ``1`` | ``0``: leave glibc's allocator alone during ``fit``/``predict`` |
| ``CONVLENS_DATA`` | (empty) | a folder searched first for data sets (``$CONVLENS_DATA/fashion-mnist/``, ...) |
| ``CONVLENS_MODELS`` | ``~/.convlens/models`` | the model folder of ``convlens serve`` |
| ``CONVLENS_MEMORY_LIMIT`` | (empty) | a memory cap such as ``4G``: calls estimated to need more are refused up front |

convlens also sets two variables of its libraries unless you set them first: ``OPENBLAS_THREAD_TIMEOUT=12``
(on ``import convlens``, before NumPy loads) and ``OMP_WAIT_POLICY=PASSIVE`` (before Numba loads); see
the README's Performance section for the measurements behind them.

>>> JIT.name, JIT.is_on({"CONVLENS_JIT": "0"}), JIT.is_on({})
('CONVLENS_JIT', False, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "CONV_ALGORITHM",
    "DATA",
    "FUSE",
    "JIT",
    "JIT_DTYPES",
    "MEMORY_LIMIT",
    "MODELS",
    "NUM_THREADS",
    "SPIN_US",
    "SPLIT_PREDICT",
    "SPLIT_TRAIN",
    "SWITCHES",
    "TUNE_MALLOC",
    "WINOGRAD",
    "Switch",
]


#: The process environment as ``os`` keeps it: ``os.environ`` is a mapping over ``_data``, a dict of encoded
#: names and values (bytes on POSIX, upper-cased str on Windows), which every change through ``os.environ``
#: (``os.environ[name] = ...``, ``del``, ``update``, ``monkeypatch.setenv``) writes. :meth:`Switch.value`
#: reads that dict directly: the switches are read several times per layer call (about 120 reads per
#: LeNet-5 training step), and ``os.environ.get`` costs ~0.8 us a read, the dict ~0.1 us.
_ENVIRON = os.environ
_DATA: dict[object, object] | None = getattr(_ENVIRON, "_data", None)
_ENCODE_KEY = getattr(_ENVIRON, "encodekey", None)
_DECODE_VALUE = getattr(_ENVIRON, "decodevalue", None)
_FAST = isinstance(_DATA, dict) and callable(_ENCODE_KEY) and callable(_DECODE_VALUE)


@dataclass(frozen=True)
class Switch:
    """One environment variable: its name, default and what it does."""

    name: str
    default: str
    effect: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "_key", _ENCODE_KEY(self.name) if _FAST else None)  # type: ignore[misc]

    def value(self, environ: Mapping[str, str] | None = None) -> str:
        """The current value (stripped), or the default when unset or empty."""
        if environ is None:
            if _FAST and os.environ is _ENVIRON:  # (the live environment, read as os.environ.get would)
                found = _DATA.get(self._key)  # type: ignore[union-attr, attr-defined]
                raw = "" if found is None else _DECODE_VALUE(found).strip()  # type: ignore[misc]
            else:
                raw = os.environ.get(self.name, "").strip()
        else:
            raw = environ.get(self.name, "").strip()
        return raw or self.default

    def is_on(self, environ: Mapping[str, str] | None = None) -> bool:
        """False only when the value is ``0``."""
        return self.value(environ) != "0"


JIT = Switch("CONVLENS_JIT", "1", "0: no compiled (Numba) kernels; every op runs its NumPy code")
JIT_DTYPES = Switch(
    "CONVLENS_JIT_DTYPES", "float32,float64", "dtypes that get compiled kernels; others run the NumPy code"
)
CONV_ALGORITHM = Switch(
    "CONVLENS_CONV_ALGORITHM", "", "force a named convolution algorithm everywhere (convlens.ops.conv_algorithms())"
)
WINOGRAD = Switch("CONVLENS_WINOGRAD", "1", "0: the automatic choice never picks Winograd (forcing it still works)")
FUSE = Switch(
    "CONVLENS_FUSE", "1", "0: no fused stages in Sequential (conv + max-pool, batch norm + ReLU, conv + batch norm)"
)
NUM_THREADS = Switch("CONVLENS_NUM_THREADS", "", "threads for large NumPy copies (1: none); default: cores, at most 8")
SPIN_US = Switch(
    "CONVLENS_SPIN_US",
    "1000",
    "microseconds a waiting convlens thread spins before it sleeps (0: sleep at once; spins need Numba)",
)
SPLIT_PREDICT = Switch(
    "CONVLENS_SPLIT_PREDICT",
    "1",
    "0: predict/evaluate threads split each layer's work instead of each taking its own pieces of the batch",
)
SPLIT_TRAIN = Switch(
    "CONVLENS_SPLIT_TRAIN",
    "1",
    "0: a training step's threads split each layer's work instead of each taking half of the batch",
)
TUNE_MALLOC = Switch("CONVLENS_TUNE_MALLOC", "1", "0: leave glibc's allocator alone during fit/predict")
DATA = Switch("CONVLENS_DATA", "", "a folder searched first for data sets ($CONVLENS_DATA/fashion-mnist/, ...)")
MEMORY_LIMIT = Switch(
    "CONVLENS_MEMORY_LIMIT", "", "a memory cap such as 4G: calls estimated to need more are refused up front"
)
MODELS = Switch("CONVLENS_MODELS", "", "the model folder of convlens serve; default ~/.convlens/models")

SWITCHES = (
    JIT,
    JIT_DTYPES,
    CONV_ALGORITHM,
    WINOGRAD,
    FUSE,
    NUM_THREADS,
    SPIN_US,
    SPLIT_PREDICT,
    SPLIT_TRAIN,
    TUNE_MALLOC,
    DATA,
    MODELS,
    MEMORY_LIMIT,
)
