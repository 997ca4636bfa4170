"""Billing periods: half-open ``[start, end)`` intervals of UTC instants.

A cycle of N months keeps its anchor's day of month and clamps at month end: anchored on 31 January,
monthly periods end on 28/29 February, 31 March, 30 April (DESIGN §3, example 4). Period *k* of an
anchor is always computed from the anchor itself, never from the previous period's end, so a short
February never drags later periods to the 28th. Annual periods are 12-month cycles (29 Feb → 28 Feb).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prorata_core.errors import InvalidInstant, InvalidPeriod


def require_utc(instant: datetime, name: str = "instant") -> datetime:
    """Return ``instant`` if it is timezone-aware UTC; naive or other offsets are refused."""
    if instant.tzinfo is UTC:  # the common case, checked without computing an offset
        return instant
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidInstant(
            f"The {name} {instant.isoformat()} has no time zone; give a UTC instant such as "
            "2026-03-11T00:00:00Z.",
            name=name,
        )
    if instant.utcoffset() != timedelta(0):
        raise InvalidInstant(
            f"The {name} {instant.isoformat()} is not in UTC; convert it to UTC first.", name=name
        )
    return instant


_MONTH_LENGTHS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _month_length(year: int, month: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _MONTH_LENGTHS[month - 1]


def shift_months(anchor: datetime, months: int) -> datetime:
    """``anchor`` moved by ``months`` calendar months, the day clamped to the target month's length.

    The time of day is kept. ``months`` may be negative.
    """
    index = anchor.year * 12 + (anchor.month - 1) + months
    year, month0 = divmod(index, 12)
    day = min(anchor.day, _month_length(year, month0 + 1))
    return anchor.replace(year, month0 + 1, day)  # positional: a third of the keywords' cost


def seconds_between(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end`` (floored); negative when ``end`` is earlier."""
    delta = end - start
    return delta.days * 86_400 + delta.seconds


@dataclass(frozen=True, slots=True)
class Period:
    """The half-open interval ``[start, end)`` of UTC instants; ``start < end``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_utc(self.start, "period start")
        require_utc(self.end, "period end")
        if not self.start < self.end:
            raise InvalidPeriod(
                f"A period must end after it starts ({self.start.isoformat()} → "
                f"{self.end.isoformat()}).",
            )

    @property
    def seconds(self) -> int:
        """Length in whole seconds."""
        return seconds_between(self.start, self.end)

    def __contains__(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def _require_cycle(anchor: datetime, months: int) -> None:
    """A cycle lasts at least one month and is anchored at a UTC instant."""
    if months <= 0:
        raise InvalidPeriod(f"A billing cycle lasts at least one month, not {months}.")
    require_utc(anchor, "anchor")


def cycle_period(anchor: datetime, months: int, index: int) -> Period:
    """Period number ``index`` (0-based) of a cycle of ``months`` months anchored at ``anchor``."""
    _require_cycle(anchor, months)
    return Period(shift_months(anchor, index * months), shift_months(anchor, (index + 1) * months))


def period_starting(start: datetime, months: int) -> Period:
    """The first period of a new cycle anchored at ``start`` (a purchase or a change, DESIGN §3)."""
    return cycle_period(start, months, 0)


def period_after(period: Period, anchor: datetime, months: int) -> Period:
    """The period that follows ``period`` in the cycle of ``months`` months anchored at ``anchor``.

    ``period`` must be one of that cycle's periods; the result starts exactly at ``period.end``.
    """
    _require_cycle(anchor, months)
    elapsed = (period.end.year - anchor.year) * 12 + period.end.month - anchor.month
    index = elapsed // months
    # Three month shifts, not cycle_period's four: the checked period's end is the next one's start.
    if (index <= 0 or shift_months(anchor, index * months) != period.end
            or shift_months(anchor, (index - 1) * months) != period.start):
        raise InvalidPeriod(
            f"{period.start.isoformat()} → {period.end.isoformat()} is not a period of the "
            f"{months}-month cycle anchored at {anchor.isoformat()}.",
        )
    return Period(period.end, shift_months(anchor, (index + 1) * months))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A UTC instant; a convenience for callers and tests."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
