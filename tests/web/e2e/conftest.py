"""End-to-end fixtures: the app served by uvicorn in a thread, Debian's Chromium driven by Playwright.

Every page opened here records each request and aborts any that is not for this server, and collects
console errors and uncaught exceptions; a test fails if either list is not empty. A screenshot of
the page at the end of every test goes to ``test-artifacts/web/`` (git-ignored).

The browser and the watch come from :mod:`tests.support.browser` (one Chromium per session).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.support.browser import Watch

__all__ = ["Served", "Watch", "open_page"]

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "web"


@dataclass
class Served:
    """The running app: its base URL and folders."""

    url: str
    models: Path
    sweeps: Path
    app: Any


@pytest.fixture(scope="session")
def server(lab_dirs: tuple[Path, Path]) -> Iterator[Served]:
    import uvicorn

    from convlens.web import create_app

    app = create_app(*lab_dirs, train_course=False)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", log_config=None, timeout_graceful_shutdown=2
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started, "uvicorn did not start"
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield Served(f"http://127.0.0.1:{port}", lab_dirs[0], lab_dirs[1], app)
    app.state.lab.jobs.stop_and_wait(10)
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def page(browser: Any, server: Served, watch: Watch, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, service_workers="block")

    def route(r: Any) -> None:
        url = r.request.url
        watch.requests.append(url)
        if urlparse(url).hostname == "127.0.0.1":
            r.continue_()
        else:
            watch.blocked.append(url)
            r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    pg.on("console", lambda m: watch.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: watch.errors.append(f"uncaught: {e}"))
    pg.set_default_timeout(30_000)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert watch.blocked == [], f"requests to other hosts: {watch.blocked}"
    assert watch.unexpected() == [], f"console errors: {watch.unexpected()}"


def open_page(page: Any, server: Served, query: str = "") -> None:
    """Open the page (with a query string) and wait until its modules have started."""
    page.goto(f"{server.url}/{query}")
    page.wait_for_selector("body[data-ready='1']", state="attached")
