"""Support requests in the console (S11): staff list and answer them; the answer is audited."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import translation

from prorata.accounts.models import AuditEntry
from prorata.support.models import SupportRequest, SupportRequestStatus
from prorata.support.services import support_request_create
from prorata.web.errors import error_message
from prorata_core.errors import CorporateAccount, ProrataError
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import buy, card, customer, staff


@pytest.mark.django_db
def test_a_support_agent_lists_and_answers_a_request(clock, demo_catalog):
    account, user = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    invoice = buy(account, user, "standard", "monthly", 1, card_token=card()).invoice
    request = support_request_create(account=account, user=user, kind="refund_request",
                                     invoice_id=invoice.pk,
                                     message="Please refund invoice 2026-000001.")
    agent = staff("support@prorata.example", "support_agent")
    client = Client()
    console_login(client, agent)
    listing = client.get("/console/support/supportrequest/")
    assert listing.status_code == 200 and "Acme Corp" in listing.content.decode()
    url = f"/console/support/supportrequest/{request.pk}/change/"
    assert "Please refund invoice 2026-000001." in client.get(url).content.decode()
    response = client.post(url, {"action": "reply_resolve", "message": "Refunded today."})
    assert response.status_code == 302
    request.refresh_from_db()
    answer = request.messages.get(from_staff=True)
    assert (request.status, answer.body, answer.author, request.assignee) == (
        SupportRequestStatus.RESOLVED, "Refunded today.", agent, agent)
    assert AuditEntry.objects.filter(action="support_request.answer", actor=agent).count() == 1
    assert SupportRequest.objects.count() == 1


def test_errors_are_translated_with_their_params_or_fall_back_to_the_message():
    error = CorporateAccount("…", contact="your advisor (a@b.example)")
    with translation.override("fr"):
        assert error_message(error).startswith("Ce compte est facturé")
    with translation.override("en"):
        assert error_message(error) == (
        "This account is billed through the Corporate Billing Center: contact your advisor "
            "(a@b.example) to change, cancel or renew it.")

    class Odd(ProrataError):
        code = "odd_code"

    assert error_message(Odd("Something odd.")) == "Something odd."
    assert error_message(CorporateAccount("No contact given.")) == "No contact given."
