"""A subscription's history as one timeline (the selector every history view uses).

The history is kept in two tables: a :class:`~prorata.subscriptions.models.SubscriptionEvent` for
every status change and renewal choice, and the billing run's
:class:`~prorata.jobs.models.Renewal` row for each period it renewed (the run writes no event
repeating it). :func:`subscription_history` reads both and merges them by instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps

from prorata.subscriptions.models import Subscription, SubscriptionEvent

__all__ = ["HistoryEntry", "subscription_history"]

#: A renewal's entry kind: the same word as a renewal event written before the run stopped
#: repeating its renewals as events.
RENEWED = SubscriptionEvent.Kind.RENEWED.value


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a subscription's history.

    ``kind`` is a :class:`~prorata.subscriptions.models.SubscriptionEvent.Kind` value (``label``
    its translated name); ``status_before`` / ``status_after`` the status moved from and to
    (``None`` where the entry does not record one: a first purchase has no before). A renewal by
    the billing run has ``period`` (``[start, end)``, UTC), ``invoice_id`` and ``renewal_status``
    (how its invoice is being settled: paid, retrying…); an event has ``before`` / ``after`` as it
    recorded them, and the ``order_id`` / ``actor_id`` that caused it, if any."""

    at: datetime
    kind: str
    label: str
    status_before: str | None
    status_after: str | None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    order_id: int | None = None
    actor_id: int | None = None
    period: tuple[datetime, datetime] | None = None
    invoice_id: int | None = None
    renewal_status: str | None = None


def _status(recorded: Any) -> str | None:
    status = recorded.get("status") if isinstance(recorded, dict) else None
    return status if isinstance(status, str) else None


def subscription_history(*, subscription: Subscription | int) -> list[HistoryEntry]:
    """Every entry of the subscription's history, oldest first (at one instant, the run's renewal
    before the events it caused, such as a failed charge; then by id). Two queries. Who may call: anything that shows the history, after checking the
    reader may see the subscription's account."""
    subscription_id = subscription if isinstance(subscription, int) else subscription.pk
    labels = dict(SubscriptionEvent.Kind.choices)
    keyed: list[tuple[tuple[datetime, int, int], HistoryEntry]] = []
    for event in SubscriptionEvent.objects.filter(subscription_id=subscription_id).order_by("at", "id"):
        keyed.append(((event.at, 1, event.pk), HistoryEntry(
            at=event.at, kind=event.kind, label=str(labels.get(event.kind, event.kind)),
            status_before=_status(event.before), status_after=_status(event.after),
            before=event.before, after=event.after, order_id=event.order_id,
            actor_id=event.actor_id,
        )))
    # By name: the subscriptions app does not import the jobs app (an edge) for its model.
    renewal_model = apps.get_model("jobs", "Renewal")
    renewals = renewal_model.objects.filter(subscription_id=subscription_id).order_by(
        "created_at", "id")
    for renewal in renewals:
        keyed.append(((renewal.created_at, 0, renewal.pk), HistoryEntry(
            at=renewal.created_at, kind=RENEWED, label=str(labels[RENEWED]),
            status_before=None, status_after=None,
            period=(renewal.period_start, renewal.period_end), invoice_id=renewal.invoice_id,
            renewal_status=renewal.status,
        )))
    keyed.sort(key=lambda pair: pair[0])
    return [entry for _key, entry in keyed]
