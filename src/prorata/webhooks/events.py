"""Writing webhook events, in the transaction of the change they report (DESIGN §8, STYLE rule 8).

Every road that reports a fact builds its events here, so both roads write the same rows:

- the services, one fact at a time: :func:`webhook_emit` (``type``, the fact's ``key``, its
  ``data``) inside the caller's ``transaction.atomic()``;
- the set-based billing run, a chunk at a time: a :class:`WebhookBatch` collects the chunk's
  events and :meth:`WebhookBatch.save` writes them and their deliveries in two bulk statements
  (``COPY`` on PostgreSQL, :mod:`prorata.common.bulk`).

An event is written only if an active endpoint subscribes to its type, with one pending
:class:`~prorata.webhooks.models.WebhookDelivery` per such endpoint: no endpoint, no rows (and
an endpoint hears of the events after it was registered, not before). Because the rows are part
of the business transaction, a rollback emits nothing and a crash after the commit loses
nothing: the delivery job (:mod:`prorata.webhooks.delivery`) sends them at least once.

``key`` names the fact, not the event (``invoice.created:42``): the same key twice keeps the
first event (the ORM road ignores the repeat; the set-based road is given fresh facts only, the
billing run's renewals being unique per period). ``data`` may be a function: it is called only
when someone listens, so an unheard event costs one small query per transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prorata.common.bulk import as_json, insert_rows, reserve_ids
from prorata.common.clock import now
from prorata.webhooks.models import (
    DeliveryStatus,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

#: The version of the events' shape (docs/webhooks.md): a change that could break a receiver
#: (a field renamed or removed, a meaning changed) comes with a new version; added fields do not.
API_VERSION = "2026-12-01"

EVENT_TYPES: frozenset[str] = frozenset(EventType.values)

Data = Mapping[str, Any] | Callable[[], Mapping[str, Any]]

_EVENT_COLUMNS = ("id", "event_id", "dedupe_key", "type", "api_version", "created_at", "data")
_DELIVERY_COLUMNS = ("event_id", "endpoint_id", "status", "attempts", "next_attempt_at",
                     "created_at", "last_error")


class UnknownEventType(ValueError):
    """A programming error: an event type that is not in :class:`EventType`."""


def subscribers() -> dict[str, list[int]]:
    """The active endpoints subscribed to each event type: ``{type: [endpoint id, …]}``."""
    found: dict[str, list[int]] = {}
    for endpoint_id, types in (WebhookEndpoint.objects.filter(is_active=True)
                               .order_by("id").values_list("id", "event_types")):
        for kind in types or ():
            found.setdefault(kind, []).append(endpoint_id)
    return found


def new_event_id() -> str:
    """A fresh public event id: ``evt_`` and 32 hex digits (random, so ids say nothing)."""
    return "evt_" + uuid.uuid4().hex


@dataclass
class WebhookBatch:
    """The events of one transaction, saved together by :meth:`save` (inside it).

    Reads the subscribed endpoints once, when made: make it inside the transaction."""

    subscribed: dict[str, list[int]] = field(default_factory=subscribers)
    events: list[tuple[str, str, str, datetime, Mapping[str, Any]]] = field(default_factory=list)

    def wants(self, type: str) -> bool:
        """Whether an active endpoint listens to ``type`` (an unknown type raises)."""
        if type not in EVENT_TYPES:
            raise UnknownEventType(f"{type!r} is not a webhook event type; known: "
                                   f"{sorted(EVENT_TYPES)}.")
        return bool(self.subscribed.get(type))

    def add(self, type: str, *, key: str, data: Data, at: datetime) -> None:
        """Queue the event ``type`` of the fact ``key`` at ``at`` (when someone listens)."""
        if not self.wants(type):
            return
        if not 0 < len(key) <= 200:
            raise ValueError(f"{key!r} is not an event key: 1 to 200 characters.")
        payload = data() if callable(data) else data
        self.events.append((new_event_id(), key, type, at, payload))

    def save(self, *, fresh: bool = False) -> int:
        """Write the queued events and one pending delivery per subscribed endpoint, in the
        caller's transaction; returns how many events were written.

        ``fresh``: the caller guarantees no key was written before (the billing run's renewals):
        rows go in two bulk inserts (``COPY`` on PostgreSQL) and a repeated key fails the
        transaction. Otherwise a key written before keeps its first event (and deliveries)."""
        if not self.events:
            return 0
        events, self.events = self.events, []
        if fresh:
            ids = reserve_ids(WebhookEvent._meta.db_table, len(events))
            insert_rows(WebhookEvent._meta.db_table, _EVENT_COLUMNS, [
                (pk, event_id, key, kind, API_VERSION, at, as_json(dict(data)))
                for pk, (event_id, key, kind, at, data) in zip(ids, events, strict=True)])
            written = [(pk, kind, at) for pk, (_, _, kind, at, _) in zip(ids, events, strict=True)]
            insert_rows(WebhookDelivery._meta.db_table, _DELIVERY_COLUMNS, [
                (pk, endpoint_id, DeliveryStatus.PENDING.value, 0, at, at, "")
                for pk, kind, at in written for endpoint_id in self.subscribed[kind]])
            return len(written)
        WebhookEvent.objects.bulk_create([
            WebhookEvent(event_id=event_id, dedupe_key=key, type=kind, api_version=API_VERSION,
                         created_at=at, data=dict(data))
            for event_id, key, kind, at, data in events], ignore_conflicts=True)
        # Those that were written carry the ids made here (a repeated key kept its first id).
        saved = list(WebhookEvent.objects.filter(
            event_id__in=[event[0] for event in events]).values_list("id", "type", "created_at"))
        WebhookDelivery.objects.bulk_create([
            WebhookDelivery(event_id=pk, endpoint_id=endpoint_id, next_attempt_at=at,
                            created_at=at)
            for pk, kind, at in saved for endpoint_id in self.subscribed[kind]
        ], ignore_conflicts=True)
        return len(saved)


def webhook_emit(type: str, *, key: str, data: Data, at: datetime | None = None) -> int:
    """Write the event ``type`` of the fact ``key`` (``data``: its object, or a function making
    it) with its deliveries, in the caller's transaction, if an active endpoint listens; returns
    1 if an event was written, else 0. ``at``: the fact's instant (default: the project clock)."""
    batch = WebhookBatch()
    if not batch.wants(type):
        return 0
    batch.add(type, key=key, data=data, at=at if at is not None else now())
    return batch.save()
