"""The console's outbox page: staff see every e-mail and can send one again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse

from prorata.accounts.models import User
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.notifications.outbox import outbox_enqueue
from tests.app.console_auth import console_login

pytestmark = pytest.mark.django_db

CONTEXT = {"kind": "purchase", "document_number": "2026-000001",
           "amount_paid": {"amount": 100, "currency": "EUR"}}


@pytest.fixture
def staff_client(client):
    admin = User.objects.create_superuser("ops@prorata.example", "pw")
    console_login(client, admin)
    return client


def test_staff_list_e_mails_and_send_a_failed_one_again(staff_client, clock):
    with transaction.atomic():
        message = outbox_enqueue(to="a@x.example", template="receipt", context=CONTEXT,
                                 language="en", dedupe_key="receipt:1")
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxStatus.FAILED, attempts=8, next_attempt_at=clock.now() + timedelta(days=1)
    )
    page = staff_client.get(reverse("admin:notifications_outboxmessage_changelist"))
    assert page.status_code == 200 and b"a@x.example" in page.content
    detail = staff_client.get(
        reverse("admin:notifications_outboxmessage_change", args=[message.pk])
    )
    assert detail.status_code == 200
    response = staff_client.post(
        reverse("admin:notifications_outboxmessage_changelist"),
        {"action": "send_again_now", "_selected_action": [message.pk]}, follow=True,
    )
    assert b"1 e-mail will be sent by the next delivery run." in response.content
    message.refresh_from_db()
    assert (message.status, message.next_attempt_at) == (OutboxStatus.PENDING, clock.now())
