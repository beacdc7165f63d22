"""The optional Numba accelerator: the one place that imports ``numba``, and only on first use.

A few memory-bound ops (max pooling) cannot reach PyTorch's speed in NumPy: one pass over the
input per window offset, single-threaded. For those a JIT kernel beside the NumPy code does the
work when Numba is installed (``pip install convlens[fast]``). The NumPy code stays the readable
reference and the fallback, and both give the same bits.

``CONVLENS_JIT=0`` turns the kernels off and ``CONVLENS_JIT_DTYPES`` limits them to some dtypes
(both read on every call, so tests can flip them; see :mod:`convlens.switches`). ``import convlens``
never imports Numba: the first :func:`jit_enabled` call does (about half a second), and each kernel
compiles on its first call per dtype (about a second; three times that for the parallel ones), cached
on disk afterwards (``__pycache__`` beside the module).

>>> isinstance(jit_enabled(), bool), compiled_for("float16")
(True, False)
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from convlens import switches
from convlens.ops.parallel import alone_here, this_thread_alone

__all__ = ["KERNEL_DTYPES", "compiled_for", "compiled_kernels", "jit_enabled", "launch", "launch_lock", "numba_module"]

#: The dtypes any compiled kernel is written for.
KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_numba: Any = None
_import_failed = False
_import_lock = threading.Lock()

# Numba's 'workqueue' threading layer aborts the process when two Python threads launch parallel
# kernels at once; callers serialise launches with this lock (they would only oversubscribe the
# cores anyway).
launch_lock = threading.Lock()


def numba_module() -> Any:
    """The ``numba`` module, imported on first call.

    Raises:
        ImportError: Numba is not installed or cannot load (e.g. too new a NumPy for it).
    """
    global _numba, _import_failed
    if _numba is None:
        with _import_lock:
            if _numba is None:
                if "NUMBA_THREADING_LAYER" not in os.environ:
                    # GNU OpenMP's worker threads busy-wait after each parallel kernel and slow the OpenBLAS GEMM
                    # that follows (a 5 ms GEMM after a kernel took 11 ms; numba's workqueue layer did the same).
                    # Passive waiting must be set before Numba loads libgomp; a user's own setting wins.
                    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                try:
                    module = importlib.import_module("numba")
                except (ImportError, OSError) as exc:  # OSError: llvmlite's library fails to load
                    _import_failed = True
                    raise ImportError(f"convlens JIT: numba cannot be imported ({exc}).") from exc
                _numba = module
    return _numba


def jit_enabled() -> bool:
    """Whether JIT kernels may run: Numba imports and ``CONVLENS_JIT`` is not ``0``."""
    if not switches.JIT.is_on() or _import_failed:
        return False
    try:
        numba_module()
    except ImportError:
        return False
    return True


#: compiled_for's answers once Numba is loaded, by (dtype, CONVLENS_JIT, CONVLENS_JIT_DTYPES): it runs a few
#: times per layer and step, and the dtype's name and the list's parsing cost ~40 us a call.
_COMPILED_FOR: dict[tuple[Any, str, str], bool] = {}


def compiled_for(dtype: Any) -> bool:
    """Whether compiled kernels run for arrays of ``dtype``: float32/float64, listed in
    ``CONVLENS_JIT_DTYPES`` and :func:`jit_enabled` (the switches are read on every call).
    """
    key = (dtype, switches.JIT.value(), switches.JIT_DTYPES.value())
    settled = _numba is not None and not _import_failed
    if settled:
        try:
            return _COMPILED_FOR[key]
        except (KeyError, TypeError):  # (TypeError: an unhashable dtype-like)
            pass
    dtype = np.dtype(dtype)
    if dtype not in KERNEL_DTYPES or dtype.name not in key[2].replace(" ", "").split(","):
        answer = False
    else:
        answer = jit_enabled()
    if settled:  # (then the answer depends on the key alone)
        with contextlib.suppress(TypeError):
            _COMPILED_FOR[key] = answer
    return answer


KernelSpec = Callable[..., Any] | tuple[Callable[..., Any], dict[str, Any]]


def compiled_kernels(namespace: dict[str, Any], specs: Sequence[KernelSpec]) -> tuple[Any, ...]:
    """Compile a module's kernels once and cache them in its ``_KERNELS`` global.

    The kernels are plain module-level Python functions whose parallel loops iterate over the module
    global ``_prange`` (``range`` until now, so the module imports and reads without Numba); it becomes
    ``numba.prange`` before compiling. Each spec is a function or ``(function, extra njit options)``;
    every kernel gets ``parallel=True, cache=True, nogil=True`` unless its options say otherwise
    (``{"parallel": False}``: a serial kernel, about a third of the compile time, that
    :func:`convlens.ops.parallel.parallel_ranges` runs on row ranges from Python threads).

    Raises:
        ImportError: Numba is not installed (callers check :func:`jit_enabled` first).
    """
    kernels = namespace.get("_KERNELS")
    if kernels is None:
        numba = numba_module()
        namespace["_prange"] = numba.prange
        built = []
        for spec in specs:
            function, extra = spec if isinstance(spec, tuple) else (spec, {})
            built.append(numba.njit(**{"parallel": True, "cache": True, "nogil": True, **extra})(function))
        kernels = namespace["_KERNELS"] = tuple(built)
    result: tuple[Any, ...] = kernels
    return result


def launch(kernel: Callable[..., Any], *args: Any) -> None:
    """Run a compiled parallel kernel (one at a time: see :data:`launch_lock`), or, on a thread inside
    :func:`one_thread_here`, right away on that thread alone.
    """
    if alone_here():
        kernel(*args)
        return
    with launch_lock:
        kernel(*args)


def threadsafe_launches() -> bool:
    """Whether Python threads may launch parallel kernels at once: Numba's threading layer is OpenMP or TBB.

    Runs a tiny parallel kernel the first time (the layer is chosen at the first launch).
    """
    numba = numba_module()
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        launch(_probe(), np.zeros(2))
        layer = numba.threading_layer()
    return layer in ("omp", "tbb")


@contextlib.contextmanager
def one_thread_here() -> Iterator[None]:
    """Context manager, for a worker thread: its parallel kernels run on it alone, without the launch lock.

    For callers that split work over threads of their own (only where :func:`threadsafe_launches`).
    """
    numba = numba_module()
    before = numba.get_num_threads()
    numba.set_num_threads(1)  # thread-local in Numba
    try:
        with this_thread_alone():  # (and nothing it calls splits over the pool again)
            yield
    finally:
        numba.set_num_threads(before)


_prange: Any = range  # numba.prange inside the compiled probe (see compiled_kernels)
_KERNELS: tuple[Any, ...] | None = None


def _fill_kernel(a: Any) -> None:  # pragma: no cover - compiled by Numba
    for i in _prange(a.shape[0]):
        a[i] = i


def _probe() -> Any:
    """A tiny parallel kernel (``a[i] = i``), compiled once and cached on disk like the others."""
    return compiled_kernels(globals(), (_fill_kernel,))[0]
