"""Delivering webhook events: at least once, signed, retried with back-off for three days.

:func:`webhooks_deliver` (the ``deliver-webhooks`` periodic job) drains each active endpoint's due
deliveries on its own thread (at most ``PRORATA_WEBHOOK_THREADS`` at once), so that a slow or
dead endpoint delays only itself. For one endpoint, batch after batch:

1. **claim** up to ``batch_size`` due pending deliveries (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL), counting the attempt and moving ``next_attempt_at`` to the end of a
   :data:`LEASE`: a worker that dies mid-batch leaves them due again after it, never lost, and
   two workers never send one delivery at the same time;
2. **send** each as ``POST <url>`` with the event's JSON body and its signature
   (:mod:`prorata.webhooks.signing`) over one kept-alive HTTP connection; any 2xx answer within
   ``PRORATA_WEBHOOK_TIMEOUT`` seconds is a success, anything else (another status, a refused
   connection, a timeout) a failure;
3. **record** the outcomes, the successes in one statement per status code.

A failure is retried after :func:`retry_delay` (30 s, doubling, at most 6 h), for
:data:`RETRY_FOR` from the event's creation; an attempt failing after that gives the delivery
up (``failed``) and flags its endpoint (``failing_since``, shown in the console) until a delivery
to it succeeds again. When the endpoint cannot be reached at all (refused, timed out), the rest of
its batch is not tried: those deliveries are put back, uncounted, due when the failed one is.

A delivery can thus arrive twice (a crash between the answer and its record, a replay from the
console): the event's ``id`` is the same every time, and receivers drop the repeats by it. Events
may arrive in any order; ``created`` says when each happened.

Who may call: the scheduler (:mod:`prorata.jobs.periodic`), the ``deliver-webhooks`` command,
tests and benchmarks.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from prorata.common.clock import format_instant, now, wall_now
from prorata.common.db import retry_transient
from prorata.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from prorata.webhooks.signing import HEADER, signature_header

logger = logging.getLogger(__name__)

#: How long the deliveries of a claimed batch are the claiming worker's (longer than a batch
#: may take: see :data:`BATCH_SECONDS` and the request timeout).
LEASE = timedelta(minutes=5)
#: A batch stops sending after this many seconds (real time); what is left is put back.
BATCH_SECONDS = 60.0
#: One run of the job stops claiming after this many seconds; the next run goes on.
RUN_SECONDS = 60.0
#: Failures are retried until this long after the event (then the delivery is given up).
RETRY_FOR = timedelta(days=3)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=6)
#: At most this much of an answer's body is read (and kept, shorter, as the error).
ANSWER_LIMIT = 64 * 1024
USER_AGENT = "Prorata-Webhooks/1"


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s, 1 min, 2 min, … at most 6 h."""
    return min(FIRST_RETRY * 2 ** min(max(attempts - 1, 0), 20), LONGEST_RETRY)


def next_attempt(*, attempts: int, created_at: datetime, at: datetime) -> datetime | None:
    """When to try again after the ``attempts``-th attempt failed at ``at``, for an event of
    ``created_at``: after :func:`retry_delay`, but no later than :data:`RETRY_FOR` after the
    event (one last attempt then); None once that instant has passed (give up)."""
    deadline = created_at + RETRY_FOR
    if at >= deadline:
        return None
    return min(at + retry_delay(attempts), deadline)


def event_body(*, event_id: str, type: str, created_at: datetime, api_version: str,
               data: Any) -> bytes:
    """The JSON body every endpoint receives for an event (compact UTF-8, keys in this order)."""
    return orjson.dumps({"id": event_id, "type": type, "created": format_instant(created_at),
                         "api_version": api_version, "data": data})


@dataclass
class DeliveryCounts:
    """What a run did: deliveries ``sent`` (2xx), ``failed`` (to be retried), ``gave_up``
    (given up: the endpoint is flagged), ``released`` (claimed, not tried, put back)."""

    sent: int = 0
    failed: int = 0
    gave_up: int = 0
    released: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, other: DeliveryCounts) -> None:
        with self.lock:
            self.sent += other.sent
            self.failed += other.failed
            self.gave_up += other.gave_up
            self.released += other.released

    def as_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "failed": self.failed, "gave_up": self.gave_up,
                "released": self.released}


def webhooks_deliver(*, batch_size: int = 500, threads: int | None = None,
                     run_seconds: float = RUN_SECONDS) -> dict[str, int]:
    """Send every due delivery of every active endpoint (see the module docstring); returns the
    counts. ``threads``: endpoints drained at once (default ``PRORATA_WEBHOOK_THREADS``); 1
    drains them one after the other on the calling thread (and its database connection)."""
    threads = settings.PRORATA_WEBHOOK_THREADS if threads is None else threads
    endpoint_ids = list(WebhookEndpoint.objects.filter(is_active=True).order_by("id")
                        .values_list("id", flat=True))
    counts = DeliveryCounts()
    until = time.monotonic() + run_seconds
    if threads <= 1 or len(endpoint_ids) <= 1:
        for endpoint_id in endpoint_ids:
            counts.add(_drain(endpoint_id, batch_size=batch_size, until=until))
        return counts.as_dict()

    def drain(endpoint_id: int) -> None:
        try:
            counts.add(_drain(endpoint_id, batch_size=batch_size, until=until))
        except Exception:
            logger.exception("Webhook delivery to endpoint %s failed", endpoint_id)
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=min(threads, len(endpoint_ids)),
                            thread_name_prefix="webhooks") as pool:
        list(pool.map(drain, endpoint_ids))
    return counts.as_dict()


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    event_id: int
    attempts: int  # counting the attempt being made
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    secrets: tuple[str, ...]


def _drain(endpoint_id: int, *, batch_size: int, until: float) -> DeliveryCounts:
    counts = DeliveryCounts()
    sender: _Sender | None = None
    try:
        while time.monotonic() < until:
            at = now()
            target = _target(endpoint_id, at)
            if target is None:
                break
            claimed = _claim(endpoint_id, limit=batch_size, at=at)
            if not claimed:
                break
            if sender is None or sender.url != target.url:
                if sender is not None:
                    sender.close()
                sender = _Sender(target.url, timeout=settings.PRORATA_WEBHOOK_TIMEOUT)
            counts.add(_send_batch(endpoint_id, claimed, target=target, sender=sender, at=at))
    finally:
        if sender is not None:
            sender.close()
    return counts


def _target(endpoint_id: int, at: datetime) -> _Target | None:
    """The endpoint's URL and the secrets to sign with now (None: no longer active)."""
    row = (WebhookEndpoint.objects.filter(pk=endpoint_id, is_active=True)
           .values_list("url", "secret", "previous_secret", "previous_secret_until").first())
    if row is None:
        return None
    url, secret, previous, previous_until = row
    keys = (secret, previous) if previous and previous_until and previous_until > at else (secret,)
    return _Target(url, keys)


@retry_transient
def _claim(endpoint_id: int, *, limit: int, at: datetime) -> list[_Claimed]:
    with transaction.atomic():
        due = WebhookDelivery.objects.filter(
            endpoint_id=endpoint_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=at,
        ).order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        rows = list(due.values_list("id", "event_id", "attempts", "created_at")[:limit])
        if rows:
            WebhookDelivery.objects.filter(pk__in=[row[0] for row in rows]).update(
                attempts=F("attempts") + 1, next_attempt_at=at + LEASE)
    return [_Claimed(pk, event_id, attempts + 1, created_at)
            for pk, event_id, attempts, created_at in rows]


@dataclass
class _Outcomes:
    succeeded: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    failed: list[tuple[_Claimed, int | None, str]] = field(default_factory=list)
    unsent: list[_Claimed] = field(default_factory=list)


def _send_batch(endpoint_id: int, claimed: list[_Claimed], *, target: _Target, sender: _Sender,
                at: datetime) -> DeliveryCounts:
    bodies = {
        pk: (event_id, kind, event_body(event_id=event_id, type=kind, created_at=created,
                                        api_version=version, data=data))
        for pk, event_id, kind, created, version, data in WebhookEvent.objects.filter(
            pk__in={item.event_id for item in claimed}).values_list(
            "id", "event_id", "type", "created_at", "api_version", "data")
    }
    outcomes = _Outcomes()
    stop_at = time.monotonic() + BATCH_SECONDS
    unreachable = False
    for item in claimed:
        if unreachable or time.monotonic() > stop_at:
            outcomes.unsent.append(item)
            continue
        event_id, kind, body = bodies[item.event_id]
        # The receiver checks the signature's age against its own clock: the wall clock's
        # instant, whatever the project clock says (a demo's movable clock may be months ahead).
        timestamp = int(wall_now().timestamp())
        headers = {
            "Content-Type": "application/json", "User-Agent": USER_AGENT,
            "Prorata-Event-Id": event_id, "Prorata-Event-Type": kind,
            "Prorata-Delivery-Attempt": str(item.attempts),
            HEADER: signature_header(target.secrets, timestamp, body),
        }
        try:
            status, answer = sender.post(body, headers)
        except (OSError, http.client.HTTPException) as error:
            outcomes.failed.append((item, None, f"{type(error).__name__}: {error}"[:2000]))
            unreachable = True  # the rest of the batch would fail the same way
            continue
        if 200 <= status < 300:
            outcomes.succeeded[status].append(item.id)
        else:
            text = answer.decode("utf-8", "replace")[:500]
            outcomes.failed.append((item, status, f"HTTP {status}: {text}"))
    return _record(endpoint_id, outcomes, at=at)


@retry_transient
def _record(endpoint_id: int, outcomes: _Outcomes, *, at: datetime) -> DeliveryCounts:
    """Write a batch's outcomes (``at``: the project clock's instant of the batch)."""
    counts = DeliveryCounts()
    with transaction.atomic():
        for status, ids in outcomes.succeeded.items():
            WebhookDelivery.objects.filter(pk__in=ids).update(
                status=DeliveryStatus.SUCCEEDED, delivered_at=at, last_attempt_at=at,
                last_status_code=status, last_error="")
            counts.sent += len(ids)
        if outcomes.succeeded:
            WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=False).update(
                failing_since=None)
        retry_at = None
        for item, status, error in outcomes.failed:
            retry_at = next_attempt(attempts=item.attempts, created_at=item.created_at, at=at)
            WebhookDelivery.objects.filter(pk=item.id).update(
                status=DeliveryStatus.FAILED if retry_at is None else DeliveryStatus.PENDING,
                next_attempt_at=retry_at or at, last_attempt_at=at, last_status_code=status,
                last_error=error)
            if retry_at is None:
                counts.gave_up += 1
                logger.error("Webhook delivery %s to endpoint %s given up after %d attempts: %s",
                             item.id, endpoint_id, item.attempts, error)
                WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(
                    failing_since=at)
            else:
                counts.failed += 1
                logger.warning("Webhook delivery %s to endpoint %s, attempt %d, failed: %s",
                               item.id, endpoint_id, item.attempts, error)
        if outcomes.unsent:
            # Not tried: the attempt is given back, and they wait as long as the failed one.
            WebhookDelivery.objects.filter(pk__in=[item.id for item in outcomes.unsent]).update(
                attempts=F("attempts") - 1, next_attempt_at=retry_at or at)
            counts.released += len(outcomes.unsent)
    return counts


class _Sender:
    """One kept-alive HTTP(S) connection to an endpoint's URL (one thread's)."""

    def __init__(self, url: str, *, timeout: float) -> None:
        parts = urlsplit(url)
        self.url = url
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def _open(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body``; the answer's status and (at most :data:`ANSWER_LIMIT` of) its body.

        A kept-alive connection the server closed meanwhile fails before any answer: the
        request is sent again once on a new connection (at worst a repeat, which receivers
        drop by event id)."""
        reused = self.connection is not None
        for _ in range(2):
            if self.connection is None:
                self.connection = self._open()
            try:
                self.connection.request("POST", self.path, body=body, headers=headers)
                response = self.connection.getresponse()
                answer = response.read(ANSWER_LIMIT)
                if response.will_close or not response.isclosed():
                    # Closed by the server, or an answer longer than we read: not reusable.
                    self.close()
                return response.status, answer
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if not reused:
                    raise
                reused = False
            except BaseException:
                self.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
