"""Seeded generators of damaged model (.npz) and IDX files, shared by the reliability tests and the stress script.

A damage is ``(label, make)``: ``make(folder) -> path`` writes the damaged file (or directory, FIFO, link) into
``folder`` and returns the path to read. Nothing here imports convlens: the damages work on bytes and on the
documented file layouts (a NumPy ``.npz`` zip of ``.npy`` members; IDX's magic, big-endian sizes and data).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Make = Callable[[Path], Path]
Damage = tuple[str, Make]

_BOMB_CACHE: dict[tuple[str, int], bytes] = {}
_CRC_CACHE: dict[tuple[str, int], int] = {}


def _write(name: str, data: bytes) -> Make:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return make


def _lazy(name: str, build: Callable[[], bytes]) -> Make:
    """Like :func:`_write`, computing the bytes only when the file is made (bombs take seconds to build)."""

    def make(folder: Path) -> Path:
        return _write(name, build())(folder)

    return make


def _special(kind: str, name: str) -> Make:
    def make(folder: Path) -> Path:
        path = folder / name
        if kind == "directory":
            path.mkdir(exist_ok=True)
        elif kind == "fifo":
            if not path.exists():
                os.mkfifo(path)
        elif kind == "dev_zero":
            if not path.exists():
                path.symlink_to("/dev/zero")
        elif kind == "dangling" and not path.is_symlink():
            path.symlink_to(folder / "does-not-exist")
        return path

    return make


def zeros_deflated(size: int) -> bytes:
    """A raw-deflate stream of ``size`` zero bytes (cached: a 2 GiB stream takes a few seconds once)."""
    key = ("deflate", size)
    if key not in _BOMB_CACHE:
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        chunk = bytes(1 << 20)
        parts = [comp.compress(chunk) for _ in range(size >> 20)]
        parts.append(comp.compress(bytes(size & ((1 << 20) - 1))))
        parts.append(comp.flush())
        _BOMB_CACHE[key] = b"".join(parts)
    return _BOMB_CACHE[key]


def zeros_crc(size: int, start: int = 0) -> int:
    """CRC-32 of ``size`` zero bytes continuing from ``start`` (cached for a start of 0)."""
    key = ("crc", size)
    if start == 0 and key in _CRC_CACHE:
        return _CRC_CACHE[key]
    crc = start
    chunk = bytes(1 << 20)
    for _ in range(size >> 20):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(bytes(size & ((1 << 20) - 1)), crc)
    if start == 0:
        _CRC_CACHE[key] = crc
    return crc


def zeros_gzip(size: int) -> bytes:
    """One gzip member holding ``size`` zero bytes (cached)."""
    key = ("gzip", size)
    if key not in _BOMB_CACHE:
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        trailer = struct.pack("<II", zeros_crc(size) & 0xFFFFFFFF, size & 0xFFFFFFFF)
        _BOMB_CACHE[key] = header + zeros_deflated(size) + trailer
    return _BOMB_CACHE[key]


# ----- npz (model files) ----------------------------------------------------------------------------------
def read_members(data: bytes) -> dict[str, bytes]:
    """The members of a zip archive, by name."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_members(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip archive of ``members`` (as NumPy writes an .npz: stored, not compressed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    """``array`` in the .npy format."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=allow_pickle)
    return buffer.getvalue()


def npy_array(payload: bytes) -> np.ndarray:
    """Parse .npy bytes (no pickles)."""
    return np.load(io.BytesIO(payload), allow_pickle=False)


def raw_npy_header(shape: tuple[int, ...], descr: str = "<f4", fortran: bool = False) -> bytes:
    """A version 1.0 .npy header declaring ``shape`` and ``descr`` (no data follows)."""
    text = f"{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    pad = 64 - (10 + len(text) + 1) % 64
    text += " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def config_of(members: dict[str, bytes]) -> dict[str, Any]:
    """The JSON config stored in ``__config__.npy``."""
    result: dict[str, Any] = json.loads(npy_array(members["__config__.npy"]).tobytes().decode("utf-8"))
    return result


def with_config(members: dict[str, bytes], config: Any) -> dict[str, bytes]:
    """``members`` with ``__config__`` replaced (any JSON, or raw text)."""
    text = config if isinstance(config, str) else json.dumps(config)
    out = dict(members)
    out["__config__.npy"] = npy_bytes(np.frombuffer(text.encode("utf-8"), np.uint8))
    return out


def weight_names(members: dict[str, bytes]) -> list[str]:
    return [name for name in members if name.startswith("layer_")]


def _config_edits(config: dict[str, Any], rng: random.Random) -> list[tuple[str, Any]]:
    """Edits of a model config: (label, new config or raw text)."""

    def edit(fn: Callable[[dict[str, Any]], Any]) -> Any:
        c = json.loads(json.dumps(config))
        result = fn(c)
        return c if result is None else result

    def layer_set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
        def fn(c: dict[str, Any]) -> None:
            layer = rng.choice(c["model"]["layers"])
            layer["config"][key] = value

        return fn

    deep = "[" * 100_000 + "]" * 100_000
    return [
        ("no_model", edit(lambda c: c.pop("model"))),
        ("no_format", edit(lambda c: c.pop("format"))),
        ("format_v9", edit(lambda c: c.update(format="convlens.model/9"))),
        ("format_int", edit(lambda c: c.update(format=1))),
        ("model_list", edit(lambda c: c.update(model=[]))),
        ("layers_dict", edit(lambda c: c["model"].update(layers={}))),
        ("layers_none", edit(lambda c: c["model"].update(layers=None))),
        ("layers_str", edit(lambda c: c["model"].update(layers="conv"))),
        ("layer_entry_int", edit(lambda c: c["model"]["layers"].append(3))),
        ("layer_no_config", edit(lambda c: c["model"]["layers"][0].pop("config"))),
        ("layer_config_list", edit(lambda c: c["model"]["layers"][0].update(config=[1]))),
        ("class_unknown", edit(lambda c: c["model"]["layers"][0].update(class_name="Lambda"))),
        ("class_int", edit(lambda c: c["model"]["layers"][0].update(class_name=7))),
        ("class_base", edit(lambda c: c["model"]["layers"][0].update(class_name="Layer"))),
        ("kwarg_unknown", edit(layer_set("nope", 1))),
        ("kwarg_dunder", edit(layer_set("__class__", "x"))),
        ("filters_huge", edit(layer_set("filters", 10**9))),
        ("units_huge", edit(layer_set("units", 10**12))),
        ("kernel_negative", edit(layer_set("kernel_size", [-1, 3]))),
        ("epsilon_nan", edit(layer_set("epsilon", float("nan")))),
        ("rate_inf", edit(layer_set("rate", float("inf")))),
        ("activation_eval", edit(layer_set("activation", "__import__('os').system('true')"))),
        ("activation_int", edit(layer_set("activation", 3))),
        ("padding_huge", edit(layer_set("padding", [[10**9, 10**9], [0, 0]]))),
        ("dtype_object", edit(layer_set("dtype", "object"))),
        ("dtype_complex", edit(layer_set("dtype", "complex64"))),
        ("name_int", edit(layer_set("name", 5))),
        ("name_dup", edit(lambda c: [layer["config"].update(name="same") for layer in c["model"]["layers"]])),
        ("input_shape_huge", edit(lambda c: c["model"].update(input_shape=[10**6, 10**6, 1]))),
        ("input_shape_neg", edit(lambda c: c["model"].update(input_shape=[-28, 28, 1]))),
        ("input_shape_str", edit(lambda c: c["model"].update(input_shape="28x28"))),
        ("input_shape_none", edit(lambda c: c["model"].update(input_shape=None))),
        ("compile_opt_unknown", edit(lambda c: c["compile"]["optimizer"].update(class_name="AdamW"))),
        ("compile_lr_nan", edit(lambda c: c["compile"]["optimizer"]["config"].update(learning_rate=float("nan")))),
        ("compile_lr_str", edit(lambda c: c["compile"]["optimizer"]["config"].update(learning_rate="0.1"))),
        ("compile_opt_kwarg", edit(lambda c: c["compile"]["optimizer"]["config"].update(lr=0.1))),
        ("compile_loss", edit(lambda c: c["compile"].update(loss="hinge"))),
        ("compile_metrics", edit(lambda c: c["compile"].update(metrics="accuracy"))),
        ("compile_metrics_unknown", edit(lambda c: c["compile"].update(metrics=["f1x"]))),
        ("iterations_str", edit(lambda c: c["compile"].update(iterations="abc"))),
        ("iterations_neg", edit(lambda c: c["compile"].update(iterations=-5))),
        ("iterations_huge", edit(lambda c: c["compile"].update(iterations=10**30))),
        ("history_str", edit(lambda c: c.update(history="x"))),
        ("history_values", edit(lambda c: c.update(history={"history": {"loss": ["a"]}, "epoch": [0]}))),
        ("history_nested", edit(lambda c: c.update(history={"history": {"loss": [[1.0]]}, "epoch": ["x"]}))),
        ("weights_only", edit(lambda c: c.update(weights_only=True))),
        ("json_list", "[1, 2, 3]"),
        ("json_null", "null"),
        ("json_garbage", "{not json"),
        ("json_deep", deep),
        ("json_deep_object", '{"a":' * 50_000 + "1" + "}" * 50_000),
        ("json_nan_top", "NaN"),
        ("json_huge_int", '{"format": ' + "9" * 100_000 + "}"),
    ]


def model_damages(base: bytes, rng: random.Random, count: int, *, legacy: bool = False) -> list[Damage]:
    """``count`` damaged versions of the model file ``base`` (bytes of a valid .npz model).

    ``legacy`` leaves out the rewrites that keep a consistent file (a legacy file has no checksums, so a
    consistently rewritten value cannot be told from the saved one).
    """
    members = read_members(base)
    names = weight_names(members)
    config = config_of(members)
    edits = _config_edits(config, rng)
    damages: list[Damage] = []

    def pick_weight() -> str:
        return rng.choice(names)

    def rewrite_weight(transform: Callable[[np.ndarray], Any], pickle: bool = False) -> bytes:
        name = pick_weight()
        out = dict(members)
        out[name] = npy_bytes(transform(npy_array(members[name])), allow_pickle=pickle)
        return write_members(out)

    generators: list[tuple[float, Callable[[], tuple[str, Make]]]] = []

    def add(weight: float) -> Callable[[Callable[[], tuple[str, Make]]], Callable[[], tuple[str, Make]]]:
        def register(fn: Callable[[], tuple[str, Make]]) -> Callable[[], tuple[str, Make]]:
            generators.append((weight, fn))
            return fn

        return register

    @add(4)
    def truncate() -> tuple[str, Make]:
        cut = rng.randrange(len(base))
        return f"truncate@{cut}", _write("model.npz", base[:cut])

    @add(6)
    def flip() -> tuple[str, Make]:
        data = bytearray(base)
        where = rng.randrange(len(data))
        data[where] ^= rng.randrange(1, 256)
        return f"flip@{where}", _write("model.npz", bytes(data))

    @add(2)
    def flips() -> tuple[str, Make]:
        data = bytearray(base)
        spots = [rng.randrange(len(data)) for _ in range(rng.randrange(2, 20))]
        for where in spots:
            data[where] ^= rng.randrange(1, 256)
        return f"flips x{len(spots)}", _write("model.npz", bytes(data))

    @add(1)
    def zero_range() -> tuple[str, Make]:
        start = rng.randrange(len(base))
        end = min(len(base), start + rng.randrange(1, 200))
        return f"zeros@{start}:{end}", _write("model.npz", base[:start] + bytes(end - start) + base[end:])

    @add(1)
    def append() -> tuple[str, Make]:
        return "appended", _write("model.npz", base + bytes(rng.randrange(256) for _ in range(64)))

    if not legacy:

        @add(3)
        def dtype() -> tuple[str, Make]:
            target = rng.choice(["float64", "float16", "int32", "int8", "bool", "complex64", "U12", "S12", "object"])
            if target in ("U12", "S12"):
                return f"dtype {target}", _write("model.npz", rewrite_weight(lambda a: a.astype(target)))
            return f"dtype {target}", _write(
                "model.npz", rewrite_weight(lambda a: a.astype(target), pickle=target == "object")
            )

        @add(3)
        def shape() -> tuple[str, Make]:
            how = rng.choice(["transpose", "flat", "extra", "drop", "empty", "bigger", "scalar"])

            def change(a: np.ndarray) -> np.ndarray:
                if how == "transpose":
                    return a.T.copy() if a.ndim > 1 else a[::-1].copy()
                if how == "flat":
                    return a.reshape(-1)
                if how == "extra":
                    return a[None]
                if how == "drop":
                    return a[0] if a.ndim else a
                if how == "empty":
                    return a[:0]
                if how == "bigger":
                    return np.concatenate([a.reshape(-1), a.reshape(-1)])
                return np.array(a.reshape(-1)[0])

            return f"shape {how}", _write("model.npz", rewrite_weight(change))

        @add(1)
        def values() -> tuple[str, Make]:
            how = rng.choice(["nan", "inf", "scaled", "one_ulp"])

            def change(a: np.ndarray) -> np.ndarray:
                b = a.copy()
                if b.size == 0:
                    return b
                if how == "nan":
                    b.flat[0] = np.nan
                elif how == "inf":
                    b.flat[0] = np.inf
                elif how == "scaled":
                    b *= 2
                else:
                    b.flat[0] = np.nextafter(b.flat[0], np.inf)
                return b

            return f"values {how}", _write("model.npz", rewrite_weight(change))

        @add(5)
        def config_edit() -> tuple[str, Make]:
            label, new = rng.choice(edits)
            return f"config {label}", _write("model.npz", write_members(with_config(members, new)))

        @add(1)
        def optimizer_state() -> tuple[str, Make]:
            slots = [n for n in members if n.startswith("optimizer/")]
            out = dict(members)
            how = rng.choice(["drop", "shape", "unknown", "str"])
            name = rng.choice(slots) if slots else "optimizer/m_0.npy"
            if how == "drop":
                out.pop(name, None)
            elif how == "shape":
                out[name] = npy_bytes(np.zeros((7, 7), np.float32))
            elif how == "unknown":
                out["optimizer/zeta_0.npy"] = npy_bytes(np.zeros(3, np.float32))
            else:
                out[name] = npy_bytes(np.array(["x"]))
            return f"optimizer {how} {name}", _write("model.npz", write_members(out))

    @add(2)
    def structure() -> tuple[str, Make]:
        how = rng.choice(
            [
                "drop_weight",
                "drop_config",
                "extra_member",
                "rename",
                "compressed",
                "dir_member",
                "dup_member",
                "config_2d",
                "config_float",
                "config_not_utf8",
            ]
        )
        out = dict(members)
        compression = zipfile.ZIP_STORED
        if how == "drop_weight":
            out.pop(pick_weight())
        elif how == "drop_config":
            out.pop("__config__.npy")
        elif how == "extra_member":
            out["layer_99/0.npy"] = npy_bytes(np.zeros(3, np.float32))
        elif how == "rename":
            name = pick_weight()
            out[name.replace(".npy", ".bin")] = out.pop(name)
        elif how == "compressed":
            compression = zipfile.ZIP_DEFLATED
        elif how == "dir_member":
            out["layer_0/"] = b""
        elif how == "dup_member":
            data = write_members(out) + b""
            buffer = io.BytesIO(data)
            with zipfile.ZipFile(buffer, "a") as archive, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                name = pick_weight()
                archive.writestr(name, npy_bytes(np.zeros(3, np.float32)))
            return f"structure {how}", _write("model.npz", buffer.getvalue())
        elif how == "config_2d":
            raw = npy_array(members["__config__.npy"])
            out["__config__.npy"] = npy_bytes(np.pad(raw, (0, (-raw.size) % 2)).reshape(2, -1))
        elif how == "config_float":
            out["__config__.npy"] = npy_bytes(npy_array(members["__config__.npy"]).astype(np.float32))
        else:
            out["__config__.npy"] = npy_bytes(np.frombuffer(b"\xff\xfe{}", np.uint8))
        return f"structure {how}", _write("model.npz", write_members(out, compression))

    @add(2)
    def header() -> tuple[str, Make]:
        how = rng.choice(
            ["huge_shape", "huge_dims", "object", "void", "fortran", "bad_magic", "long_header", "negative"]
        )
        name = rng.choice([*names, "__config__.npy"])
        out = dict(members)
        if how == "huge_shape":
            out[name] = raw_npy_header((10**12,))
        elif how == "huge_dims":
            out[name] = raw_npy_header((2**31, 2**31, 2**31), "<f8")
        elif how == "object":
            out[name] = raw_npy_header((3,), "|O") + b"\x80\x04N."
        elif how == "void":
            out[name] = raw_npy_header((3,), "|V4") + bytes(12)
        elif how == "fortran":
            a = npy_array(members[name])
            out[name] = npy_bytes(np.asfortranarray(a))
        elif how == "bad_magic":
            out[name] = b"\x93NUMPZ" + members[name][6:]
        elif how == "long_header":
            out[name] = b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31) + b"{"
        else:
            out[name] = raw_npy_header((-5,))
        return f"header {how} {name}", _write("model.npz", write_members(out))

    @add(1)
    def bomb() -> tuple[str, Make]:
        name = rng.choice([*names, "__config__.npy"])
        size = 2**31
        payload = raw_npy_header((size // 4,)) if name != "__config__.npy" else raw_npy_header((size,), "|u1")
        return f"zip bomb {name}", _lazy("model.npz", lambda: _zip_with_bomb(members, name, payload, size))

    @add(1)
    def lying_size() -> tuple[str, Make]:
        # The central directory declares a huge uncompressed size for a small stored member.
        data = bytearray(base)
        marker = data.rfind(b"PK\x01\x02")
        struct.pack_into("<I", data, marker + 24, 0xFFFFFFF0)
        return "central directory size", _write("model.npz", bytes(data))

    @add(2)
    def renamed() -> tuple[str, Make]:
        how = rng.choice(
            [
                "npy",
                "gzip",
                "png",
                "text",
                "empty",
                "hdf5",
                "zip_text",
                "tar",
                "directory",
                "fifo",
                "dev_zero",
                "dangling",
                "pickle",
            ]
        )
        if how in ("directory", "fifo", "dev_zero", "dangling"):
            return f"renamed {how}", _special(how, "model.npz")
        data = {
            "npy": npy_bytes(np.zeros((3, 3), np.float32)),
            "gzip": gzip.compress(base),
            "png": b"\x89PNG\r\n\x1a\n" + bytes(64),
            "text": b"this is not a model\n",
            "empty": b"",
            "hdf5": b"\x89HDF\r\n\x1a\n" + bytes(64),
            "zip_text": write_members({"readme.txt": b"hello"}),
            "tar": b"model.json" + bytes(502) + b"ustar\x0000",
            "pickle": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.",
        }[how]
        return f"renamed {how}", _write("model.npz", data)

    weights = [w for w, _ in generators]
    for _ in range(count):
        fn = rng.choices([g for _, g in generators], weights)[0]
        damages.append(fn())
    return damages


def _zip_with_bomb(members: dict[str, bytes], name: str, header: bytes, size: int) -> bytes:
    """``members`` with ``name`` replaced by ``header`` + ``size`` zero bytes, deflated (a few MB on disk; cached)."""
    key = (f"zip:{name}:{hash(header)}:{hash(tuple(sorted(members)))}", size)
    if key not in _BOMB_CACHE:
        _BOMB_CACHE[key] = _build_zip_bomb(members, name, header, size)
    return _BOMB_CACHE[key]


def _build_zip_bomb(members: dict[str, bytes], name: str, header: bytes, size: int) -> bytes:
    out = dict(members)
    out.pop(name)
    head = write_members(out, zipfile.ZIP_STORED)
    # Append one deflated member by hand: local header, data, then rebuild the central directory.
    payload = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = payload.compress(header) + payload.flush(zlib.Z_FULL_FLUSH) + zeros_deflated(size)
    crc = zlib.crc32(header)
    # crc32(header + zeros) from crc32(header): continue over the zeros (one pass per header, ~1 s for 2 GiB).
    crc = zeros_crc(size, crc)
    total = len(header) + size
    buffer = io.BytesIO(head)
    with zipfile.ZipFile(buffer, "a") as archive:
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        # Write a tiny placeholder, then patch its sizes and data by rebuilding below.
        archive.writestr(info, b"")
    data = bytearray(buffer.getvalue())
    # Locate the placeholder's local header (the last one) and splice in the real data.
    local = data.rfind(b"PK\x03\x04")
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    start = local + 30 + name_len + extra_len
    central = data.find(b"PK\x01\x02", start)
    placeholder_len = central - start
    new = bytearray(data[:start]) + body + data[central:]
    delta = len(body) - placeholder_len
    struct.pack_into("<III", new, local + 14, crc & 0xFFFFFFFF, len(body), total & 0xFFFFFFFF)
    # Patch the matching central directory entry (the last one) and the end record's offset.
    entry = new.rfind(b"PK\x01\x02")
    struct.pack_into("<III", new, entry + 16, crc & 0xFFFFFFFF, len(body), total & 0xFFFFFFFF)
    end = new.rfind(b"PK\x05\x06")
    (cd_offset,) = struct.unpack_from("<I", new, end + 16)
    struct.pack_into("<I", new, end + 16, cd_offset + delta)
    return bytes(new)


def legacy_model_bytes(base: bytes) -> bytes:
    """The same model as ``base`` in the first convlens format (``convlens.model/1``: no checksums)."""
    members = read_members(base)
    config = config_of(members)
    config["format"] = "convlens.model/1"
    config.pop("checksums", None)
    members.pop("__checksum__.npy", None)
    return write_members(with_config(members, config))


# ----- IDX ------------------------------------------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of ``array`` (uint8, int8, >i2, >i4, >f4, >f8), written from the format's description."""
    codes = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}
    code = codes[array.dtype.name]
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def idx_reference(data: bytes) -> np.ndarray | None:
    """An independent IDX reader for the oracle: the array, or None when the bytes are not a valid IDX file."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return None
    if len(data) < 4 or data[:2] != b"\x00\x00":
        return None
    kinds = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    code, ndim = data[2], data[3]
    if code not in kinds or ndim == 0 or len(data) < 4 + 4 * ndim:
        return None
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(kinds[code])
    count = 1
    for d in dims:
        count *= d
    if len(data) - 4 - 4 * ndim != count * dtype.itemsize:
        return None
    return np.frombuffer(data, dtype, count, 4 + 4 * ndim).reshape(dims).astype(dtype.newbyteorder("="))


def idx_damages(rng: random.Random, count: int) -> list[tuple[str, Make, bytes | None]]:
    """``count`` damaged IDX files: ``(label, make, raw bytes or None for non-files and bombs)``."""
    base_arrays = [
        np.arange(60, dtype=np.uint8).reshape(3, 4, 5),
        np.arange(-6, 6, dtype=np.int16).reshape(4, 3),
        np.linspace(-1, 1, 10).astype(np.float32),
        np.arange(24, dtype=np.int32).reshape(2, 3, 4),
    ]
    out: list[tuple[str, Make, bytes | None]] = []
    for i in range(count):
        arr = rng.choice(base_arrays)
        raw = idx_bytes(arr)
        gz = rng.random() < 0.3
        how = rng.choices(
            [
                "truncate",
                "flip",
                "flip_header",
                "dims_huge",
                "ndim_255",
                "trailing",
                "gzip_truncate",
                "gzip_flip",
                "gzip_bomb",
                "gzip_bomb_trailing",
                "double_gzip",
                "special",
                "foreign",
                "valid",
            ],
            [4, 4, 4, 2, 1, 1, 2, 2, 1, 1, 0.5, 1, 1, 1],
        )[0]
        name = f"data{i % 7}.idx" + (".gz" if gz else "")
        data: bytes | None
        if how == "truncate":
            data = raw[: rng.randrange(len(raw))]
        elif how in ("flip", "flip_header"):
            b = bytearray(raw)
            where = rng.randrange(4 + 4 * arr.ndim) if how == "flip_header" else rng.randrange(len(b))
            b[where] ^= rng.randrange(1, 256)
            data = bytes(b)
        elif how == "dims_huge":
            data = raw[:4] + struct.pack(">I", 0xFFFFFFFF) * arr.ndim + raw[4 + 4 * arr.ndim :]
        elif how == "ndim_255":
            data = b"\x00\x00\x08\xff" + b"\x00\x00\x00\x02" * 255 + bytes(64)
        elif how == "trailing":
            data = raw + bytes(rng.randrange(1, 9))
        elif how == "gzip_truncate":
            z = gzip.compress(raw, mtime=0)
            out.append((f"gzip truncate {how}", _write(name + ".gz", z[: rng.randrange(len(z))]), None))
            continue
        elif how == "gzip_flip":
            z = bytearray(gzip.compress(raw, mtime=0))
            z[rng.randrange(len(z))] ^= rng.randrange(1, 256)
            out.append(("gzip flip", _write(name + ".gz", bytes(z)), bytes(z)))
            continue
        elif how == "gzip_bomb":
            size = 2**31
            head = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", size), mtime=0)
            out.append(("gzip bomb 2 GiB declared", _lazy("bomb.idx.gz", lambda h=head: h + zeros_gzip(2**31)), None))
            continue
        elif how == "gzip_bomb_trailing":
            head = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 4), mtime=0)
            out.append(("gzip bomb trailing 2 GiB", _lazy("bomb2.idx.gz", lambda h=head: h + zeros_gzip(2**31)), None))
            continue
        elif how == "double_gzip":
            data = gzip.compress(gzip.compress(raw, mtime=0), mtime=0)
        elif how == "special":
            kind = rng.choice(["directory", "fifo", "dev_zero", "dangling"])
            out.append((f"special {kind}", _special(kind, f"special_{kind}.idx"), None))
            continue
        elif how == "foreign":
            data = rng.choice([b"", b"\x89PNG\r\n\x1a\n" + bytes(32), b"hello world\n", npy_bytes(arr)])
        else:
            data = raw
        if gz:
            data = gzip.compress(data, mtime=0)
        out.append((f"{how}{' (gzip)' if gz else ''}", _write(name, data), data))
    return out
