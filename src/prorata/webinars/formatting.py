"""A webinar's start as people read it: in the organizer's time zone, in the reader's language."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton, format_time

from prorata.common.formatting import babel_locale


def format_start(instant: datetime, time_zone: str, language: str) -> str:
    """``Fri, Mar 20, 2026, 3:00 PM (Europe/Paris)`` / ``ven. 20 mars 2026, 15:00
    (Europe/Paris)``: weekday, day, time to the minute, and the zone's name."""
    local = instant.astimezone(ZoneInfo(time_zone))
    locale = babel_locale(language)
    day = format_skeleton("yMMMEd", local, locale=locale)
    return f"{day}, {format_time(local, 'short', locale=locale)} ({time_zone})"
