"""Two delivery workers on PostgreSQL never claim the same message (FOR UPDATE SKIP LOCKED).

SQLite needs no such test: its transactions take the write lock at BEGIN, so claims queue.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import outbox_deliver_batch, outbox_enqueue

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's"),
]

CONTEXT = {"kind": "purchase", "document_number": "2026-000001",
           "amount_paid": {"amount": 100, "currency": "EUR"}}


def test_a_row_another_worker_holds_is_skipped_not_sent_twice(clock):
    with transaction.atomic():
        held = outbox_enqueue(to="a@x.example", template="receipt", context=CONTEXT,
                              language="en", dedupe_key="held")
        outbox_enqueue(to="b@x.example", template="receipt", context=CONTEXT, language="en",
                       dedupe_key="free")
    locked, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                OutboxMessage.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    worker = threading.Thread(target=other_worker)
    worker.start()
    try:
        assert locked.wait(timeout=30)
        batch = outbox_deliver_batch()
        assert (batch.claimed, batch.sent) == (1, 1)
        assert OutboxMessage.objects.get(pk=held.pk).attempts == 0
    finally:
        release.set()
        worker.join()
    assert outbox_deliver_batch().sent == 1
    assert sorted(OutboxMessage.objects.values_list("dedupe_key", "status")) == [
        ("free", "sent"), ("held", "sent")
    ]
