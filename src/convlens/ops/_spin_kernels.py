"""The compiled flag operations of :mod:`convlens.ops.handoff`: imported only when Numba is on (it imports Numba).

Kernels over a helper's flag array (int64, one cache line), every load and store sequentially consistent:

- :func:`spin_until_changed` (without the GIL) reads ``flags[col]`` until it differs from ``old`` or ``spins``
  reads have passed, with the CPU's spin-wait hint (x86 ``pause``) between reads and a ``sched_yield()`` every
  :data:`YIELD_EVERY` reads, so a thread that the OS wants to run on this core (an OpenBLAS thread, another
  process) gets it within about a microsecond;
- :func:`finish_and_spin` (without the GIL): a helper's end of a piece, its done-flag written where it holds
  no GIL, so the waiting caller that sees it never finds the GIL taken;
- :func:`store` and :func:`load` (with the GIL: no hand-over for one access).

A plain compiled loop could not do this: LLVM may hoist a load that nothing in the loop writes out of the loop
(an endless spin), and plain loads and stores carry no ordering on weakly ordered CPUs. The atomic loads and
stores are LLVM's, emitted through Numba intrinsics. Compiled with ``cache=True`` (on disk after the first
process, ~0.5 s to compile).
"""

from __future__ import annotations

import importlib
import platform
from typing import Any

# (through importlib: Numba and llvmlite have no type stubs, and mypy would check the intrinsics' calls against
# their compile-time signatures)
numba: Any = importlib.import_module("numba")  # (the package first: then its submodules)
ir: Any = importlib.import_module("llvmlite.ir")
cgutils: Any = importlib.import_module("numba.core.cgutils")
types: Any = importlib.import_module("numba.core.types")
njit: Any = numba.njit
intrinsic: Any = importlib.import_module("numba.extending").intrinsic

#: Spin-wait reads between two ``sched_yield()`` calls (a read + ``pause`` is ~25-40 ns, a yield ~0.5 us).
YIELD_EVERY = 16

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _item_pointer(context: Any, builder: Any, array_type: Any, array: Any, index: Any) -> Any:
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index])


def _atomic_load_typing(typingctx: Any, flags: Any, col: Any) -> Any:  # pragma: no cover - runs at compile time
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        pointer = _item_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(pointer, ordering="seq_cst", align=8)

    return types.int64(flags, col), codegen


_atomic_load = intrinsic(_atomic_load_typing)


def _atomic_store_typing(typingctx: Any, flags: Any, col: Any, value: Any) -> Any:  # pragma: no cover - compile time
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        pointer = _item_pointer(context, builder, sig.args[0], args[0], args[1])
        stored = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(stored, pointer, ordering="seq_cst", align=8)
        return context.get_dummy_value()

    return types.void(flags, col, value), codegen


_atomic_store = intrinsic(_atomic_store_typing)


def _relax_typing(typingctx: Any, call_yield: Any) -> Any:  # pragma: no cover - runs at compile time
    """``sched_yield()`` when ``call_yield``, else the CPU's spin-wait hint (nothing where there is none)."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        with builder.if_else(args[0]) as (then, otherwise):
            with then:
                function = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield"
                )
                builder.call(function, [])
            with otherwise:
                if _X86:
                    hint = cgutils.get_or_insert_function(
                        builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause"
                    )
                    builder.call(hint, [])
        return context.get_dummy_value()

    return types.void(call_yield), codegen


_relax = intrinsic(_relax_typing)


def _spin_until_changed(
    flags: Any, col: int, old: int, spins: int, linger: int
) -> int:  # pragma: no cover - compiled by Numba
    """``flags[col]`` once it differs from ``old`` (then ``linger`` more spin reads pass before the return), or
    after ``spins`` reads (then it may still be ``old``)."""
    for k in range(spins):
        value = _atomic_load(flags, col)
        if value != old:
            for j in range(linger):
                _relax(j % YIELD_EVERY == YIELD_EVERY - 1)
            return value
        _relax(k % YIELD_EVERY == YIELD_EVERY - 1)
    return _atomic_load(flags, col)


def _finish_and_spin(
    flags: Any, done: int, waiting: int, posted: int, seen: int, spins: int, linger: int
) -> int:  # pragma: no cover - compiled by Numba
    """A helper's end of a piece: ``flags[done] = seen``, then -1 if ``flags[waiting]`` (the caller sleeps and
    must be woken), else :func:`spin_until_changed` on ``flags[posted]`` (the next piece)."""
    _atomic_store(flags, done, seen)
    if _atomic_load(flags, waiting) != 0:
        return -1
    return spin_until_changed(flags, posted, seen, spins, linger)  # (the compiled one below)


def _store(flags: Any, col: int, value: int) -> None:  # pragma: no cover - compiled by Numba
    """``flags[col] = value``, sequentially consistent."""
    _atomic_store(flags, col, value)


def _load(flags: Any, col: int) -> int:  # pragma: no cover - compiled by Numba
    """``flags[col]``, sequentially consistent."""
    return _atomic_load(flags, col)


def _spin_until_all(
    flags: Any, parties: int, target: int, spins: int, linger: int
) -> int:  # pragma: no cover - compiled by Numba
    """A barrier's wait: 1 once every party's arrival count (``flags[8 * p]``) is at least ``target`` (after
    ``linger`` more reads when it had to wait for one), -1 as soon as ``flags[8 * parties]`` (broken) is set, 0
    after ``spins`` reads."""
    for k in range(spins):
        if _atomic_load(flags, 8 * parties) != 0:
            return -1
        arrived = True
        for p in range(parties):
            if _atomic_load(flags, 8 * p) < target:
                arrived = False
                break
        if arrived:
            if k > 0:
                for j in range(linger):
                    _relax(j % YIELD_EVERY == YIELD_EVERY - 1)
            return 1
        _relax(k % YIELD_EVERY == YIELD_EVERY - 1)
    return 0


# Compiled on the first call (or loaded from the disk cache): without the GIL where they wait.
spin_until_changed = njit(cache=True, nogil=True)(_spin_until_changed)
finish_and_spin = njit(cache=True, nogil=True)(_finish_and_spin)
store = njit(cache=True)(_store)
load = njit(cache=True)(_load)
spin_until_all = njit(cache=True, nogil=True)(_spin_until_all)
