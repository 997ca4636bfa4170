"""Amounts and dates for people, in their locale (DESIGN §6): ``€1,790.14`` / ``1 790,14 €``.

Money is never a float here either: minor units become a :class:`~decimal.Decimal` by shifting the
decimal point (``scaleb(-exponent)``), and Babel (CLDR data) lays it out. Every amount shows exactly
its currency's minor units (JPY none, EUR two, KWD three): nothing is rounded for display.

The French output uses CLDR's own spacing: a narrow no-break space (U+202F) between thousands and a
no-break space (U+00A0) before the symbol, so an amount never breaks across lines.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.numbers import NumberPattern, format_currency

from prorata_core.money import Money, currency_exponent

DEFAULT_LOCALE = "en"


@lru_cache(maxsize=64)
def babel_locale(language: str | None) -> Locale:
    """The Babel locale of a Django language code (``"fr"``, ``"en-us"``); English when unknown."""
    try:
        return Locale.parse((language or DEFAULT_LOCALE).replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse(DEFAULT_LOCALE)


@lru_cache(maxsize=64)
def _currency_pattern(language: str, exponent: int) -> NumberPattern:
    # The locale's standard currency pattern with exactly ``exponent`` decimals (CLDR's own digit
    # count differs from ISO 4217 for a few currencies; the ISO one is what our minor units mean).
    pattern = copy.copy(babel_locale(language).currency_formats["standard"])
    pattern.frac_prec = (exponent, exponent)
    return pattern


def money_decimal(money: Money) -> Decimal:
    """``money`` in major units, exactly: 179014 EUR cents → Decimal('1790.14')."""
    return Decimal(money.amount).scaleb(-currency_exponent(money.currency))


def format_money(money: Money, locale: str) -> str:
    """``money`` for a reader of ``locale``: en ``€1,790.14``, ``$2,985.86``; fr ``1 790,14 €``.

    Negative amounts carry the locale's minus sign (en ``-€25.55``, fr ``-25,55 €``).
    """
    exponent = currency_exponent(money.currency)
    return format_currency(
        money_decimal(money),
        money.currency,
        format=_currency_pattern(locale, exponent),
        locale=babel_locale(locale),
        currency_digits=False,
    )


def format_date(instant: datetime | date, locale: str) -> str:
    """The day of ``instant`` (taken in UTC, the project's time zone) in the locale's long form:
    en ``March 11, 2026``, fr ``11 mars 2026``. A plain ``date`` is shown as it is."""
    day = instant.astimezone(UTC).date() if isinstance(instant, datetime) else instant
    return babel_format_date(day, format="long", locale=babel_locale(locale))
