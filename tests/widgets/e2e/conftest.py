"""The widgets in Debian's Chromium (slow tier): the session's browser and watch, a page without a server.

Every page here records each request (a widget asks for nothing: its code and styles come with it) and
collects console errors and uncaught exceptions; a test fails if a request left this machine or an error
was logged. A screenshot per test goes to ``test-artifacts/widgets/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.support.browser import Watch

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "widgets"


@pytest.fixture
def page(browser: Any, watch: Watch, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, service_workers="block")

    def route(r: Any) -> None:
        url = r.request.url
        watch.requests.append(url)
        if urlparse(url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            watch.blocked.append(url)
            r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    pg.on("console", lambda m: watch.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: watch.errors.append(f"uncaught: {e}"))
    pg.set_default_timeout(20_000)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert watch.blocked == [], f"requests to other hosts: {watch.blocked}"
    assert watch.unexpected() == [], f"console errors: {watch.unexpected()}"
