"""Filters for e-mail templates, whose context is plain JSON: ``{% load prorata_email %}``.

- ``{{ value|amount }}``: ``{"amount": 2555, "currency": "EUR"}`` (or a Money) in the active language:
  ``€25.55`` / ``25,55 €`` (exact: integer minor units through Decimal, never a float).
- ``{{ value|day }}``: an ISO 8601 instant's day: ``March 11, 2026`` / ``11 mars 2026``.
- ``{{ value|absolute_url }}``: a site path made absolute with ``settings.PRORATA_BASE_URL``.
- ``{{ item|item_line }}``: one subscription item (see ``outbox.TEMPLATES``) as a line of text.

All render ``""`` for an empty value, so optional context keys need no ``{% if %}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.conf import settings
from django.utils.translation import get_language, gettext, ngettext

from prorata.common import urls
from prorata.common.clock import instant_from_json
from prorata.notifications.formatting import format_day, format_money
from prorata_core.money import Money

register = template.Library()

def _language() -> str:
    return get_language() or settings.LANGUAGE_CODE


@register.filter
def amount(value: Any) -> str:
    if value is None or value == "":
        return ""
    money = value if isinstance(value, Money) else Money(int(value["amount"]), value["currency"])
    return format_money(money, _language())


@register.filter
def day(value: Any) -> str:
    if not value:
        return ""
    instant = value if isinstance(value, datetime) else instant_from_json(value)
    return format_day(instant, _language())


@register.filter
def absolute_url(value: Any) -> str:
    return urls.absolute_url(str(value) if value else "")


def _cycle(code: str) -> str:
    labels = {"monthly": gettext("monthly"), "quarterly": gettext("quarterly"),
              "annual": gettext("annual")}
    return labels.get(code, code)


def _configuration(item: dict[str, Any]) -> str:
    parts = [" ".join(str(item[key]) for key in ("product", "plan") if item.get(key))]
    if item.get("licenses") is not None:
        count = int(item["licenses"])
        parts.append(ngettext("%(count)d license", "%(count)d licenses", count) % {"count": count})
    if item.get("cycle"):
        parts.append(_cycle(str(item["cycle"])))
    return ", ".join(part for part in parts if part)


@register.filter
def item_line(item: Any) -> str:
    """``Webinar Pro, 2 licenses, annual (before: Standard, 2 licenses, annual)``."""
    if not isinstance(item, dict):
        return str(item)
    line = _configuration(item)
    previous = item.get("previous")
    if previous:
        line = gettext("%(now)s (before: %(before)s)") % {
            "now": line, "before": _configuration(previous)
        }
    return line
