"""One headless Chromium per test session (Debian's, driven by Playwright), for every browser test.

The web page's e2e tests, the widgets' and the explanation player's share it: Playwright's sync API runs
one event loop per thread, so a second ``sync_playwright()`` in the same session would fail. The root
``tests/conftest.py`` registers :func:`browser` and :func:`watch`.

Under ``CI=true`` a missing Playwright or Chromium is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def missing(what: str) -> None:
    """Skip (or under CI=true fail) because ``what`` is not installed."""
    message = f"{what} is needed by the browser tests"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must run them (.ci/run installs chromium; the test extra has playwright).")
    pytest.skip(message)


@dataclass
class Watch:
    """What a page asked for and complained about."""

    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def allow(self, status: int) -> None:
        """The test provokes HTTP ``status`` on purpose: Chromium's "Failed to load resource" line for it is fine."""
        self.allowed.append(f"Failed to load resource: the server responded with a status of {status} ")

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed)]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        missing("playwright (pip install -e '.[test]')")
    if not os.path.exists(CHROMIUM):
        missing(f"Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def watch() -> Watch:
    return Watch()
