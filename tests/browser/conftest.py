"""Browser tests: Debian's Chromium (``/usr/bin/chromium``) driven by Playwright's sync API.

Never ``playwright install``: the browser comes from the system (``.ci/run`` installs it when it is
missing). One browser per test process (each xdist worker), one fresh context per test, against
pytest-django's ``live_server`` (a real HTTP server on a transactional test database).

Set ``PRORATA_SCREENSHOTS=/some/dir`` to keep a screenshot of each step that takes one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.conftest import DEMO_INSTANT, Clock

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="session")
def browser(django_db_setup) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API marks its event loop as running in this thread between calls (by
    # design, see playwright/sync_api/_context_manager.py), so Django's guard would refuse every
    # ORM call made here while the browser lives, in browser tests and in the tests that follow
    # on this worker. Those calls are plain synchronous code: lift the guard for this process.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    """A new browser tab with an English browser, at the live server; closed after the test."""
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=live_server.url, locale="en-US", viewport={"width": 1280, "height": 860}
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


class Screenshots:
    def __init__(self, directory: str | None) -> None:
        self.directory = Path(directory) if directory else None

    def take(self, page, name: str) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(self.directory / f"{name}.png"), full_page=True)


@pytest.fixture
def screenshots() -> Screenshots:
    return Screenshots(os.environ.get("PRORATA_SCREENSHOTS"))


@pytest.fixture
def clock(transactional_db) -> Clock:
    """The movable project clock at 2026-03-11T00:00:00Z, shared with the live server."""
    handle = Clock()
    handle.set(DEMO_INSTANT)
    return handle
