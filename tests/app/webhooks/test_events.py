"""Webhook events are written in the business transaction, by every road that reports a fact:
nothing for a rolled-back change, nothing without a listening endpoint, once per fact."""

from __future__ import annotations

import pytest
from django.db import transaction

from prorata.accounts.services import account_create
from prorata.common.clock import parse_duration
from prorata.webhooks.events import WebhookBatch, webhook_emit
from prorata.webhooks.models import WebhookDelivery, WebhookEvent
from prorata.webhooks.services import webhook_endpoint_update
from tests.app.subscriptions.support import buy, card, customer
from tests.app.webhooks.support import endpoint, operator

pytestmark = pytest.mark.django_db


def types() -> list[str]:
    return list(WebhookEvent.objects.order_by("id").values_list("type", flat=True))


def test_a_purchase_writes_its_events_and_one_delivery_per_listening_endpoint(clock, demo_catalog):
    everything, _ = endpoint("https://a.example/hooks")
    invoices, _ = endpoint("https://b.example/hooks", ["invoice.paid"])
    account, user = customer("Acme", "FR", "billing@acme.example", currency="EUR")
    result = buy(account, user, "pro", "monthly", 3, card_token=card())
    assert types() == ["customer.created", "subscription.created", "invoice.created",
                       "invoice.paid"]
    paid = WebhookEvent.objects.get(type="invoice.paid")
    assert paid.event_id.startswith("evt_") and len(paid.event_id) == 36
    assert paid.api_version == "2026-12-01" and paid.created_at == clock.now()
    invoice = result.invoice
    assert paid.data["id"] == invoice.pk and paid.data["number"] == invoice.number
    assert paid.data["total"] == invoice.total and paid.data["amount_due"] == 0
    assert paid.data["status"] == "paid" and paid.data["lines"][0]["quantity"] == 3
    assert set(paid.deliveries.values_list("endpoint_id", flat=True)) == {everything.pk,
                                                                          invoices.pk}
    assert WebhookDelivery.objects.filter(endpoint=invoices).count() == 1
    assert WebhookDelivery.objects.filter(endpoint=everything).count() == 4
    created = WebhookEvent.objects.get(type="subscription.created").data
    assert created["plan"] == "pro" and created["quantity"] == 3 and created["status"] == "active"
    assert created["cause"] == "purchased"


def test_a_rolled_back_change_emits_nothing(clock):
    endpoint("https://a.example/hooks")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        account_create(name="Rolled back", country="FR")
        assert types() == ["customer.created"]  # written with the account…
        raise Boom
    assert types() == [] and WebhookDelivery.objects.count() == 0  # …and gone with it


def test_without_a_listening_endpoint_nothing_is_written(clock):
    account_create(name="Nobody listens", country="FR")
    invoices_only, _ = endpoint("https://a.example/hooks", ["invoice.paid"])
    account_create(name="Still nobody", country="FR")
    assert types() == []
    webhook_endpoint_update(actor=operator(), endpoint_id=invoices_only.pk,
                            url=invoices_only.url, event_types=["customer.created"],
                            is_active=False)
    account_create(name="Inactive endpoint", country="FR")
    assert types() == []


def test_a_fact_written_twice_is_one_event(clock):
    endpoint("https://a.example/hooks")
    assert webhook_emit("customer.created", key="customer.created:1", data={"id": 1}) == 1
    assert webhook_emit("customer.created", key="customer.created:1", data={"id": 2}) == 0
    assert WebhookEvent.objects.get().data == {"id": 1}
    assert WebhookDelivery.objects.count() == 1


def test_an_unknown_event_type_is_a_programming_error(clock):
    with pytest.raises(ValueError, match="not a webhook event type"):
        WebhookBatch().add("invoice.exploded", key="x", data={}, at=clock.now())


def test_cancel_and_resume_renewal_change_and_expiry(clock, demo_catalog):
    from prorata.jobs.billing_run import bill_run
    from prorata.subscriptions.services import (
        subscription_cancel_renewal,
        subscription_resume_renewal,
    )

    account, user = customer("Acme", "FR", "billing@acme.example", currency="EUR")
    buy(account, user, "pro", "monthly", 1, card_token=card())
    endpoint("https://a.example/hooks")
    subscription_cancel_renewal(account=account, user=user, product_code="webinar")
    subscription_resume_renewal(account=account, user=user, product_code="webinar")
    subscription_cancel_renewal(account=account, user=user, product_code="webinar")
    buy(account, user, "pro", "monthly", 2)  # a change (the card on file pays)
    clock.advance(parse_duration("2months"))
    bill_run(workers=1)
    assert types() == ["subscription.renewal_cancelled", "subscription.updated",
                       "subscription.renewal_cancelled", "credit_note.created",
                       "invoice.created", "invoice.paid", "subscription.updated",
                       "subscription.expired"]
    events = list(WebhookEvent.objects.filter(type__startswith="subscription.").order_by("id"))
    assert [event.data["cause"] for event in events] == [
        "renewal_cancelled", "renewal_resumed", "renewal_cancelled", "changed", "expired"]
    assert [event.data["auto_renew"] for event in events[:3]] == [False, True, False]
    assert events[3].data["quantity"] == 2 and events[4].data["status"] == "expired"


def test_a_declined_renewal_charge_is_invoice_payment_failed_with_the_attempt(clock, demo_catalog):
    from prorata.jobs.billing_run import bill_run
    from tests.app.subscriptions.support import DECLINED_CARD, save_card

    account, user = customer("Acme", "FR", "billing@acme.example", currency="EUR")
    buy(account, user, "pro", "monthly", 1, card_token=card())
    save_card(account, user, DECLINED_CARD)  # the new default card
    endpoint("https://a.example/hooks", ["invoice.created", "invoice.payment_failed"])
    clock.advance(parse_duration("1month"))
    bill_run(workers=1)
    assert types() == ["invoice.created", "invoice.payment_failed"]
    failed = WebhookEvent.objects.get(type="invoice.payment_failed").data
    created = WebhookEvent.objects.get(type="invoice.created").data
    assert failed["id"] == created["id"] and failed["amount_due"] == created["total"] > 0
    assert failed["payment"]["status"] == "failed" and failed["payment"]["attempt"] == 1
    assert failed["payment"]["failure_code"] and failed["payment"]["amount"] == created["total"]
