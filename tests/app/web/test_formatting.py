"""Amounts and dates in the reader's locale (Babel/CLDR), exactly as shown."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.template import Context, Template
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from prorata.common.formatting import _babel_money, format_date, format_money, money_decimal
from prorata_core.money import _KNOWN, Money

NNBSP = "\u202f"  # narrow no-break space: French thousands separator
NBSP = "\xa0"  # no-break space: French space before the currency symbol


@pytest.mark.parametrize(
    ("money", "english", "french"),
    [
        (Money(179014, "EUR"), "€1,790.14", f"1{NNBSP}790,14{NBSP}€"),
        (Money(298586, "USD"), "$2,985.86", f"2{NNBSP}985,86{NBSP}$US"),
        (Money(-2555, "EUR"), "-€25.55", f"-25,55{NBSP}€"),
        (Money(0, "EUR"), "€0.00", f"0,00{NBSP}€"),
        (Money(5, "EUR"), "€0.05", f"0,05{NBSP}€"),
        (Money(123456789012, "USD"), "$1,234,567,890.12", f"1{NNBSP}234{NNBSP}567{NNBSP}890,12{NBSP}$US"),
        (Money(1000, "JPY"), "¥1,000", f"1{NNBSP}000{NBSP}JPY"),
        (Money(1500, "KWD"), "KWD1.500", f"1,500{NBSP}KWD"),
        # CLDR gives IQD no decimals, ISO 4217 three: the minor units are never rounded away
        (Money(1234, "IQD"), "IQD1.234", f"1,234{NBSP}IQD"),
    ],
)
def test_format_money(money, english, french):
    assert format_money(money, "en") == english
    assert format_money(money, "fr") == french


@given(
    amount=st.integers(min_value=-(10**20), max_value=10**20) | st.integers(-10**6, 10**6),
    currency=st.sampled_from(sorted(_KNOWN)),
    locale=st.sampled_from(["en", "fr", "fr-fr", "en-us", "xx", "de", "hi"]),
)
def test_the_fast_layout_is_exactly_babel_s(amount, currency, locale):
    assert format_money(Money(amount, currency), locale) == _babel_money(Money(amount, currency),
                                                                         locale)


def test_money_goes_through_decimal_exactly():
    assert str(money_decimal(Money(179014, "EUR"))) == "1790.14"
    assert str(money_decimal(Money(10**20 + 1, "USD"))) == "1000000000000000000.01"


def test_an_unknown_locale_falls_back_to_english():
    assert format_money(Money(179014, "EUR"), "xx") == "€1,790.14"
    assert format_money(Money(179014, "EUR"), "fr-fr") == f"1{NNBSP}790,14{NBSP}€"


def test_format_date():
    instant = datetime(2026, 3, 11, tzinfo=UTC)
    assert format_date(instant, "en") == "March 11, 2026"
    assert format_date(instant, "fr") == "11 mars 2026"
    assert format_date(date(2027, 4, 1), "fr") == "1er avril 2027"  # French ordinal first day


def test_a_date_is_the_utc_day_of_the_instant():
    # 2026-03-11T23:30 in UTC-5 is already the 12th in UTC, the project's time zone
    instant = datetime(2026, 3, 11, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert format_date(instant, "en") == "March 12, 2026"


def render(source: str, **context) -> str:
    return Template("{% load prorata %}" + source).render(Context(context))


def test_the_filters_use_the_active_language():
    context = {"amount": Money(179014, "EUR"), "when": datetime(2026, 3, 11, tzinfo=UTC)}
    with translation.override("en"):
        assert render("{{ amount|money }} · {{ when|day }}", **context) == "€1,790.14 · March 11, 2026"
    with translation.override("fr"):
        assert render("{{ amount|money }} · {{ when|day }}", **context) == (
            f"1{NNBSP}790,14{NBSP}€ · 11 mars 2026"
        )


def test_the_filters_show_nothing_for_none():
    assert render("[{{ amount|money }}|{{ when|day }}]", amount=None, when=None) == "[|]"
