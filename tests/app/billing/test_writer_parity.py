"""One builder, two persisters (issue 12, item 1): a renewal written by the billing run's set-based
road and the same renewal written through the services' ORM road are the same rows, field by field
(ids, numbers and the reader's address aside), on SQLite and on PostgreSQL. Both twins have billing
details (legal name, address, VAT number, billing e-mail, issue 16): each road prints them in the
buyer block as the checkout's invoice does, and sends the receipt to the billing e-mail too."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from prorata.accounts.billing_details import account_billing_details_update
from prorata.billing.models import Document, DocumentKind, LedgerEntry, Payment
from prorata.billing.renewals import renewal_record
from prorata.billing.selectors import credit_balance
from prorata.common.clock import now
from prorata.jobs.billing_run import bill_run
from prorata.jobs.models import Renewal
from prorata.notifications.models import OutboxMessage
from prorata.subscriptions.models import Subscription
from prorata.webhooks.models import WebhookEvent
from prorata.webhooks.services import webhook_endpoint_create
from prorata_core.periods import utc
from tests.app.subscriptions.support import assert_books_balance, buy, card, customer, staff

pytestmark = pytest.mark.django_db

_IDS = {"id", "account", "account_id", "document", "document_id", "invoice", "invoice_id",
        "subscription", "subscription_id", "payment", "payment_id", "payment_method",
        "payment_method_id", "refund", "refund_id", "order", "order_id", "refers_to",
        "refers_to_id", "sequence", "number"}


def _fields(row: Any, *, drop: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields
            if field.attname not in _IDS and field.name not in _IDS
            and field.attname not in drop}


def _facts(subscription_id: int) -> dict[str, Any]:
    """What renewing ``subscription_id`` wrote, with what names one account or another (ids, the
    invoice's number, the reader's address and user id) replaced by placeholders."""
    renewal = Renewal.objects.get(subscription_id=subscription_id)
    invoice = renewal.invoice
    subscription = Subscription.objects.get(pk=subscription_id)
    user_ids = {message.dedupe_key.rsplit(":", 1)[-1] for message in
                OutboxMessage.objects.filter(context__document_number=invoice.number)}

    def named(text: str) -> str:
        return text.replace(invoice.number, "<number>").replace(
            f":{invoice.pk}:", ":<invoice>:").replace(f":{subscription_id}:", ":<subscription>:")

    def reader(key: str) -> str:  # a dedupe key ends with its reader's user id (or "billing")
        event, _, user_id = key.rpartition(":")
        assert user_id in user_ids
        return f"{named(event + ':')}{'billing' if user_id == 'billing' else '<user>'}"

    payments = []
    for payment in Payment.objects.filter(invoice=invoice).order_by("id"):
        fields = _fields(payment, drop={"reference"})
        fields["idempotency_key"] = named(fields["idempotency_key"])
        fields["has_reference"] = bool(payment.reference)
        fields["card"] = payment.payment_method_id is not None
        payments.append(fields)
    ledger = []
    for entry in LedgerEntry.objects.filter(document=invoice).order_by("id"):
        fields = _fields(entry)
        fields["memo"] = named(fields["memo"])
        fields["names_payment"] = entry.payment_id is not None
        ledger.append(fields)
    outbox = []
    for message in OutboxMessage.objects.filter(
            context__document_number=invoice.number).order_by("id"):
        fields = _fields(message, drop={"to"})
        # a member's own address differs between the twins; the billing e-mail is the same
        fields["to"] = message.to if message.dedupe_key.endswith(":billing") else "<member>"
        fields["dedupe_key"] = reader(fields["dedupe_key"])
        fields["context"] = {**message.context, "document_number": "<number>"}
        if "url" in fields["context"]:  # the document's page in its account's billing center
            fields["context"]["url"] = fields["context"]["url"].replace(
                f"/billing/{invoice.account_id}/", "/billing/<account>/").replace(
                f"/documents/{invoice.pk}.", "/documents/<invoice>.")
        fields["attachments"] = [{**item, "id": "<invoice>"} if item["id"] == invoice.pk else item
                                 for item in message.attachments]
        outbox.append(fields)
    webhooks = []
    for event in WebhookEvent.objects.filter(
            type__in=["invoice.created", "invoice.paid"], data__object="invoice",
            data__id=invoice.pk).order_by("id"):
        data = {**event.data, "id": "<invoice>", "number": named(event.data["number"]),
                "account_id": "<account>",
                "lines": [{**line, "subscription_id": line["subscription_id"] == subscription_id}
                          for line in event.data["lines"]]}
        webhooks.append((event.type, named(event.dedupe_key + ":"), event.api_version,
                         event.created_at, data, event.deliveries.count()))
    snapshot = {**invoice.snapshot}
    assert snapshot.pop("number") == invoice.number
    return {
        "invoice": _fields(invoice, drop={"snapshot"}),
        "snapshot": snapshot,
        "lines": [_fields(line) for line in invoice.lines.order_by("position")],
        "line_subscriptions": [line.subscription_id == subscription_id
                               for line in invoice.lines.all()],
        "ledger": ledger,
        "payments": payments,
        "renewal": _fields(renewal),
        "outbox": outbox,
        "subscription": _fields(subscription, drop={"created_at"}),
        "subscription_invoice": subscription.invoice_id == invoice.pk,
        "webhooks": webhooks,
    }


def _twins(case: str) -> tuple[int, int]:
    """Two accounts with equal data, each with a subscription due on 2026-02-01 (or, ``credit``,
    one that its account's credit pays in full; ``corporate``, one invoiced on terms)."""
    ids = []
    advisor = staff("advisor@prorata.example", "corporate_advisor") if case == "corporate" else None
    for twin in ("a", "b"):
        account, user = customer("Twin Bistro", "FR", f"{twin}@twin.example", currency="EUR",
                                 corporate_advisor=advisor)
        account_billing_details_update(
            account=account, actor=user, name="Twin Bistro SAS",
            billing_address="3 place du Marché\n69002 Lyon", country="FR",
            vat_number="FR40303265045", billing_email="Compta@Twin.example",
            time_zone="Europe/Paris")
        if case == "corporate":
            buy(account, advisor, "pro", "monthly", 2, by_staff=True)
        else:
            buy(account, user, "lite", "monthly", 5, card_token=card())
        if case == "credit":
            buy(account, user, "lite", "monthly", 1)  # the same instant: 4 licenses back as credit
        ids.append(Subscription.objects.get(account=account).pk)
    return ids[0], ids[1]


@pytest.mark.parametrize("case", ["card", "credit", "corporate"])
def test_the_billing_run_and_the_services_write_a_renewal_the_same(clock, demo_catalog, case):
    clock.set(utc(2026, 1, 1))
    by_run, by_services = _twins(case)
    if case == "credit":
        assert credit_balance(Subscription.objects.get(pk=by_run).account).amount > 6600
    webhook_endpoint_create(actor=staff("operator@prorata.example", "operator"),
                            url="https://hooks.example.com/", event_types=["invoice.created",
                                                                           "invoice.paid"])
    clock.set(utc(2026, 2, 1))
    # Given the same period due on both, when one is renewed through the services' road...
    with transaction.atomic():
        assert renewal_record(subscription_id=by_services, at=now()) is not None
    # ...and the other by the billing run's set-based road (which also charges both cards)
    stats = bill_run()
    assert (stats.renewed, stats.fallbacks) == (1, 0)
    # then both wrote the same rows
    run, services = _facts(by_run), _facts(by_services)
    for name in run:
        assert run[name] == services[name], name
    # and there was something to compare
    expected_payments = {"card": 1, "credit": 0, "corporate": 0}[case]
    assert len(run["payments"]) == expected_payments and len(run["lines"]) == 1
    assert len(run["ledger"]) == 1 + expected_payments
    # the receipt to the billing contact and to the billing e-mail of the billing details
    assert [(message["to"], message["dedupe_key"].rsplit(":", 1)[1]) for message in
            run["outbox"]] == ([] if case == "corporate" else [
                ("<member>", "<user>"), ("compta@twin.example", "billing")])
    # the buyer block: the billing details, exactly as on the checkout's invoice
    buyer = {"name": "Twin Bistro SAS", "address": "3 place du Marché\n69002 Lyon",
             "country": "FR", "vat_number": "FR40303265045", "email": "compta@twin.example"}
    assert run["snapshot"]["buyer"] == buyer
    for subscription_id in (by_run, by_services):
        account = Subscription.objects.get(pk=subscription_id).account
        purchase = Document.objects.filter(account=account, kind=DocumentKind.INVOICE).earliest(
            "id")
        assert purchase.issued_at < now() and purchase.snapshot["buyer"] == buyer
    # the receipt lists the renewed item with its period, the same on both roads
    for message in run["outbox"]:
        assert message["context"]["items"] == [{
            "product": "Webinar", "plan": "Lite", "licenses": 1 if case == "credit" else 5,
            "cycle": "monthly", "previous": None, "period_start": "2026-02-01T00:00:00Z",
            "period_end": "2026-03-01T00:00:00Z", "next_billing_date": "2026-03-01T00:00:00Z"}]
    # the invoice's webhook events too: created, and paid (by card or credit) unless on terms
    assert [event[0] for event in run["webhooks"]] == (
        ["invoice.created"] if case == "corporate" else ["invoice.created", "invoice.paid"])
    assert Document.objects.filter(kind=DocumentKind.INVOICE, issued_at=now()).count() == 2
    assert_books_balance()


def test_renewal_record_renews_only_a_due_active_auto_renewing_subscription(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    account, user = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(account, user, "lite", "monthly", 1, card_token=card())
    subscription = Subscription.objects.get(account=account)
    with transaction.atomic():
        assert renewal_record(subscription_id=subscription.pk, at=utc(2026, 1, 31)) is None
        assert renewal_record(subscription_id=10**9, at=utc(2026, 2, 1)) is None
        assert renewal_record(subscription_id=subscription.pk, at=utc(2026, 2, 1)) is not None
        # the next period is not due yet: nothing twice
        assert renewal_record(subscription_id=subscription.pk, at=utc(2026, 2, 1)) is None
    assert Renewal.objects.count() == 1
    assert_books_balance()
