"""The subscription lifecycle: its states, the transitions allowed between them, and dunning (DESIGN §3).

A subscription is in one of four states (:class:`Status`). It enters the lifecycle (from ``None``:
there was no subscription) by a free trial or a purchase, and moves on only along the pairs of
:data:`TRANSITIONS`, each by one of the events named there:

- a free trial is followed by a purchase, or expires at its end (S16);
- an active subscription changes (S4), renews, turns ``past_due`` when its renewal charge fails,
  or expires at the end of a period it does not renew (S2);
- a ``past_due`` one is paid (back to ``active``), fails again (dunning), is changed by staff, or
  expires after its last failed retry;
- an expired one is bought again (S9).

The dunning schedule (:func:`next_attempt_at`): after a renewal charge fails, it is tried again
:data:`RETRY_DAYS` days after the *first* failure (1, 3 and 7 days); when those attempts have failed
too, no attempt is left and the subscription expires.

Who may call: the subscriptions app's transition service (the only writer of a status) and the
billing run, for its schedule. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from prorata_core.errors import TransitionRefused
from prorata_core.periods import require_utc


class Status(StrEnum):
    """A subscription's state."""

    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    EXPIRED = "expired"


class Event(StrEnum):
    """What moves a subscription from one state to the next (its history entry's kind)."""

    TRIAL_STARTED = "trial_started"
    PURCHASED = "purchased"
    CHANGED = "changed"
    REACTIVATED = "reactivated"
    RENEWED = "renewed"
    PAYMENT_FAILED = "payment_failed"
    #: A past-due renewal invoice was paid (a retry, or Pay now).
    RENEWAL_PAID = "renewal_paid"
    EXPIRED = "expired"


_T, _A, _P, _E = Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.EXPIRED

#: ``(from, to) → the events that may make that move``; ``from`` is ``None`` for a subscription
#: that does not exist yet. A pair that is not a key is not allowed, whatever the event.
TRANSITIONS: Mapping[tuple[Status | None, Status], frozenset[Event]] = MappingProxyType({
    (None, _T): frozenset({Event.TRIAL_STARTED}),
    (None, _A): frozenset({Event.PURCHASED}),
    (_T, _A): frozenset({Event.PURCHASED}),
    (_T, _E): frozenset({Event.EXPIRED}),
    (_A, _A): frozenset({Event.CHANGED, Event.RENEWED}),
    (_A, _P): frozenset({Event.PAYMENT_FAILED}),
    (_A, _E): frozenset({Event.EXPIRED}),
    (_P, _A): frozenset({Event.RENEWAL_PAID, Event.CHANGED}),
    (_P, _P): frozenset({Event.PAYMENT_FAILED}),
    (_P, _E): frozenset({Event.EXPIRED}),
    (_E, _A): frozenset({Event.REACTIVATED}),
})


def is_allowed(current: Status | None, to: Status, event: Event) -> bool:
    """Whether ``event`` may move a subscription in state ``current`` (``None``: none yet) to ``to``."""
    return event in TRANSITIONS.get((current, to), frozenset())


def check_transition(current: Status | None, to: Status, event: Event) -> None:
    """Raise :class:`~prorata_core.errors.TransitionRefused` unless :func:`is_allowed`."""
    if not is_allowed(current, to, event):
        shown = current.value if current is not None else "none"
        raise TransitionRefused(
            f"A subscription cannot go from {shown} to {to.value} by {event.value}: nothing was "
            "changed. Reload the subscription: it may have changed meanwhile.",
            current=shown, to=to.value, event=event.value,
        )


#: Days after the first failed renewal charge on which it is tried again (DESIGN §3 "Renewal").
RETRY_DAYS: tuple[int, ...] = (1, 3, 7)


def next_attempt_at(*, first_failed_at: datetime, attempts_made: int) -> datetime | None:
    """When to charge a failed renewal again: ``first_failed_at`` + :data:`RETRY_DAYS`\\[n − 1\\]
    after ``attempts_made`` = n failed attempts (the first charge included, so n ≥ 1), exact to the
    second; ``None`` when the schedule is used up (n > 3): the subscription then expires.

    ``first_failed_at`` is a UTC instant (the failure of the first charge, not of the latest retry:
    a late retry does not push the next ones back)."""
    require_utc(first_failed_at, "first_failed_at")
    if attempts_made < 1:
        raise ValueError(f"attempts_made counts the failed attempts, at least 1: {attempts_made}")
    if attempts_made > len(RETRY_DAYS):
        return None
    return first_failed_at + timedelta(days=RETRY_DAYS[attempts_made - 1])


def attempts_made_by(*, first_failed_at: datetime, retry_at: datetime) -> int:
    """How many failed attempts the schedule counts once its retry due at ``retry_at`` (which
    :func:`next_attempt_at` planned: ``first_failed_at`` + :data:`RETRY_DAYS`\\[k\\]) has failed
    too: k + 2, from 2 after the first retry to ``len(RETRY_DAYS) + 1`` after the last. Pass the
    result to :func:`next_attempt_at`.

    Attempts the customer makes between two retries (Pay now, an authentication abandoned) are
    not on the schedule, so counting by the planned instant rather than by attempts made keeps
    them from moving it. ``ValueError`` for an instant the schedule never planned."""
    require_utc(first_failed_at, "first_failed_at")
    require_utc(retry_at, "retry_at")
    for position, days in enumerate(RETRY_DAYS):
        if retry_at == first_failed_at + timedelta(days=days):
            return position + 2
    raise ValueError(f"{retry_at.isoformat()} is not a retry planned after a first failure at "
                     f"{first_failed_at.isoformat()}")


def attempts_left(attempts_made: int) -> int:
    """How many retries remain after ``attempts_made`` failed attempts (never negative)."""
    return max(0, len(RETRY_DAYS) + 1 - attempts_made)
