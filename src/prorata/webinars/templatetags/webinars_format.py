"""``{% load webinars_format %}{{ webinar.starts_at|start_in:webinar.time_zone }}``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils.translation import get_language

from prorata.common.clock import instant_from_json
from prorata.webinars.formatting import format_start

register = template.Library()


@register.filter
def start_in(value: datetime | None, time_zone: str) -> str:
    if value is None:
        return ""
    return format_start(value, time_zone or "UTC", get_language() or "en")


@register.filter
def start_in_json(value: Any, time_zone: str) -> str:
    """For e-mail contexts: ``value`` is an ISO 8601 UTC string."""
    if not value:
        return ""
    return format_start(instant_from_json(str(value)), time_zone or "UTC",
                        get_language() or "en")
