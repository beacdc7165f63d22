"""Model files: checksums name the damaged array, readers stay within declared sizes, damaged files never load
as something else (seeded generator of damages, shared with benchmarks/reliability_stress.py)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.errors import ConvlensError, DataError, FileAccessError, MissingFileError, ResourceError, ShapeError
from convlens.files import TEMP_MARK
from tests.support import damaged_files
from tests.support import damaged_models as dmg


def small_model(seed: int = 0) -> cl.Sequential:
    cl.utils.set_random_seed(seed)
    model = cl.Sequential(
        [
            cl.layers.Conv2D(3, 3, padding="same", activation="relu", input_shape=(6, 6, 1)),
            cl.layers.BatchNormalization(),
            cl.layers.MaxPooling2D(),
            cl.layers.Flatten(),
            cl.layers.Dense(4, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    rng = np.random.default_rng(seed)
    model.fit(rng.standard_normal((16, 6, 6, 1)), rng.integers(0, 4, 16), epochs=1, batch_size=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, cl.Sequential]:
    model = small_model()
    path = tmp_path_factory.mktemp("base") / "model.npz"
    model.save(path)
    return path.read_bytes(), model


def same_model(loaded: cl.Sequential, model: cl.Sequential) -> bool:
    pairs = zip(loaded.get_weights(), model.get_weights(), strict=True)
    same_weights = all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in pairs)
    same_state = all(
        np.array_equal(np.asarray(v), np.asarray(model.optimizer.get_state()[k]))
        for k, v in loaded.optimizer.get_state().items()
    )
    return same_weights and same_state and loaded.get_config() == model.get_config()


def test_the_format_carries_a_checksum_of_every_array_and_of_the_config(saved: tuple[bytes, Any]) -> None:
    members = dmg.read_members(saved[0])
    config = dmg.config_of(members)
    assert config["format"] == "convlens.model/2"
    arrays = {name[: -len(".npy")] for name in members} - {"__config__", "__checksum__"}
    assert set(config["checksums"]) == arrays
    import hashlib

    for name, record in config["checksums"].items():
        array = dmg.npy_array(members[name + ".npy"])
        assert record["sha256"] == hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()
        assert (record["dtype"], record["shape"]) == (array.dtype.str, list(array.shape))
    raw = dmg.npy_array(members["__config__.npy"]).tobytes()
    assert dmg.npy_array(members["__checksum__.npy"]).tobytes().decode() == hashlib.sha256(raw).hexdigest()


def _write(tmp_path: Path, data: bytes, name: str = "m.npz") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _rewritten(base: bytes, member: str, array: np.ndarray) -> bytes:
    members = dmg.read_members(base)
    members[member + ".npy"] = dmg.npy_bytes(array)
    return dmg.write_members(members)


def test_a_changed_value_dtype_or_shape_is_a_data_error_naming_the_array(saved: Any, tmp_path: Path) -> None:
    base, model = saved
    kernel = model.layers[0].get_weights()[0]
    changed = kernel.copy()
    changed.flat[0] = np.nextafter(changed.flat[0], np.float32(1))
    cases = [
        (changed, r"array 'layer_0/0' is damaged: its SHA-256 differs from the one saved with it\.$"),
        (kernel.astype(np.float64), r"array 'layer_0/0' is <f8 \(3, 3, 1, 3\) but was saved as <f4 \(3, 3, 1, 3\)\.$"),
        (kernel.reshape(-1), r"array 'layer_0/0' has shape \(27,\), expected \(3, 3, 1, 3\)\.$"),
        (kernel.astype("U12"), r"array 'layer_0/0' has dtype <U12, expected plain floats\.$"),
    ]
    for array, message in cases:
        with pytest.raises(DataError, match=message):
            cl.load_model(_write(tmp_path, _rewritten(base, "layer_0/0", array)))


def test_a_flipped_config_byte_is_caught_by_the_config_checksum(saved: Any, tmp_path: Path) -> None:
    members = dmg.read_members(saved[0])
    text = dmg.npy_array(members["__config__.npy"]).tobytes().replace(b'"epsilon": 0.001', b'"epsilon": 0.002')
    members["__config__.npy"] = dmg.npy_bytes(np.frombuffer(text, np.uint8))
    with pytest.raises(DataError, match=r"has a damaged __config__: its SHA-256 differs from the one saved with it"):
        cl.load_model(_write(tmp_path, dmg.write_members(members)))


def test_legacy_files_without_checksums_still_load(saved: Any, tmp_path: Path) -> None:
    base, model = saved
    legacy = _write(tmp_path, dmg.legacy_model_bytes(base))
    assert same_model(cl.load_model(legacy), model)
    # ... with the structural checks: strings as weights are refused, not read as numbers.
    members = dmg.read_members(legacy.read_bytes())
    members["layer_0/0.npy"] = dmg.npy_bytes(model.get_weights()[0].astype("U12"))
    with pytest.raises(DataError, match=r"array 'layer_0/0' has dtype <U12, expected plain floats"):
        cl.load_model(_write(tmp_path, dmg.write_members(members), "strings.npz"))
    # A flipped byte in a member's name (no checksum lists the members) must not drop that array silently.
    members = dmg.read_members(legacy.read_bytes())
    members["optimizer/m_4.npX"] = members.pop("optimizer/m_4.npy")
    with pytest.raises(DataError, match=r"has a member 'optimizer/m_4\.npX' that is not a \.npy array; convlens"):
        cl.load_model(_write(tmp_path, dmg.write_members(members), "renamed.npz"))
    members = dmg.read_members(legacy.read_bytes())
    members["opt!mizer/m_4.npy"] = members.pop("optimizer/m_4.npy")
    with pytest.raises(DataError, match=r"has an array 'opt!mizer/m_4' that no model file holds\.$"):
        cl.load_model(_write(tmp_path, dmg.write_members(members), "renamed2.npz"))


def test_declared_sizes_are_checked_before_any_allocation(saved: Any, tmp_path: Path) -> None:
    base, _ = saved
    members = dmg.read_members(base)
    members["layer_0/0.npy"] = dmg.raw_npy_header((10**12,))
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"array 'layer_0/0' has shape \(1000000000000,\), expected \(3, 3, 1, 3\)"):
        cl.load_model(_write(tmp_path, dmg.write_members(members)))
    # A zip member whose uncompressed size is a lie.
    data = bytearray(base)
    entry = data.rfind(b"PK\x01\x02")
    data[entry + 24 : entry + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    with pytest.raises(DataError):
        cl.load_model(_write(tmp_path, bytes(data), "lying.npz"))
    assert time.perf_counter() - start < 1.0


def test_a_zip_bomb_is_refused_by_the_memory_guard(saved: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 64 MiB of zeros deflate to 64 KiB; under a 16 MiB limit the reader refuses before inflating.
    members = dmg.read_members(saved[0])
    size = 64 << 20
    bomb = dmg._zip_with_bomb(members, "__config__.npy", dmg.raw_npy_header((size,), "|u1"), size)
    assert len(bomb) < 200_000
    path = _write(tmp_path, bomb)
    monkeypatch.setenv("CONVLENS_MEMORY_LIMIT", "16M")
    with pytest.raises(DataError, match=r"has a __config__ of \d+ bytes, more than the 16777216 allowed"):
        cl.load_model(path)
    members = dmg.read_members(saved[0])
    bomb = dmg._zip_with_bomb(members, "layer_4/0.npy", dmg.raw_npy_header((size // 4,)), size)
    with pytest.raises(DataError, match=r"array 'layer_4/0' has shape \(16777216,\), expected \(27, 4\)"):
        cl.load_model(_write(tmp_path, bomb, "bomb2.npz"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, r"has a __config__ nested deeper than 64 levels"),
        ('{"format": ' + "9" * 100_000 + "}", r"has a corrupt __config__ \(ValueError: Exceeds the limit"),
        ("NaN", r"has a __config__ that is a JSON float, expected an object"),
    ],
)
def test_hostile_json_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.npz"
    np.savez(path, __config__=np.frombuffer(text.encode(), np.uint8))
    with pytest.raises(DataError, match=message):
        cl.load_model(path)


def test_config_values_are_checked_by_the_layers(saved: Any, tmp_path: Path) -> None:
    config = dmg.config_of(dmg.read_members(saved[0]))
    config["format"] = "convlens.model/1"
    del config["checksums"]
    config["model"]["layers"][1]["config"]["epsilon"] = float("nan")
    members = dmg.with_config(dmg.read_members(dmg.legacy_model_bytes(saved[0])), config)
    with pytest.raises(
        DataError,
        match=r"layer 1 \(BatchNormalization\) cannot be rebuilt: BatchNormalization '\w+': `epsilon` must be a "
        r"finite number, got nan\.",
    ):
        cl.load_model(_write(tmp_path, dmg.write_members(members)))


@pytest.mark.parametrize("kind", ["directory", "fifo", "dev_zero", "dangling"])
def test_paths_that_are_not_files(tmp_path: Path, kind: str) -> None:
    path = damaged_files.special_path(kind, "m.npz")(tmp_path)
    error = MissingFileError if kind == "dangling" else FileAccessError
    with pytest.raises(error, match=r"^load_model: "):
        cl.load_model(path)


def refused_or_identical(damages: list[dmg.Damage], model: Any, tmp_path: Path) -> dict[str, int]:
    """Load every damaged file: each is refused with a one-sentence ConvlensError or loads as ``model`` itself."""
    outcomes = {"refused": 0, "identical": 0}
    for i, (label, make) in enumerate(damages):
        if "bomb" in label:
            continue  # 2 GiB streams: covered by the stress script and by the small bomb above
        folder = tmp_path / str(i)
        folder.mkdir()
        try:
            loaded = cl.load_model(make(folder))
        except ConvlensError as exc:
            message = str(exc)
            outcomes["refused"] += 1
            assert "\n" not in message, label  # one sentence, never a traceback's worth
            continue
        assert same_model(loaded, model), label
        outcomes["identical"] += 1
    return outcomes


def test_seeded_damages_never_load_as_something_else(saved: Any, tmp_path: Path) -> None:
    base, model = saved
    rng = random.Random(12)
    damages = dmg.model_damages(base, rng, 40) + dmg.model_damages(dmg.legacy_model_bytes(base), rng, 10, legacy=True)
    assert refused_or_identical(damages, model, tmp_path)["refused"] > 0


# ----- atomic saves --------------------------------------------------------------------------------------------
def test_save_refuses_to_replace_something_that_is_not_a_file(tmp_path: Path) -> None:
    model = small_model()
    os.mkfifo(tmp_path / "pipe.npz")
    with pytest.raises(FileAccessError, match=r"is a FIFO \(named pipe\); refusing to replace it with a file\.$"):
        model.save(tmp_path / "pipe.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(FileAccessError, match=r"^save: `path` '.*dir\.npz' is a directory; refusing to replace it"):
        model.save(tmp_path / "dir.npz")


def test_stale_temporaries_are_removed_by_the_next_save_or_load(tmp_path: Path) -> None:
    model = small_model()
    path = tmp_path / "m.npz"
    dead = _dead_pid()
    stale = tmp_path / f".m.npz{TEMP_MARK}{dead}-0123abcd.tmp"
    stale.write_bytes(b"half a model")
    alive = tmp_path / f".m.npz{TEMP_MARK}{os.getppid()}-0123abcd.tmp"  # a live writer's: kept
    alive.write_bytes(b"being written")
    other = tmp_path / f".other.npz{TEMP_MARK}{dead}-0123abcd.tmp"  # another target's: kept
    other.write_bytes(b"x")
    model.save(path)
    assert not stale.exists()
    assert alive.exists()
    assert other.exists()
    stale.write_bytes(b"half a model")
    cl.load_model(path)
    assert not stale.exists()


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_load_weights_into_another_architecture_names_the_layer(tmp_path: Path) -> None:
    small_model().save_weights(tmp_path / "w.npz")
    other = cl.Sequential([cl.layers.Conv2D(5, 3, padding="same", input_shape=(6, 6, 1))])
    with pytest.raises(ShapeError, match=r"^Conv2D '\w+': weight 'kernel' must have shape \(3, 3, 1, 5\), got "):
        other.load_weights(tmp_path / "w.npz")


def test_resource_error_is_not_hidden_as_a_data_error(saved: Any, tmp_path: Path) -> None:
    config = dmg.config_of(dmg.read_members(dmg.legacy_model_bytes(saved[0])))
    config["model"]["layers"][0]["config"]["input_shape"] = [10**6, 10**6, 1]
    members = dmg.with_config(dmg.read_members(dmg.legacy_model_bytes(saved[0])), config)
    with pytest.raises(ResourceError, match=r"^Dense '\w+': this call needs about"):
        cl.load_model(_write(tmp_path, dmg.write_members(members)))


def test_zipfile_is_closed_after_errors(saved: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, _rewritten(saved[0], "layer_0/0", np.zeros(3, np.float32)))
    with pytest.raises(DataError):
        cl.load_model(path)
    # Windows would refuse to delete an open file; on Linux check the descriptor table instead.
    open_files = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own descriptor)
            open_files.append(os.readlink(f"/proc/self/fd/{fd}"))
    assert str(path) not in open_files
    assert zipfile.is_zipfile(path)
    json.dumps(dmg.config_of(dmg.read_members(path.read_bytes())))  # the file itself is untouched
