"""The optional Numba accelerator: where the kernels import ``numba``, and only on first use (the helper threads'
spin-waits, :mod:`convlens.ops._spin_kernels`, import it themselves, loaded only when Numba is on).

A few memory-bound ops (max pooling) cannot reach PyTorch's speed in NumPy: one pass over the
input per window offset, single-threaded. For those a JIT kernel beside the NumPy code does the
work when Numba is installed (``pip install convlens[fast]``). The NumPy code stays the readable
reference and the fallback, and both give the same bits.

``CONVLENS_JIT=0`` turns the kernels off and ``CONVLENS_JIT_DTYPES`` limits them to some dtypes
(both read on every call, so tests can flip them; see :mod:`convlens.switches`). ``import convlens``
never imports Numba: the first :func:`jit_enabled` call does (about half a second), and each kernel
compiles on its first call per dtype (about a second), cached on disk afterwards (``__pycache__`` beside
the module). Every kernel is serial; :mod:`convlens.ops.parallel` splits its outer range over Python threads
(the kernels release the GIL).

>>> isinstance(jit_enabled(), bool), compiled_for("float16")
(True, False)
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from convlens import switches
from convlens.ops.numba_lock import NUMBA_IMPORT_LOCK
from convlens.ops.parallel import serial_kernel_over

__all__ = [
    "KERNEL_DTYPES",
    "check_disjoint",
    "compile_kernel",
    "compiled_for",
    "compiled_kernels",
    "jit_enabled",
    "numba_module",
    "run_noalias",
]

#: The dtypes any compiled kernel is written for.
KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_numba: Any = None
_import_failed = False
_import_lock = NUMBA_IMPORT_LOCK


def numba_module() -> Any:
    """The ``numba`` module, imported on first call.

    Raises:
        ImportError: Numba is not installed or cannot load (e.g. too new a NumPy for it).
    """
    global _numba, _import_failed
    if _numba is None:
        with _import_lock:
            if _numba is None:
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

_NOALIAS_COMPILER: Any = None
_SLP_COMPILER: Any = None


def _slp_compiler(numba: Any) -> Any:
    """:func:`_noalias_compiler`'s class with LLVM's SLP vectoriser on while it compiles (option ``"slp": True``).

    Numba runs LLVM with the loop vectoriser only (``NUMBA_SLP_VECTORIZE`` is off by default, for the whole
    process). A register-blocked kernel has no loop to vectorise: its inner step is straight-line code on
    separate accumulators (:mod:`convlens.ops.direct_filters_jit`: 3 pixels x 32 filters), which only the SLP
    ("superword") vectoriser packs into AVX registers; without it the kernel stays scalar (16x slower). The switch
    is Numba's config value, read when the pass manager is built, so this class turns it on around its own
    compilation only (under Numba's compiler lock, so no other kernel compiles meanwhile) and every other kernel
    keeps Numba's default. A cached kernel keeps the machine code it was compiled to.
    """
    global _SLP_COMPILER
    if _SLP_COMPILER is None:
        config: Any = importlib.import_module("numba.core.config")

        class SLPCompiler(_noalias_compiler(numba)):  # type: ignore[misc]
            def _compile_core(self) -> Any:
                before = config.SLP_VECTORIZE
                config.SLP_VECTORIZE = 1
                try:
                    return super()._compile_core()
                finally:
                    config.SLP_VECTORIZE = before

        _SLP_COMPILER = SLPCompiler
    return _SLP_COMPILER


def _noalias_compiler(numba: Any) -> Any:
    """A Numba compiler class (``pipeline_class``) that marks a kernel's array arguments ``noalias``.

    LLVM vectorises a loop that loads from and stores to several arrays only after checking at run time that
    they do not overlap, and gives up past a few pairs ("loop not vectorized: too many memory checks needed"):
    the Winograd input transform stores 16 planes per channel and stayed scalar as a plain serial kernel (6x
    slower). ``parallel=True`` kernels got vectorised because Numba's parfor lowering marks their arguments
    noalias; this compiler does the same for a serial kernel, which compiles in a third of the time. Callers
    then promise that no array a kernel writes overlaps another of its arguments (:func:`check_disjoint`).
    """
    global _NOALIAS_COMPILER
    if _NOALIAS_COMPILER is None:
        from numba.core.compiler import CompilerBase, DefaultPassBuilder

        class NoAliasCompiler(CompilerBase):  # type: ignore[misc]
            def define_pipelines(self) -> list[Any]:
                self.state.flags.noalias = True
                return [DefaultPassBuilder.define_nopython_pipeline(self.state)]  # type: ignore[no-untyped-call]

        _NOALIAS_COMPILER = NoAliasCompiler
    return _NOALIAS_COMPILER


def check_disjoint(written: Sequence[np.ndarray], read: Sequence[np.ndarray]) -> None:
    """Raise ValueError when an array a ``noalias`` kernel writes may overlap another of its arrays.

    Compares memory bounds only (``np.may_share_memory`` without the exact search: about a microsecond a pair).

    >>> a = np.zeros(4)
    >>> check_disjoint([a[:2]], [a[2:]])
    >>> check_disjoint([a[:3]], [a[2:]])
    Traceback (most recent call last):
    ...
    ValueError: convlens kernel: its output 0, shape (3,), overlaps another of its arrays, shape (2,), in memory.
    """
    for i, out in enumerate(written):
        for other in (*written[i + 1 :], *read):
            if out.size and other.size and np.may_share_memory(out, other):
                raise ValueError(
                    f"convlens kernel: its output {i}, shape {out.shape}, overlaps another of its arrays, "
                    f"shape {other.shape}, in memory."
                )


def run_noalias(kernel: Callable[..., Any], total: int, written: Sequence[np.ndarray], *args: Any) -> None:
    """Run a ``noalias`` kernel ``kernel(*args, lo, hi)`` over ``range(total)``, split over the threads
    (:func:`convlens.ops.parallel.serial_kernel_over`), once :func:`check_disjoint` has found that none of the
    arrays in ``written`` (some of ``args``) overlaps another of its array arguments.
    """
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    check_disjoint(written, [a for a in arrays if not any(a is w for w in written)])
    serial_kernel_over(kernel, total, sum(a.nbytes for a in arrays), *args)


def compiled_kernels(namespace: dict[str, Any], specs: Sequence[KernelSpec]) -> tuple[Any, ...]:
    """Compile a module's kernels once and cache them in its ``_KERNELS`` global.

    The kernels are plain module-level Python functions (so the module imports and reads without Numba),
    serial loops over a range ``lo, hi`` of their outer axis that :func:`convlens.ops.parallel.parallel_ranges`
    splits over Python threads. Each spec is a function or ``(function, extra njit options)``; every kernel gets
    ``cache=True, nogil=True, error_model="numpy"`` (a division by zero gives inf or NaN, as in NumPy, instead of
    a check before every division: the checks kept LLVM from vectorising the float32 tanh, 3.3 instead of 0.5 ns
    an element, and made up 10-25% of the compile time of the direct, pooling and batch-norm kernels). The extra
    option ``"noalias": True`` compiles the kernel with its array arguments marked noalias (see
    :func:`_noalias_compiler`; the caller guarantees it); ``"slp": True`` does too, with LLVM's SLP vectoriser on
    (see :func:`_slp_compiler`).

    Serial kernels compile in about a third of the time of Numba's ``parallel=True`` ones (no OpenMP
    outlining): the Winograd transforms 17.8 -> 4.6 s, the fused stage's direct kernels 18.5 -> 2.6 s (AMD
    EPYC, one process).

    Raises:
        ImportError: Numba is not installed (callers check :func:`jit_enabled` first).
    """
    kernels = namespace.get("_KERNELS")
    if kernels is None:
        built = [compile_kernel(*spec) if isinstance(spec, tuple) else compile_kernel(spec) for spec in specs]
        kernels = namespace["_KERNELS"] = tuple(built)
    result: tuple[Any, ...] = kernels
    return result


def compile_kernel(function: Callable[..., Any], options: dict[str, Any] | None = None, *, cache: bool = True) -> Any:
    """``function`` as a Numba dispatcher with ``options`` (see :func:`compiled_kernels`); ``cache=False`` keeps
    it off the disk cache (Numba shows the machine code only of what it compiled in this process).

    Raises:
        ImportError: Numba is not installed.
    """
    numba = numba_module()
    extra = dict(options or {})
    slp = extra.pop("slp", False)
    if extra.pop("noalias", False) or slp:
        extra["pipeline_class"] = _slp_compiler(numba) if slp else _noalias_compiler(numba)
    return numba.njit(**{"cache": cache, "nogil": True, "error_model": "numpy", **extra})(function)
