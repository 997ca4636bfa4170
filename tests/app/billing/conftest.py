"""Fixtures of the billing tests: the checkout tests' customers (imported, so both stay one
definition), and ``books`` to opt in to the demo catalog and balanced books (the PDF tests here
need neither)."""

from __future__ import annotations

import pytest

from tests.app.subscriptions.conftest import (  # noqa: F401 - fixtures, found by name
    acme,
    advisor,
    bistro,
    globex,
    jan1,
    support,
)
from tests.app.subscriptions.support import assert_books_balance


@pytest.fixture
def books(demo_catalog):
    """The demo catalog, and balanced books at the end of the test."""
    yield
    assert_books_balance()
