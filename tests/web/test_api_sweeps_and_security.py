"""Experiments API (sweep databases), the page's static files, headers, hosts, OpenAPI and `convlens serve`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convlens.lab.sweep import report
from convlens.lab.sweep.store import ResultStore


def test_sweeps_lists_only_sweep_databases(client: Any, lab_dirs: tuple[Path, Path]) -> None:
    body = client.get("/api/sweeps").json()
    assert body == {"folder": str(lab_dirs[1]), "databases": ["sweep.db"]}  # other.db is SQLite but no sweep


def test_a_sweep_is_ranked_as_the_report_and_its_fronts_are_pareto(client: Any, lab_dirs: tuple[Path, Path]) -> None:
    with ResultStore(lab_dirs[1] / "sweep.db") as store:
        trials = store.trials()
    body = client.get("/api/sweeps/sweep.db").json()
    assert [t["id"] for t in body["trials"]] == [t["id"] for t in report.ranked(trials)]
    assert [body["headers"], body["rows"]] == [list(x) for x in report.table(trials)]
    assert body["trials"][-1]["status"] == "INVALID"
    assert "does not fit" in body["trials"][-1]["reason"]
    ok = [t for t in trials if t["status"] == "OK"]
    for cost in ("params", "macs", "train_time"):
        front = set(body["fronts"][cost])
        for t in ok:  # on the front exactly when no other trial is at least as cheap and as accurate, one strictly
            beaten = any(
                o[cost] <= t[cost] and o["test_accuracy"] >= t["test_accuracy"]
                and (o[cost] < t[cost] or o["test_accuracy"] > t["test_accuracy"])
                for o in ok
            )  # fmt: skip
            assert (t["id"] in front) == (not beaten), (cost, t["id"])
    png = client.get(f"/api/sweeps/sweep.db/trials/{ok[0]['id']}/features.png")
    assert png.headers["content-type"] == "image/png"
    assert png.content == ok[0]["feature_png"]
    invalid = body["trials"][-1]["id"]
    assert client.get(f"/api/sweeps/sweep.db/trials/{invalid}/features.png").status_code == 404


def test_a_trial_opens_as_a_model(client: Any, lab_dirs: tuple[Path, Path]) -> None:
    with ResultStore(lab_dirs[1] / "sweep.db") as store:
        trial = next(t for t in store.trials() if t["status"] == "OK" and t["config"]["kernel_size"] == 5)
    ref = f"trial:sweep.db:{trial['id']}"
    summary = client.get(f"/api/models/{ref}/summary").json()
    assert summary["totals"]["params"] == trial["params"]
    assert summary["trained"] is False
    assert "kept no weights" in summary["model_note"]
    forward = client.post("/api/forward", json={"model": ref}).json()
    _, height, width, filters = summary["layers"][0]["output_shape"]
    assert np.array(forward["layers"][0]["maps"]).shape == (filters, height, width) == (4, height, width)
    assert (
        client.get("/api/models/trial:sweep.db:99999/summary").json()["detail"]
        == "sweep database 'sweep.db' has no trial 99999."
    )
    assert client.get("/api/models/trial:nope.db:1/summary").status_code == 422
    assert client.get("/api/sweeps/other.db").status_code == 422
    assert client.get("/api/sweeps/..%2Fsweep.db").status_code == 404


def test_a_saved_trial_model_opens_trained(client: Any, lab_dirs: tuple[Path, Path]) -> None:
    import convlens as cl
    from convlens.web.store import trial_model_name

    with ResultStore(lab_dirs[1] / "sweep.db") as store:
        trial = next(t for t in store.trials() if t["status"] == "OK")
    model = client.app.state.lab.resolver.get(f"trial:sweep.db:{trial['id']}").model
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = lab_dirs[0] / trial_model_name(trial["config_hash"])
    model.save(path)
    try:
        body = client.get(f"/api/models/trial:sweep.db:{trial['id']}/summary").json()
        assert body["trained"] is True
        assert body["source"] == path.name
        listed = client.get("/api/sweeps/sweep.db").json()["trials"]
        assert next(t for t in listed if t["id"] == trial["id"])["saved_model"] == path.name
        assert cl.load_model(path).count_params() == trial["params"]
    finally:
        path.unlink()


def test_page_and_headers(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "http" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    # every script, style and image the page names is served by this server, and none is remote
    html = page.text
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html)
    assert "style=" not in html
    assert "<script>" not in html
    for path in re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", html):
        assert client.get(path).status_code == 200, path
    static = Path(__file__).resolve().parents[2] / "src" / "convlens" / "web" / "static"
    for js in static.rglob("*.js"):
        text = js.read_text().replace('"http://www.w3.org/2000/svg"', "")  # a namespace name, never fetched
        assert not re.search(r"""["'`]https?://""", text), js  # no remote URL anywhere in the modules
        for risky in (".innerHTML", "insertAdjacentHTML", "eval(", "new Function"):
            assert risky not in text, (js, risky)
        for module in re.findall(r"""from "(\.{1,2}/[^"]+)\"""", text):
            assert (js.parent / module).resolve().is_file(), (js, module)


def test_hosts_other_than_loopback_are_refused(client: Any) -> None:
    assert client.get("/api/info", headers={"host": "evil.example:8000"}).status_code == 400
    assert client.get("/api/info", headers={"host": "127.0.0.1:8000"}).status_code == 200
    assert client.get("/api/info", headers={"host": "localhost"}).status_code == 200


def test_openapi_describes_the_api(client: Any) -> None:
    spec = client.get("/api/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/api/playground", "/api/forward", "/api/unit", "/api/train", "/api/train/events", "/api/sweeps/{db}",
            "/api/models", "/api/images"} <= paths  # fmt: skip
    assert "PlaygroundRequest" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 404  # the docs pages load scripts from a CDN: off


def test_info_lists_kernels_datasets_and_limits(client: Any) -> None:
    from convlens.lab.kernels import KERNELS

    info = client.get("/api/info").json()
    assert info["kernels"]["sobel_x"] == KERNELS["sobel_x"].tolist()
    assert info["datasets"][0] == {"name": "mnist", "label": "MNIST", "class_names": [str(d) for d in range(10)]}
    assert [d["name"] for d in info["datasets"]] == ["mnist", "cifar10", "fashion_mnist"]
    assert info["limits"]["grid"] == 64
    assert info["course_ready"] is True
    image = client.get("/api/datasets/mnist/images/4").json()
    assert np.array(image["pixels"]).shape == (28, 28, 1)
    assert image["label"] == 4
    assert client.get("/api/datasets/mnist/images/10000").status_code == 422


def test_serve_is_a_command(capsys: pytest.CaptureFixture[str]) -> None:
    from convlens.cli import COMMANDS, build_parser

    assert COMMANDS["serve"] == "convlens.cli.serve"
    args = build_parser().parse_args(["serve", "--port", "8123", "--models", "/tmp/m", "--no-course"])
    assert (args.host, args.port, args.models, args.no_course, args.open) == ("127.0.0.1", 8123, "/tmp/m", True, False)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    assert "binds 127.0.0.1 by default" in capsys.readouterr().out.replace("\n", " ")


def test_serve_reports_a_busy_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from convlens.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port), "--models", str(tmp_path), "--sweeps", str(tmp_path), "--no-course"])
    assert code == 1
    assert f"could not listen on 127.0.0.1:{port}" in capsys.readouterr().err
