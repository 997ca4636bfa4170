"""A scheduled webinar's participant limit (DESIGN §4, seed S5).

The rule: a webinar's limit is the larger of the limit when it was scheduled and every plan limit
the account held while the webinar was upcoming. So an upgrade raises every upcoming webinar's
limit at once, and nothing that happens to the subscription afterwards — a downgrade by staff,
fewer licenses, a renewal, an expiry — ever lowers it (S5: "a change of the participant limit
does not affect sessions already scheduled").

The account's plan history is a list of :class:`Spell`: from ``start`` on, the account held a
plan allowing ``limit`` participants (0 while it held none: expired). A spell lasts until the next
one starts, ``[start, next.start)``; the last one lasts until now. A webinar is upcoming on
``[scheduled_at, starts_at)``; only the part of that window that has already happened counts,
up to and including ``now`` (a change made at the clock's instant counts at once: the project
clock of a demo stands still).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Spell:
    """From ``start`` (a UTC instant) the account's plan allows ``limit`` participants."""

    start: datetime
    limit: int


def participant_limit(
    *,
    limit_when_scheduled: int,
    scheduled_at: datetime,
    starts_at: datetime,
    now: datetime,
    spells: Sequence[Spell],
) -> int:
    """The webinar's participant limit at ``now`` (participants, an integer).

    ``spells`` are sorted by ``start``. A spell counts when it is the one in effect at
    ``scheduled_at`` or starts in ``(scheduled_at, starts_at)`` no later than ``now``. Never less than ``limit_when_scheduled``; for a fixed webinar it never
    decreases as ``now`` moves forward and spells are appended after ``now``.
    """
    best = limit_when_scheduled
    for index, spell in enumerate(spells):
        ends = spells[index + 1].start if index + 1 < len(spells) else None
        # Over before the webinar was scheduled. One ending at that very instant counts: the
        # project clock can stand still, and several changes then share one instant.
        if ends is not None and ends < scheduled_at:
            continue
        if spell.start > scheduled_at and (spell.start >= starts_at or spell.start > now):
            break  # began once the webinar had started (or after now): later spells too
        best = max(best, spell.limit)
    return best
