"""Template filters of the billing center: ``{% load prorata %}``.

- ``{{ amount|money }}``: a :class:`~prorata_core.money.Money` in the active language
  (``€1,790.14`` / ``1 790,14 €``).
- ``{{ instant|day }}``: the day of an instant or date (``March 11, 2026`` / ``11 mars 2026``), in
  the active time zone (the account's on its pages).
- ``{{ instant|moment }}``: an instant where the time matters, its zone named
  (``April 1, 2026 at 2:00 AM (Europe/Paris)``).
- ``{{ start|period:end }}``: a period whose boundaries are instants, its zone named once
  (``March 11, 2026, 4:07 PM – April 11, 2026, 4:07 PM (Europe/Paris)``).

Both render an empty string for ``None``, so optional values need no ``{% if %}``.
"""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.utils.translation import get_language

from prorata.common.formatting import format_date, format_moment, format_money, format_period
from prorata_core.money import Money

register = template.Library()


@register.filter
def money(value: Money | None) -> str:
    if value is None or value == "":
        return ""
    return format_money(value, get_language() or "en")


@register.filter
def day(value: datetime | date | None) -> str:
    if value is None or value == "":
        return ""
    return format_date(value, get_language() or "en")


@register.filter
def moment(value: datetime | None) -> str:
    if value is None or value == "":
        return ""
    return format_moment(value, get_language() or "en")


@register.filter
def period(start: datetime | None, end: datetime | None) -> str:
    if not start or not end:
        return ""
    return format_period(start, end, get_language() or "en")


@register.filter
def percent(basis_points: int | None) -> str:
    """A tax rate in basis points as a percentage of the active language: 2000 → ``20%`` /
    ``20 %``."""
    if basis_points is None or basis_points == "":
        return ""
    from decimal import Decimal

    from babel.numbers import format_percent

    from prorata.common.formatting import babel_locale

    return format_percent(Decimal(basis_points) / Decimal(10_000), decimal_quantization=False,
                          locale=babel_locale(get_language() or "en"))


@register.filter
def count(value: int | None) -> str:
    """A whole number with the active language's grouping: ``1,000`` / ``1 000``."""
    if value is None or value == "":
        return ""
    from babel.numbers import format_decimal

    from prorata.common.formatting import babel_locale

    return format_decimal(value, locale=babel_locale(get_language() or "en"))
