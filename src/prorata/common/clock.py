"""The project clock: the only place Prorata reads the time.

Services ask :func:`now` for the current instant and pass it on; the engine (``prorata_core``) never
reads a clock. ``settings.PRORATA_CLOCK`` picks the source:

- ``wall`` (production): the system clock, ``datetime.now(UTC)``.
- ``movable`` (demo and tests, like a payment provider's test clock): the instant stored in the single
  :class:`~prorata.common.models.ClockState` row. It is frozen until :func:`clock_set` or
  :func:`clock_advance` moves it, and it is read from the database on every call (one query by
  primary key), so a running server sees a move made by ``prorata clock`` at once. The first read
  creates the row from the wall clock, truncated to whole seconds.

Every instant here is timezone-aware UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from prorata.common.errors import ClockNotMovable, InvalidDuration
from prorata.common.models import ClockState
from prorata_core.errors import InvalidInstant
from prorata_core.periods import require_utc, shift_months

WALL = "wall"
MOVABLE = "movable"
_ROW = 1

DURATION_EXAMPLES = "30s, 15min, 2h, 14d, 2w, 1month, 3months or 1y"
INSTANT_EXAMPLE = "2026-03-11T00:00:00Z"


def clock_mode() -> str:
    """``"wall"`` or ``"movable"``, from ``settings.PRORATA_CLOCK`` (read on each call)."""
    mode = settings.PRORATA_CLOCK
    if mode not in {WALL, MOVABLE}:
        raise ImproperlyConfigured(f"PRORATA_CLOCK must be 'wall' or 'movable', not {mode!r}")
    return mode


def _wall_now() -> datetime:
    return datetime.now(UTC)


def wall_now() -> datetime:
    """The system clock's instant whatever ``PRORATA_CLOCK`` says: only for what Django itself
    times in real time (a session's expiry, as ``django.utils.timezone.now``) and what another
    system compares with its own clock (a webhook signature's timestamp), never for billing."""
    return _wall_now()


def now() -> datetime:
    """The current instant of the project, timezone-aware UTC.

    Movable clock: one primary-key read; the row is created from the wall clock if missing.
    """
    if clock_mode() == WALL:
        return _wall_now()
    try:
        instant = ClockState.objects.values_list("instant", flat=True).get(pk=_ROW)
    except ClockState.DoesNotExist:
        instant = _create_row().instant
    return instant.astimezone(UTC)


def _create_row() -> ClockState:
    # get_or_create: two first readers racing both end up with the one row.
    row, _ = ClockState.objects.get_or_create(
        pk=_ROW, defaults={"instant": _wall_now().replace(microsecond=0)}
    )
    return row


def _require_movable() -> None:
    if clock_mode() != MOVABLE:
        raise ClockNotMovable(
            "The project clock follows the wall clock (PRORATA_CLOCK=wall) and cannot be moved; "
            "set PRORATA_CLOCK=movable to move it (demo and tests only).",
            mode=WALL,
        )


@dataclass(frozen=True, slots=True)
class ClockStep:
    """A forward move of the clock: whole calendar ``months`` (clamped at month end), then ``delta``."""

    months: int = 0
    delta: timedelta = timedelta(0)

    @property
    def is_positive(self) -> bool:
        zero = timedelta(0)
        return self.months >= 0 and self.delta >= zero and (self.months > 0 or self.delta > zero)

    def applied_to(self, instant: datetime) -> datetime:
        """``instant`` moved by this step; months first, with :func:`shift_months` clamping."""
        try:
            return shift_months(instant, self.months) + self.delta
        except (ValueError, OverflowError):
            raise InvalidDuration(
                f"Moving the clock from {format_instant(instant)} by {self} goes past the year 9999.",
                duration=str(self),
            ) from None

    def __str__(self) -> str:
        parts = []
        if self.months:
            years, months = divmod(self.months, 12)
            if years:
                parts.append(f"{years} year{'s' if years != 1 else ''}")
            if months:
                parts.append(f"{months} month{'s' if months != 1 else ''}")
        if self.delta or not parts:
            parts.append(str(self.delta))
        return " + ".join(parts)


def clock_set(*, instant: datetime) -> datetime:
    """Move the movable clock to ``instant`` (aware UTC), forwards or backwards; returns it.

    Raises ClockNotMovable on the wall clock and InvalidInstant for a naive or non-UTC instant.
    """
    _require_movable()
    instant = require_utc(instant, "clock instant").astimezone(UTC)
    ClockState.objects.update_or_create(pk=_ROW, defaults={"instant": instant})
    return instant


def clock_advance(*, duration: ClockStep | timedelta) -> datetime:
    """Move the movable clock forward by ``duration``; returns the new instant.

    Only positive durations; going back is :func:`clock_set`'s job. Calendar months clamp at month
    end (2026-01-31 + 1 month = 2026-02-28). Raises ClockNotMovable on the wall clock.
    """
    _require_movable()
    step = duration if isinstance(duration, ClockStep) else ClockStep(delta=duration)
    if not step.is_positive:
        raise InvalidDuration(
            f"The clock only advances by a positive duration, not {step}; use `clock set` to go back.",
            duration=str(step),
        )
    with transaction.atomic():
        row = ClockState.objects.select_for_update().filter(pk=_ROW).first() or _create_row()
        row.instant = step.applied_to(row.instant.astimezone(UTC))
        row.save(update_fields=["instant"])
    return row.instant


_UNITS: dict[str, tuple[str, int]] = {
    **dict.fromkeys(["s", "sec", "secs", "second", "seconds"], ("seconds", 1)),
    **dict.fromkeys(["min", "mins", "minute", "minutes"], ("seconds", 60)),
    **dict.fromkeys(["h", "hr", "hrs", "hour", "hours"], ("seconds", 3600)),
    **dict.fromkeys(["d", "day", "days"], ("seconds", 86_400)),
    **dict.fromkeys(["w", "week", "weeks"], ("seconds", 7 * 86_400)),
    **dict.fromkeys(["mo", "month", "months"], ("months", 1)),
    **dict.fromkeys(["y", "yr", "year", "years"], ("months", 12)),
}
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> ClockStep:
    """Read ``"30s"``, ``"15min"``, ``"2h"``, ``"14d"``, ``"2w"``, ``"1month"``, ``"1y"`` as a ClockStep."""
    match = _DURATION.match(text)
    if match is not None and match.group(2).lower() == "m":
        number = match.group(1)
        raise InvalidDuration(
            f"{text!r} is ambiguous: write {number}min for minutes or {number}month for months.",
            duration=text,
        )
    if match is None or match.group(2).lower() not in _UNITS or int(match.group(1)) == 0:
        raise InvalidDuration(
            f"{text!r} is not a clock duration; write a positive whole number and a unit, "
            f"such as {DURATION_EXAMPLES}.",
            duration=text,
        )
    unit = match.group(2).lower()
    kind, factor = _UNITS[unit]
    count = int(match.group(1)) * factor
    if kind == "months":
        return ClockStep(months=count)
    try:
        return ClockStep(delta=timedelta(seconds=count))
    except OverflowError:
        raise InvalidDuration(f"{text!r} is too long a duration for the clock.", duration=text) from None


def parse_instant(text: str) -> datetime:
    """Read an ISO 8601 UTC instant (``2026-03-11T00:00:00Z`` or ``...+00:00``); naive ones are refused."""
    try:
        instant = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInstant(
            f"{text!r} is not an ISO 8601 instant; write it in UTC, like {INSTANT_EXAMPLE}.",
            instant=text,
        ) from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidInstant(
            f"{text!r} has no time zone; end it with Z or +00:00, like {INSTANT_EXAMPLE}.",
            instant=text,
        )
    if instant.utcoffset() != timedelta(0):
        raise InvalidInstant(
            f"{text!r} is not in UTC; give the same instant in UTC, ending with Z or +00:00, "
            f"like {INSTANT_EXAMPLE}.",
            instant=text,
        )
    return instant.astimezone(UTC)


def format_instant(instant: datetime) -> str:
    """The canonical form of a UTC instant: ``2026-03-11T00:00:00Z``."""
    if instant.tzinfo is UTC:  # the common case (a billing run formats thousands): no conversion
        return instant.isoformat()[:-6] + "Z"
    text = instant.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def instant_from_json(text: str) -> datetime:
    """An instant the project wrote (:func:`format_instant`'s ``…Z``, or ``isoformat()``'s
    ``+00:00``: snapshots, e-mail contexts, cursors, job arguments), as an aware UTC datetime.
    Raises ``ValueError`` for anything else, a naive instant included. The one reader of the
    project's own instants; a person's input goes through :func:`parse_instant` (its errors say
    what to write)."""
    instant = datetime.fromisoformat(str(text))
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{text!r} is an instant without a time zone")
    return instant.astimezone(UTC)
