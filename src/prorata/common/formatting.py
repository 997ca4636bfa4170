"""Amounts and dates for people, in their locale (DESIGN §6): ``€1,790.14`` / ``1 790,14 €``.

Money is never a float here either: minor units become a :class:`~decimal.Decimal` by shifting the
decimal point (``scaleb(-exponent)``), and Babel (CLDR data) lays it out. Every amount shows exactly
its currency's minor units (JPY none, EUR two, KWD three): nothing is rounded for display.

The French output uses CLDR's own spacing: a narrow no-break space (U+202F) between thousands and a
no-break space (U+00A0) before the symbol, so an amount never breaks across lines.

Speed (a transactions page formats 25 amounts and 25 days): Babel's pattern interpreter costs
about fifteen times the layout below (benchmarks/README.md, the HTTP section). :func:`format_money` asks Babel once per language and
currency for the text around the number (symbol, sign, spaces) and the grouping and decimal
symbols, checks that layout against Babel's own output for probe amounts, then lays out each
amount itself with integer arithmetic; a pattern it does not recognise is left to Babel. A day's text is kept once computed
(a bounded cache: days repeat within a page and across pages).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.dates import format_time as babel_format_time
from babel.numbers import NumberPattern, format_currency, get_decimal_symbol, get_group_symbol
from django.utils import timezone, translation

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
    layout = _money_layout(locale, money.currency)
    if layout is None:
        return _babel_money(money, locale)
    return layout.apply(money.amount)


def _babel_money(money: Money, locale: str) -> str:
    exponent = currency_exponent(money.currency)
    return format_currency(
        money_decimal(money),
        money.currency,
        format=_currency_pattern(locale, exponent),
        locale=babel_locale(locale),
        currency_digits=False,
    )


@dataclass(frozen=True, slots=True)
class _MoneyLayout:
    """How one language lays out amounts of one currency: the text before and after the number
    (positive, negative), the group and decimal symbols, and the currency's minor-unit exponent."""

    prefix: str
    suffix: str
    negative_prefix: str
    negative_suffix: str
    group: str
    decimal: str
    exponent: int

    def number(self, minor_units: int) -> str:
        """``minor_units`` ≥ 0 as digits: thousands grouped by three, exactly ``exponent``
        decimals (nothing rounded)."""
        units, fraction = divmod(minor_units, 10**self.exponent)
        text = f"{units:,}".replace(",", self.group)
        if self.exponent:
            text += self.decimal + str(fraction).zfill(self.exponent)
        return text

    def apply(self, minor_units: int) -> str:
        if minor_units < 0:
            return self.negative_prefix + self.number(-minor_units) + self.negative_suffix
        return self.prefix + self.number(minor_units) + self.suffix


#: A probe amount whose digits (all different groups) locate the number in Babel's output.
_PROBE = 1_234_567_891


@lru_cache(maxsize=256)
def _money_layout(locale: str, currency: str) -> _MoneyLayout | None:
    """The layout of ``currency`` in ``locale`` as Babel formats it, or None when Babel's
    pattern is not one of plain grouping by three (then every amount goes through Babel)."""
    exponent = currency_exponent(currency)
    pattern = _currency_pattern(locale, exponent)
    if pattern.grouping != (3, 3) or pattern.scale != 0 or pattern.exp_prec:
        return None
    babel = babel_locale(locale)
    layout = _MoneyLayout("", "", "", "", get_group_symbol(babel), get_decimal_symbol(babel),
                          exponent)
    number = layout.number(_PROBE)
    positive = _babel_money(Money(_PROBE, currency), locale)
    negative = _babel_money(Money(-_PROBE, currency), locale)
    if positive.count(number) != 1 or negative.count(number) != 1:
        return None
    prefix, suffix = positive.split(number)
    negative_prefix, negative_suffix = negative.split(number)
    layout = _MoneyLayout(prefix, suffix, negative_prefix, negative_suffix, layout.group,
                          layout.decimal, exponent)
    for amount in (0, 5, 999, 100_000, -1):
        if layout.apply(amount) != _babel_money(Money(amount, currency), locale):
            return None
    return layout


def format_date(instant: datetime | date, locale: str, zone: tzinfo | None = None) -> str:
    """The day of ``instant`` in ``zone`` (default: the active time zone — the account's on its
    pages, see :class:`prorata.web.middleware.AccountTimeZoneMiddleware`; UTC elsewhere) in the
    locale's long form: en ``March 11, 2026``, fr ``11 mars 2026``, ``1er avril 2026``. A plain
    ``date`` is shown as it is."""
    if isinstance(instant, datetime):
        day = instant.astimezone(zone or timezone.get_current_timezone()).date()
    else:
        day = instant
    return _format_day(day, locale)


@lru_cache(maxsize=4096)
def _format_day(day: date, locale: str) -> str:
    text = babel_format_date(day, format="long", locale=babel_locale(locale))
    if day.day == 1 and babel_locale(locale).language == "fr" and text.startswith("1 "):
        # French writes the first of the month as an ordinal ("1er avril"); CLDR does not.
        text = "1er" + text[1:]
    return text


def format_day_time(instant: datetime, locale: str, zone: tzinfo | None = None) -> str:
    """The day and time of ``instant`` in ``zone`` (default: the active time zone), without the
    zone's name: en ``March 11, 2026, 1:00 AM``, fr ``11 mars 2026, 01:00``."""
    local = instant.astimezone(zone or timezone.get_current_timezone())
    babel = babel_locale(locale)
    return str(babel.datetime_formats["medium"]).format(
        babel_format_time(local.time(), format="short", locale=babel),
        _format_day(local.date(), locale))


def format_period(start: datetime, end: datetime, locale: str,
                  zone: tzinfo | None = None) -> str:
    """A period ``[start, end)`` whose boundaries are instants (a billing period starts at the
    change instant), its zone named once: en ``March 11, 2026, 4:07 PM – April 11, 2026, 4:07 PM
    (Europe/Paris)``, fr ``11 mars 2026, 16:07 – 11 avril 2026, 16:07 (Europe/Paris)``."""
    zone = zone or timezone.get_current_timezone()
    with translation.override(locale):
        return translation.gettext("%(start)s – %(end)s (%(zone)s)") % {
            "start": format_day_time(start, locale, zone),
            "end": format_day_time(end, locale, zone), "zone": str(zone)}


def format_moment(instant: datetime, locale: str, zone: tzinfo | None = None) -> str:
    """An instant where the time matters (a period boundary, a renewal), with its zone named:
    en ``April 1, 2026 at 2:00 AM (Europe/Paris)``, fr ``1er avril 2026 à 02:00 (Europe/Paris)``."""
    zone = zone or timezone.get_current_timezone()
    local = instant.astimezone(zone)
    with translation.override(locale):
        return translation.gettext("%(day)s at %(time)s (%(zone)s)") % {
            "day": _format_day(local.date(), locale),
            "time": babel_format_time(local.time(), format="short", locale=babel_locale(locale)),
            "zone": str(zone),
        }
