"""The inspector's API: models from the folder only, numbers equal the engine's, uploads checked and capped."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import convlens as cl
from convlens.lab import samples
from convlens.lab.viz.activations import layer_outputs
from tests.support.shared_data import SHARED, shared_copy


@pytest.fixture(scope="module")
def course(lab_dirs: tuple[Path, Path]) -> Any:
    return cl.load_model(lab_dirs[0] / "course.npz")


def test_models_lists_the_folder_with_facts(client: Any, lab_dirs: tuple[Path, Path]) -> None:
    body = client.get("/api/models").json()
    assert body["folder"] == str(lab_dirs[0])
    first = body["models"][0]
    assert first["name"] == "course.npz"
    assert first["params"] == 63050
    assert first["input_shape"] == [28, 28, 1]
    assert first["epochs"] == 1
    assert len(first["history"]["loss"]) == 1


def test_forward_is_predict_and_every_layer(client: Any, course: Any) -> None:
    r = client.post("/api/forward", json={"model": "course.npz", "input": {"kind": "dataset", "index": 11}})
    assert r.status_code == 200
    body = r.json()
    x, label = samples.sample_image("mnist", 11)
    assert body["output"] == course.predict(x[None], verbose=0)[0].tolist()
    assert body["description"] == f"MNIST test image 11 (label {label})"
    maps = np.moveaxis(np.array(body["layers"][0]["maps"]), 0, -1)
    np.testing.assert_array_equal(maps, next(iter(layer_outputs(course, x[None]).values()))[0])
    assert body["trained"] is True
    assert "Server-Timing" in r.headers


def test_pixels_input_equals_predict_on_the_same_pixels(client: Any, course: Any) -> None:
    pixels = (np.random.default_rng(1).integers(0, 256, (28, 28, 1)) / 255).tolist()
    body = client.post(
        "/api/forward", json={"model": "course.npz", "input": {"kind": "pixels", "pixels": pixels}}
    ).json()
    assert body["output"] == course.predict(np.array(pixels, np.float32)[None], verbose=0)[0].tolist()
    two_d = [[row[0] for row in r] for r in pixels]  # (H, W) for a one-channel model works too
    again = client.post("/api/forward", json={"model": "course.npz", "input": {"kind": "pixels", "pixels": two_d}})
    assert again.json()["output"] == body["output"]
    wrong = client.post(
        "/api/forward", json={"model": "course.npz", "input": {"kind": "pixels", "pixels": [[0.5] * 5] * 5}}
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"] == "viz: `x` must be one image of shape (28, 28, 1), got (5, 5)."


def test_unit_summary_filters_attributions(client: Any, course: Any) -> None:
    base = {"model": "course.npz", "input": {"kind": "dataset", "index": 0}}
    name = course.layers[1].name
    unit = client.post("/api/unit", json={**base, "layer": name, "index": [4, 5, 6]}).json()
    assert unit["kind"] == "pool"
    assert unit["receptive_field"]["rows"] == [7, 10]
    assert unit["receptive_field"]["cols"] == [9, 12]
    bad = client.post("/api/unit", json={**base, "layer": name, "index": [14, 0, 0]})
    assert bad.status_code == 422
    assert "must lie inside its output (14, 14, 32)" in bad.json()["detail"]
    summary = client.get("/api/models/course.npz/summary").json()
    assert summary["totals"]["macs"] == 28 * 28 * 32 * 9 + 6272 * 10
    filters = client.get("/api/models/course.npz/filters").json()
    np.testing.assert_array_equal(
        np.array(filters["layers"][0]["kernels"])[:, 0], np.moveaxis(course.layers[0].params["kernel"][:, :, 0], -1, 0)
    )
    attributions = client.post("/api/attributions", json={**base, "class_index": 3}).json()
    assert attributions["class_index"] == 3
    assert np.array(attributions["saliency"]).shape == (28, 28)


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/models/..%2F..%2Fetc%2Fpasswd.npz/summary", 404, "Not Found"),
        ("/api/models/.hidden.npz/summary", 422, "String should match pattern"),
        ("/api/models/missing.npz/summary", 422, "no model 'missing.npz' in"),
        ("/api/models/course.npy/summary", 422, "String should match pattern"),
        ("/api/models/trial:..%2Fx.db:1/summary", 404, "Not Found"),
    ],
)
def test_model_names_cannot_leave_the_folder(client: Any, path: str, status: int, message: str) -> None:
    r = client.get(path)
    assert r.status_code == status
    assert message in r.json()["detail"]


def test_the_store_refuses_traversal_even_past_the_api(lab_dirs: tuple[Path, Path]) -> None:
    from convlens.errors import ConfigError
    from convlens.web.store import ModelStore

    store = ModelStore(lab_dirs[0])
    for name in ["../course.npz", "/etc/passwd.npz", "a/../../b.npz", "..npz", ".x.npz"]:
        with pytest.raises(ConfigError, match="model name must be letters, digits"):
            store.path(name)


def test_model_upload_is_checked_capped_and_not_overwriting(client: Any, course: Any, tmp_path: Path) -> None:
    course.save(tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    r = client.post("/api/models", params={"name": "uploaded-a.npz"}, content=data)
    assert r.status_code == 201
    assert r.json()["params"] == 63050
    again = client.post("/api/models", params={"name": "uploaded-a.npz"}, content=data)
    assert again.status_code == 409
    assert "exists already" in again.json()["detail"]
    junk = client.post("/api/models", params={"name": "junk.npz"}, content=b"not a zip file")
    assert junk.status_code == 422
    assert "is not a convlens model file" in junk.json()["detail"]
    assert "junk.npz" not in [m["name"] for m in client.get("/api/models").json()["models"]]
    assert not [p for p in Path(client.app.state.lab.models.folder).iterdir() if p.name.startswith(".")]
    big = client.post("/api/models", params={"name": "big.npz"}, content=b"0" * 10,
                      headers={"content-length": str(60 * 1024 * 1024)})  # fmt: skip
    assert big.status_code == 413
    assert "the limit is 52,428,800 bytes" in big.json()["detail"]


def _png(size: tuple[int, int], color: int = 255) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_upload_converts_with_the_lab_and_is_capped(client: Any) -> None:
    from PIL import Image

    img = Image.new("L", (40, 40), 255)
    img.paste(0, (10, 10, 30, 30))  # dark square on white paper
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    r = client.post("/api/images", params={"height": 28, "width": 28}, content=buffer.getvalue())
    assert r.status_code == 200
    pixels = np.array(r.json()["pixels"])
    assert pixels.shape == (28, 28, 1)
    assert pixels[0, 0, 0] == 0.0
    assert pixels[14, 14, 0] == 1.0
    assert "inverted" in r.json()["description"]
    assert "convlens-upload" not in r.json()["description"]
    kept = client.post("/api/images", params={"height": 4, "width": 4, "invert": "no"}, content=_png((8, 8), 51))
    assert np.array(kept.json()["pixels"]).ravel().tolist() == [np.float32(51) / np.float32(255)] * 16
    huge = client.post("/api/images", content=_png((5000, 4000)))
    assert huge.status_code == 413
    assert (
        huge.json()["detail"] == "the image is 5000x4000 = 20,000,000 pixels; the limit is 16,777,216 (e.g. 4096x4096)."
    )
    assert client.post("/api/images", content=b"\x89PNG junk").status_code == 422
    assert client.post("/api/images", content=b"").json()["detail"].startswith("the image is empty")
    too_many = client.post("/api/images", content=b"0" * (5 * 1024 * 1024 + 1))
    assert too_many.status_code == 413
    assert "the limit is 5,242,880 bytes" in too_many.json()["detail"]
    assert client.post("/api/images", params={"height": 100}, content=_png((8, 8))).status_code == 422


@pytest.mark.slow  # loads all of Fashion-MNIST
def test_other_datasets_feed_the_playground_and_the_inspector(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    shared_copy("fashion-mnist")  # (not every machine has Debian's dataset-fashion-mnist package)
    monkeypatch.setenv("CONVLENS_DATA", str(SHARED))
    x, label = samples.sample_image("fashion_mnist", 0)
    image = client.get("/api/datasets/fashion_mnist/images/0").json()
    assert image["label"] == label
    assert image["label_name"] == samples.describe("fashion_mnist")["class_names"][label]
    assert image["pixels"] == x.astype(float).tolist()
    body = client.post("/api/forward", json={"input": {"kind": "dataset", "dataset": "fashion_mnist"}}).json()
    assert body["description"] == f"Fashion-MNIST test image 0 (label {label})"
    trace = client.post("/api/playground", json={"input": {"kind": "dataset", "dataset": "fashion_mnist"}}).json()
    assert trace["trace"]["input"] == x[..., 0].astype(float).tolist()
