"""Live training and the sweep browser in Chromium; every tab stays on this server."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import pytest

import convlens as cl
from convlens.lab.sweep import report
from convlens.lab.sweep.store import ResultStore
from tests.web.e2e.conftest import Served, Watch, open_page

pytestmark = pytest.mark.slow


def _points(page: Any, plot: str, series: str) -> int:
    found = page.query_selector(f"{plot} path.cl-series[data-name='{series}']")
    return int(found.get_attribute("data-points")) if found else 0


def test_live_training_draws_curves_stops_saves_and_opens(page: Any, server: Served) -> None:
    open_page(page, server, "?tab=train&t.train_limit=20000&t.test_limit=500&t.epochs=20&t.batch_size=32&t.filters=8")
    assert page.input_value("#tr-filters") == "8"  # the form came from the URL
    page.click("#tr-start")
    page.wait_for_selector("body[data-train-state='running']", state="attached")
    deadline = time.monotonic() + 60
    while _points(page, "#tr-loss", "train") < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    first = _points(page, "#tr-loss", "train")
    assert first >= 3
    assert _points(page, "#tr-acc", "train") >= 3
    page.wait_for_selector("#tr-maps .cl-map canvas")
    assert len(page.query_selector_all("#tr-maps .cl-map")) == 8  # the first layer's 8 maps
    while _points(page, "#tr-loss", "train") == first and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert _points(page, "#tr-loss", "train") > first  # the curve grows while it trains
    page.click("#tr-pause")
    page.wait_for_selector("body[data-train-state='paused']", state="attached")
    page.click("#tr-stop")
    page.wait_for_selector("body[data-train-state='stopped']", state="attached")
    page.wait_for_selector("#tr-result:not([hidden])")
    shown = float(page.get_attribute("#tr-result-text", "data-test-accuracy") or "nan")
    assert 0.0 <= shown <= 1.0
    assert "Stopped after" in page.text_content("#tr-result-text")
    page.fill("#tr-save-name", "e2e-live.npz")
    page.click("#tr-save")
    page.wait_for_selector("#tr-open:not([disabled])")
    model = cl.load_model(server.models / "e2e-live.npz")
    assert model.layers[0].filters == 8
    page.click("#tr-open")
    page.wait_for_selector("body[data-tab='inspector']", state="attached")
    page.wait_for_selector("#in-probs .cl-bar")
    assert page.input_value("#in-model") == "e2e-live.npz"
    page.wait_for_selector(".layer-block .cl-maps[data-layer]")
    assert page.eval_on_selector_all(".layer-block:first-child .cl-map", "ms => ms.length") == 8


def test_a_sweep_trial_opens_in_the_inspector(page: Any, server: Served) -> None:
    with ResultStore(server.sweeps / "sweep.db") as store:
        trials = store.trials()
    best = report.ranked(trials)[0]
    open_page(page, server, "?tab=experiments")
    page.wait_for_selector("#ex-table tbody tr")
    rows = page.eval_on_selector_all("#ex-table tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    assert rows == report.table(trials)[1]
    assert page.eval_on_selector_all("#ex-plots [data-cost='params'] circle.cl-point", "cs => cs.length") == 4
    page.click(f"#ex-table tbody tr[data-trial='{best['id']}']")
    page.wait_for_selector("#ex-open")
    assert f"Trial {best['id']}: OK" in page.text_content("#ex-trial")
    page.click("#ex-open")
    page.wait_for_selector("body[data-tab='inspector']", state="attached")
    page.wait_for_selector("#in-probs .cl-bar")
    assert page.input_value("#in-model") == f"trial:sweep.db:{best['id']}"
    assert "kept no weights" in page.text_content("#in-note")
    page.click("#in-view [data-value='summary']")
    page.wait_for_selector("#in-panel .cl-summary")
    assert f"Total params: {best['params']:,}" in page.text_content("#in-panel")
    # the configuration can go to the train tab, with the name the trial's model will be found under
    page.click(".tabs [data-tab='experiments']")
    page.click("#ex-trial button:has-text('Train this configuration')")
    page.wait_for_selector("body[data-tab='train']", state="attached")
    assert page.input_value("#tr-kernel") == str(best["config"]["kernel_size"])
    assert page.input_value("#tr-train-limit") == str(best["config"]["train_limit"])


def test_every_tab_stays_on_this_server(page: Any, server: Served, watch: Watch) -> None:
    open_page(page, server)
    for tab in ("inspector", "train", "experiments", "playground"):
        page.click(f".tabs [data-tab='{tab}']")
        page.wait_for_selector(f"body[data-tab='{tab}']", state="attached")
        page.wait_for_load_state("networkidle")
    page.goto(f"{server.url}/?tab=inspector&i.view=attributions")
    page.wait_for_selector("#in-panel figure canvas")
    hosts = {urlparse(u).hostname for u in watch.requests}
    assert hosts == {"127.0.0.1"}
    assert watch.blocked == []
    assert len(watch.requests) > 20
    response = page.request.get(f"{server.url}/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
