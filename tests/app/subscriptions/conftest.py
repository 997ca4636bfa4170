"""Fixtures of the checkout tests: the demo catalog, the clock at the examples' dates, customers."""

from __future__ import annotations

import pytest

from prorata_core.periods import utc
from tests.app.subscriptions.support import assert_books_balance, customer, staff


@pytest.fixture(autouse=True)
def _catalog(demo_catalog):
    """Every test here has the demo catalog and ends with balanced books."""
    yield
    assert_books_balance()


@pytest.fixture
def jan1(clock):
    clock.set(utc(2026, 1, 1))
    return clock


@pytest.fixture
def acme(jan1):
    """Acme (US, USD, no tax) and Alice, its billing contact."""
    return customer("Acme Corp", "US", "alice@acme.example", currency="USD")


@pytest.fixture
def bistro(jan1):
    """Bistro (France, EUR, 20 % VAT) and Jeanne, its billing contact (French)."""
    return customer("Bistro Numérique", "FR", "jeanne@bistro.example", currency="EUR",
                    language="fr")


@pytest.fixture
def support(db):
    return staff("support@prorata.example", "support_agent")


@pytest.fixture
def advisor(db):
    return staff("advisor@prorata.example", "corporate_advisor")


@pytest.fixture
def globex(jan1, advisor):
    """Globex: a corporate German account with a valid VAT number, advised by ``advisor``."""
    return customer("Globex", "DE", "hans@globex.example", currency="EUR",
                    vat_number="DE136695976", corporate_advisor=advisor)
