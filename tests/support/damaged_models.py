"""Seeded damaged model files (.npz): truncations, flipped bytes, rewritten dtypes and shapes, hostile configs,
zip bombs, foreign formats, special paths. Shared by the reliability tests and benchmarks/reliability_stress.py.

Works on bytes and NumPy's documented ``.npz`` layout (a zip of ``.npy`` members); nothing here imports convlens.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.support.damaged_files import (
    _BOMB_CACHE,
    Damage,
    Make,
    lazy_file,
    special_path,
    write_file,
    zeros_crc,
    zeros_deflated,
)


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
        return f"truncate@{cut}", write_file("model.npz", base[:cut])

    @add(6)
    def flip() -> tuple[str, Make]:
        data = bytearray(base)
        where = rng.randrange(len(data))
        data[where] ^= rng.randrange(1, 256)
        return f"flip@{where}", write_file("model.npz", bytes(data))

    @add(2)
    def flips() -> tuple[str, Make]:
        data = bytearray(base)
        spots = [rng.randrange(len(data)) for _ in range(rng.randrange(2, 20))]
        for where in spots:
            data[where] ^= rng.randrange(1, 256)
        return f"flips x{len(spots)}", write_file("model.npz", bytes(data))

    @add(1)
    def zero_range() -> tuple[str, Make]:
        start = rng.randrange(len(base))
        end = min(len(base), start + rng.randrange(1, 200))
        return f"zeros@{start}:{end}", write_file("model.npz", base[:start] + bytes(end - start) + base[end:])

    @add(1)
    def append() -> tuple[str, Make]:
        return "appended", write_file("model.npz", base + bytes(rng.randrange(256) for _ in range(64)))

    if not legacy:

        @add(3)
        def dtype() -> tuple[str, Make]:
            target = rng.choice(["float64", "float16", "int32", "int8", "bool", "complex64", "U12", "S12", "object"])
            if target in ("U12", "S12"):
                return f"dtype {target}", write_file("model.npz", rewrite_weight(lambda a: a.astype(target)))
            return f"dtype {target}", write_file(
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

            return f"shape {how}", write_file("model.npz", rewrite_weight(change))

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

            return f"values {how}", write_file("model.npz", rewrite_weight(change))

        @add(5)
        def config_edit() -> tuple[str, Make]:
            label, new = rng.choice(edits)
            return f"config {label}", write_file("model.npz", write_members(with_config(members, new)))

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
            return f"optimizer {how} {name}", write_file("model.npz", write_members(out))

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
            return f"structure {how}", write_file("model.npz", buffer.getvalue())
        elif how == "config_2d":
            raw = npy_array(members["__config__.npy"])
            out["__config__.npy"] = npy_bytes(np.pad(raw, (0, (-raw.size) % 2)).reshape(2, -1))
        elif how == "config_float":
            out["__config__.npy"] = npy_bytes(npy_array(members["__config__.npy"]).astype(np.float32))
        else:
            out["__config__.npy"] = npy_bytes(np.frombuffer(b"\xff\xfe{}", np.uint8))
        return f"structure {how}", write_file("model.npz", write_members(out, compression))

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
        return f"header {how} {name}", write_file("model.npz", write_members(out))

    @add(1)
    def bomb() -> tuple[str, Make]:
        name = rng.choice([*names, "__config__.npy"])
        size = 2**31
        payload = raw_npy_header((size // 4,)) if name != "__config__.npy" else raw_npy_header((size,), "|u1")
        return f"zip bomb {name}", lazy_file("model.npz", lambda: _zip_with_bomb(members, name, payload, size))

    @add(1)
    def lying_size() -> tuple[str, Make]:
        # The central directory declares a huge uncompressed size for a small stored member.
        data = bytearray(base)
        marker = data.rfind(b"PK\x01\x02")
        struct.pack_into("<I", data, marker + 24, 0xFFFFFFF0)
        return "central directory size", write_file("model.npz", bytes(data))

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
            return f"renamed {how}", special_path(how, "model.npz")
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
        return f"renamed {how}", write_file("model.npz", data)

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
