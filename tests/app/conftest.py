"""Fixtures for the database tests: the movable project clock and the demo catalog."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prorata.catalog.services import catalog_load_demo
from prorata.common.clock import ClockStep, clock_advance, clock_set, now

#: DESIGN §3's worked examples happen on this day.
DEMO_INSTANT = datetime(2026, 3, 11, tzinfo=UTC)


class Clock:
    """A test's handle on the movable project clock (the same services the CLI uses)."""

    def set(self, instant: datetime) -> datetime:
        return clock_set(instant=instant)

    def advance(self, duration: ClockStep | timedelta) -> datetime:
        return clock_advance(duration=duration)

    def now(self) -> datetime:
        return now()


@pytest.fixture
def clock(db: None) -> Clock:
    """The movable project clock, frozen at 2026-03-11T00:00:00Z until the test moves it."""
    handle = Clock()
    handle.set(DEMO_INSTANT)
    return handle


@pytest.fixture
def demo_catalog(db: None) -> None:
    """The demo catalog of DESIGN §2, loaded through its service."""
    catalog_load_demo()


@pytest.fixture
def admin_client(db: None, admin_user: object) -> object:
    """pytest-django's ``admin_client``, with the console's second factor passed."""
    from django.test import Client

    from tests.app.console_auth import console_login

    return console_login(Client(), admin_user)
