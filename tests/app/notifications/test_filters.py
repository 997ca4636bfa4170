"""The e-mail templates' filters, on plain JSON values."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import translation

from prorata.notifications.templatetags.prorata_email import absolute_url, amount, day, item_line
from prorata_core.money import Money


def test_amounts_are_exact_in_each_language():
    with translation.override("en"):
        assert amount({"amount": 179014, "currency": "EUR"}) == "€1,790.14"
        assert amount(Money(-2555, "USD")) == "-$25.55"
        assert amount({"amount": 1000, "currency": "JPY"}) == "¥1,000"
        assert amount(None) == amount("") == ""
    with translation.override("fr"):
        assert amount({"amount": 179014, "currency": "EUR"}) == "1\u202f790,14\xa0€"


def test_days_are_the_utc_day_in_each_language():
    with translation.override("en"):
        assert day("2026-03-11T23:30:00Z") == "March 11, 2026"
        assert day(datetime(2026, 4, 11, tzinfo=UTC)) == "April 11, 2026"
        assert day(None) == ""
    with translation.override("fr"):
        assert day("2026-03-11T00:00:00+00:00") == "11 mars 2026"


def test_links_are_made_absolute_with_the_base_url(settings):
    settings.PRORATA_BASE_URL = "https://billing.example.com"
    assert absolute_url("/billing/receipts/4/") == "https://billing.example.com/billing/receipts/4/"
    assert absolute_url("billing/") == "https://billing.example.com/billing/"
    assert absolute_url("https://other.example/x") == "https://other.example/x"
    assert absolute_url("") == ""


def test_items_read_as_one_line():
    with translation.override("en"):
        assert item_line({"product": "Webinar", "plan": "Pro", "licenses": 1,
                          "cycle": "annual"}) == "Webinar Pro, 1 license, annual"
        assert item_line({"plan": "Pro", "licenses": 2, "cycle": "quarterly",
                          "previous": {"plan": "Standard", "licenses": 2, "cycle": "monthly"}}) == (
            "Pro, 2 licenses, quarterly (before: Standard, 2 licenses, monthly)"
        )
        assert item_line("Webinar Lite × 3") == "Webinar Lite × 3"
