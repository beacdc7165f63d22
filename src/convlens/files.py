"""Safe file access shared by every reader and writer: path checks, atomic writes, no stale temporaries.

* :func:`readable_file` refuses, with a convlens error, what cannot be read as a file: a missing path
  (:class:`~convlens.errors.MissingFileError`, also a ``FileNotFoundError``), a directory, a FIFO (whose
  ``open`` would block forever), a device (``/dev/zero`` never ends), a path with a NUL byte.
* :func:`atomic_write` writes beside the target under a recognisable name
  (``.NAME.convlens-PID-RANDOM.tmp``), fsyncs, then ``os.replace``-s the target: a reader sees the old file
  or the new one, never half of one. A writer killed half-way leaves its temporary behind; the next
  :func:`atomic_write` of the same target (and :func:`remove_stale_temps`, which readers call) deletes the
  temporaries of that target whose writing process no longer exists. A target that exists but is not a
  regular file (a directory, a device such as ``/dev/null``) is refused rather than replaced.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = atomic_write(folder / "a.txt", lambda handle: handle.write(b"hi"), owner="demo")
>>> (folder / "a.txt").read_bytes(), sorted(p.name for p in folder.iterdir())
(b'hi', ['a.txt'])
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from convlens.errors import ConfigTypeError, FileAccessError, MissingFileError, short_repr

__all__ = ["TEMP_MARK", "as_path", "atomic_write", "readable_file", "remove_stale_temps", "temp_name"]

TEMP_MARK = ".convlens-"


def as_path(path: Any, *, owner: str, name: str = "path") -> Path:
    """``path`` (str, bytes or ``os.PathLike``) as a ``Path``; refuses other types, '' and NUL bytes.

    Raises:
        ConfigTypeError: for anything else (None, an int, a list...).
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigTypeError(f"{owner}: `{name}` must be a file path, got {short_repr(path)}.")
    text = os.fspath(path)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise ConfigTypeError(
            f"{owner}: `{name}` must be a non-empty file path without NUL bytes, got {short_repr(path)}."
        )
    return Path(text)


def _shown(target: Path) -> str:
    """A path for a message: in full up to 200 characters."""
    text = str(target)
    return text if len(text) <= 200 else text[:100] + "..." + text[-97:]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def readable_file(path: Any, *, owner: str, name: str = "path") -> tuple[Path, int]:
    """Check that ``path`` is an existing regular file; return it and its size in bytes.

    Raises:
        MissingFileError: when nothing is there (a dangling link included).
        FileAccessError: for a directory, a FIFO, a device or a socket, or a file that cannot be inspected.
    """
    target = as_path(path, owner=owner, name=name)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        raise MissingFileError(f"{owner}: no such file: '{_shown(target)}'.") from None
    except OSError as exc:
        raise FileAccessError(f"{owner}: cannot read `{name}` '{_shown(target)}': {exc.strerror or exc}.") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileAccessError(f"{owner}: `{name}` '{_shown(target)}' is {_kind(info.st_mode)}, not a file.")
    return target, int(info.st_size)


def temp_name(target: Path, pid: int | None = None) -> Path:
    """The temporary beside ``target`` a writer with process id ``pid`` uses (random suffix)."""
    return target.with_name(f".{target.name}{TEMP_MARK}{pid or os.getpid()}-{secrets.token_hex(4)}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete temporaries of ``target`` left by writers that no longer run; return what was removed.

    Temporaries of this process are kept (another thread may be writing), as are those of live processes.
    """
    prefix = f".{target.name}{TEMP_MARK}"
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent if str(target.parent) else "."))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        pid_text = entry.name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def atomic_write(
    path: Any, write: Callable[[IO[bytes]], Any], *, owner: str, make_parents: bool = True, name: str = "path"
) -> Path:
    """Write ``path`` through ``write(handle)`` into a temporary beside it, then replace ``path`` with it.

    Raises:
        ConfigTypeError: for a path that is not a path.
        FileAccessError: when ``path`` exists and is not a regular file (a directory, ``/dev/null``), or its
            folder cannot be created or written (an ``OSError`` too).
    """
    target = as_path(path, owner=owner, name=name)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise FileAccessError(f"{owner}: cannot write `{name}` '{_shown(target)}': {exc.strerror or exc}.") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise FileAccessError(
            f"{owner}: `{name}` '{_shown(target)}' is {_kind(info.st_mode)}; refusing to replace it with a file."
        )
    try:
        if make_parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(target)
        tmp = temp_name(target)
        handle = open(tmp, "xb")  # noqa: SIM115 - closed below, before the replace
    except OSError as exc:
        raise FileAccessError(f"{owner}: cannot write `{name}` '{_shown(target)}': {exc.strerror or exc}.") from None
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise FileAccessError(f"{owner}: cannot write `{name}` '{_shown(target)}': {exc.strerror or exc}.") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
