"""Template filters of the billing center: ``{% load prorata %}``.

- ``{{ amount|money }}``: a :class:`~prorata_core.money.Money` in the active language
  (``€1,790.14`` / ``1 790,14 €``).
- ``{{ instant|day }}``: the day of an instant or date (``March 11, 2026`` / ``11 mars 2026``).

Both render an empty string for ``None``, so optional values need no ``{% if %}``.
"""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.utils.translation import get_language

from prorata.web.formatting import format_date, format_money
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
