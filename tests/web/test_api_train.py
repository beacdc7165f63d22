"""Live training over HTTP: one job at a time (409), events as SSE, pause/stop, save into the folder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import convlens as cl

TINY = {"filters": 4, "train_limit": 300, "test_limit": 100, "batch_size": 50, "epochs": 2, "validation_split": 0.0}


def _wait(client: Any, states: tuple[str, ...], timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get("/api/train").json()
        if body["state"] in states:
            return body  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"the job never reached {states}: {body['state']}")


def _sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_a_run_streams_its_events_and_saves(client: Any, lab_dirs: tuple[Path, Path]) -> None:
    r = client.post("/api/train", json=TINY)
    assert r.status_code == 202
    job = r.json()["job"]
    assert r.json()["config"]["filters"] == 4
    done = _wait(client, ("finished", "failed"))
    assert done["state"] == "finished", done
    stream = client.get("/api/train/events", params={"job": job})
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = _sse(stream.text)
    kinds = [name for name, _ in events if name != "maps"]  # the latest maps come whenever they change
    assert kinds[:2] == ["state", "start"]
    assert kinds[-2:] == ["done", "end"]
    assert kinds.count("progress") >= 2
    assert kinds.count("epoch") == 2
    assert "maps" in [name for name, _ in events]
    final = next(data for name, data in events if name == "done")
    assert final["state"] == "finished"
    assert 0.0 <= final["test_accuracy"] <= 1.0
    resumed = _sse(client.get("/api/train/events", headers={"Last-Event-ID": f"{job}:{final['seq'] - 1}"}).text)
    assert [name for name, _ in resumed if name != "maps"] == ["done", "end"]
    saved = client.post("/api/train/save", json={"name": "tiny-live.npz"})
    assert saved.status_code == 200
    model = cl.load_model(lab_dirs[0] / "tiny-live.npz")
    assert model.layers[0].filters == 4
    assert len(model.history.history["loss"]) == 2
    assert client.post("/api/train/save", json={"name": "tiny-live.npz"}).status_code == 409
    assert client.post("/api/train/save", json={"name": "../x.npz"}).status_code == 422
    assert client.post("/api/train/pause").status_code == 409


def test_one_job_at_a_time_and_stop(client: Any) -> None:
    r = client.post("/api/train", json={**TINY, "epochs": 100, "train_limit": 2000, "batch_size": 20})
    assert r.status_code == 202
    second = client.post("/api/train", json=TINY)
    assert second.status_code == 409
    assert "a training job is already" in second.json()["detail"]
    assert "One job runs at a time" in second.json()["detail"]
    _wait(client, ("running",))
    assert client.post("/api/train/pause").json()["job"] == r.json()["job"]
    _wait(client, ("paused",))
    assert client.post("/api/train/stop").status_code == 200
    body = _wait(client, ("stopped",))
    done = next(e for e in body["events"] if e["type"] == "done")
    assert done["state"] == "stopped"
    assert done["trained_images"] < 100 * 2000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kernel_size": 9, "padding": "valid", "conv_blocks": 3}, "does not fit the"),
        ({"activation": "nope"}, "unknown `activation` 'nope'"),
        ({"spec": "conv4k3, maxpoolx"}, "spec token 2 'maxpoolx'"),
        ({"batch_size": 0}, "batch_size: Input should be greater than or equal to 1"),
        ({"optimizer": "lbfgs"}, "optimizer: Input should be 'adam', 'sgd' or 'rmsprop'"),
        ({"dataset": "imagenet"}, "datasets: `dataset` must be one of"),
    ],
)
def test_bad_runs_are_refused_before_they_start(client: Any, body: dict[str, Any], message: str) -> None:
    r = client.post("/api/train", json=body)
    assert r.status_code == 422
    assert message in r.json()["detail"]
    assert client.get("/api/train").json()["state"] in ("idle", "finished", "stopped")


def test_first_start_trains_the_course_model_in_the_background(tmp_path: Path, monkeypatch: Any) -> None:
    import threading

    from fastapi.testclient import TestClient

    from convlens.lab.live import LiveTraining
    from convlens.web import create_app

    release = threading.Event()
    init, run = LiveTraining.__init__, LiveTraining.run

    def quick(self: Any, config: Any, **kwargs: Any) -> None:  # the real course run, on 200 images
        init(self, type(config)(**{**config.to_dict(), "train_limit": 200, "test_limit": 50}), **kwargs)

    def held(self: Any) -> None:
        release.wait(30)
        run(self)

    monkeypatch.setattr(LiveTraining, "__init__", quick)
    monkeypatch.setattr(LiveTraining, "run", held)
    app = create_app(tmp_path / "models", tmp_path, train_course=True)
    with TestClient(app) as client:
        assert client.get("/api/train").json()["kind"] == "course"
        assert client.get("/api/models").json()["course_training"] is True
        assert client.get("/api/info").json()["course_ready"] is False
        busy = client.post("/api/train", json=TINY)
        assert busy.status_code == 409
        assert "the course model (first start)" in busy.json()["detail"]
        release.set()
        body = _wait(client, ("finished",))
        deadline = time.monotonic() + 10
        while not client.get("/api/info").json()["course_ready"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/api/train").json()["saved_as"] == "course.npz"
        assert body["kind"] == "course"
        assert cl.load_model(tmp_path / "models" / "course.npz").count_params() == 63050
