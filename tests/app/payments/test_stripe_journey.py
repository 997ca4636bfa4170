"""Prorata's services with the Stripe gateway selected, against the local fake Stripe: the checkout
(new card, saved card, decline, timeout), the reconciliation job, the billing run's off-session
renewal, refunds, and Stripe's webhook (signature, replay, settling through the one writer).
Every test ends with the books balanced."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse

from prorata.billing.models import Payment, PaymentStatus, Refund
from prorata.console.models import StaffRefund, StaffRefundStatus
from prorata.console.services import refund_request
from prorata.jobs.billing_run import bill_run
from prorata.notifications.models import OutboxMessage
from prorata.payments.models import PaymentMethod, StripeEvent
from prorata.subscriptions.errors import PaymentFailed
from prorata.subscriptions.models import Order, OrderStatus, Subscription
from prorata.subscriptions.services import payment_settle, payments_reconcile_due
from prorata_core.money import Money
from prorata_core.periods import utc
from tests.app.subscriptions.support import assert_books_balance, buy, customer, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(clock, demo_catalog, fake_stripe):
    clock.set(utc(2026, 1, 1))
    yield customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    assert_books_balance()


def intents_for(fake, payment):
    return [r for r in fake.posts("/v1/payment_intents")
            if r.idempotency_key == payment.idempotency_key]


def deliver(client, fake, kind, obj, *, clock, secret=None, event_id=None, age=0):
    body, header = fake.event(kind, obj, event_id=event_id, secret=secret,
                              timestamp=int(clock.now().timestamp()) - age)
    return client.post(reverse("stripe_gateway:webhook"), data=body,
                       content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def test_a_checkout_with_a_new_card_pays_one_payment_intent_and_keeps_the_card(acme,
                                                                              fake_stripe):
    account, alice = acme
    result = buy(account, alice, "standard", "annual", 2, card_token="pm_card_visa")

    assert result.status == OrderStatus.PAID
    payment = Payment.objects.get(order=result.order)
    sent, = intents_for(fake_stripe, payment)
    assert (sent.params["amount"], sent.params["currency"]) == (str(payment.amount), "usd")
    assert sent.params["metadata[prorata_idempotency_key]"] == payment.idempotency_key
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.reference == fake_stripe.intents[payment.reference]["id"]
    card = PaymentMethod.objects.get(account=account)
    customer_id, method = card.token.split("/")
    assert (method, card.last4, card.is_default) == ("pm_card_visa", "4242", True)
    assert fake_stripe.posts("/v1/setup_intents")[0].params["customer"] == customer_id

    # the next order charges the saved card: the same customer and PaymentMethod
    change = buy(account, alice, "pro", "annual", 2)
    assert change.status == OrderStatus.PAID
    second = fake_stripe.posts("/v1/payment_intents")[-1]
    assert (second.params["customer"], second.params["payment_method"]) == (customer_id, method)
    assert len(fake_stripe.posts("/v1/payment_intents")) == 2
    assert len(fake_stripe.posts("/v1/setup_intents")) == 1


def test_a_declined_card_fails_the_order_and_changes_nothing_else(acme, fake_stripe):
    account, alice = acme
    with pytest.raises(PaymentFailed) as refused:
        buy(account, alice, "standard", "annual", 2, card_token="pm_card_chargeDeclined")
    assert refused.value.code == "payment_declined"
    assert not Subscription.objects.filter(account=account).exists()
    assert not PaymentMethod.objects.filter(account=account).exists()
    assert Order.objects.get(account=account).status == OrderStatus.FAILED


def test_insufficient_funds_is_its_own_refusal(acme, fake_stripe):
    account, alice = acme
    with pytest.raises(PaymentFailed) as refused:
        buy(account, alice, "standard", "annual", 2,
            card_token="pm_card_chargeDeclinedInsufficientFunds")
    assert refused.value.code == "insufficient_funds"


def test_a_timed_out_charge_is_settled_by_its_key_right_after_the_call(acme, fake_stripe):
    account, alice = acme
    fake_stripe.mode = "timeout"
    result = buy(account, alice, "standard", "annual", 2, card_token="pm_card_visa")
    assert result.status == OrderStatus.PAID
    payment = Payment.objects.get(order=result.order)
    assert len(intents_for(fake_stripe, payment)) == 1  # found by lookup, never sent again
    assert payment.reference in fake_stripe.intents


def test_an_unknown_charge_waits_while_stripe_cannot_say_then_the_job_settles_it_once(
        acme, fake_stripe, clock):
    account, alice = acme
    fake_stripe.mode, fake_stripe.reads_fail = "timeout", True
    result = buy(account, alice, "standard", "annual", 2, card_token="pm_card_visa")
    assert result.status == OrderStatus.PLACED
    payment = Payment.objects.get(order=result.order)
    assert payment.status == PaymentStatus.UNKNOWN

    # Stripe still cannot be read three minutes later: that proves nothing, nothing is abandoned
    clock.advance(timedelta(minutes=3))
    assert payments_reconcile_due()["still_placed"] == 1
    fake_stripe.mode, fake_stripe.reads_fail = "", False
    counts = payments_reconcile_due()
    assert counts["paid"] == 1
    assert Order.objects.get(pk=result.order.pk).status == OrderStatus.PAID
    assert len(intents_for(fake_stripe, payment)) == 1
    assert OutboxMessage.objects.filter(template="receipt").count() == 1
    assert payments_reconcile_due()["looked_at"] == 0


def test_the_billing_run_charges_off_session_and_an_authentication_is_not_charged_blind(
        acme, fake_stripe, clock):
    account, alice = acme
    buy(account, alice, "standard", "monthly", 1, card_token="pm_card_visa")
    clock.set(utc(2026, 2, 1))
    stats = bill_run()
    assert stats.charged == 1
    renewal = Payment.objects.get(idempotency_key__startswith="renewal:")
    sent, = intents_for(fake_stripe, renewal)
    assert sent.params["off_session"] == "true" and "return_url" not in sent.params
    assert renewal.status == PaymentStatus.SUCCEEDED


def test_a_staff_refund_goes_to_the_payment_intent_with_its_own_key(acme, fake_stripe):
    account, alice = acme
    result = buy(account, alice, "standard", "annual", 2, card_token="pm_card_visa")
    payment = Payment.objects.get(order=result.order)
    done = refund_request(invoice=result.invoice, amount=Money(1000, "USD"), reason="Goodwill",
                          actor=staff("sam@prorata.example", "support_agent"),
                          idempotency_key="form-1")
    assert done.status == StaffRefundStatus.REFUNDED
    refund = Refund.objects.get()
    sent, = fake_stripe.posts("/v1/refunds")
    assert (sent.idempotency_key, sent.params["payment_intent"], sent.params["amount"]) == (
        refund.idempotency_key, payment.reference, "1000")
    assert refund.reference in fake_stripe.refunds


def test_a_refund_whose_answer_is_lost_stays_pending_until_stripe_s_event_completes_it(
        acme, fake_stripe, clock, client):
    account, alice = acme
    result = buy(account, alice, "standard", "annual", 2, card_token="pm_card_visa")
    payment = Payment.objects.get(order=result.order)
    fake_stripe.mode = "refund_timeout"
    done = refund_request(invoice=result.invoice, amount=Money(1000, "USD"), reason="Goodwill",
                          actor=staff("sam@prorata.example", "support_agent"),
                          idempotency_key="form-2")
    assert done.status == StaffRefundStatus.PENDING  # not "failed": the money may have gone
    assert Refund.objects.get().status == PaymentStatus.PENDING
    fake_stripe.mode = ""

    charge = {"id": "ch_fake", "object": "charge", "payment_intent": payment.reference,
              "refunded": False, "amount_refunded": 1000}
    answer = deliver(client, fake_stripe, "charge.refunded", charge, clock=clock)
    assert answer.json()["outcome"] == "settled:1"
    refund = Refund.objects.get()
    assert refund.status == PaymentStatus.SUCCEEDED and refund.reference in fake_stripe.refunds
    assert StaffRefund.objects.get().status == StaffRefundStatus.REFUNDED
    assert len(fake_stripe.posts("/v1/refunds")) == 1
    again = deliver(client, fake_stripe, "charge.refunded", charge, clock=clock)
    assert again.json()["outcome"] == "no_pending_refund"


# --- the webhook -------------------------------------------------------------------------------

def test_a_signed_succeeded_event_settles_an_unknown_payment_once(acme, fake_stripe, clock,
                                                                  client):
    account, alice = acme
    fake_stripe.mode, fake_stripe.reads_fail = "timeout", True
    result = buy(account, alice, "standard", "annual", 2, card_token="pm_card_visa")
    assert result.status == OrderStatus.PLACED
    fake_stripe.mode, fake_stripe.reads_fail = "", False
    payment = Payment.objects.get(order=result.order)
    intent = next(iter(fake_stripe.intents.values()))

    answer = deliver(client, fake_stripe, "payment_intent.succeeded", intent, clock=clock,
                     event_id="evt_1")
    assert answer.status_code == 200
    assert answer.json()["outcome"] == "paid"
    assert Order.objects.get(pk=result.order.pk).status == OrderStatus.PAID
    payment.refresh_from_db()
    assert (payment.status, payment.reference) == (PaymentStatus.SUCCEEDED, intent["id"])

    # the same event again (Stripe delivers at least once): answered, nothing done twice
    again = deliver(client, fake_stripe, "payment_intent.succeeded", intent, clock=clock,
                    event_id="evt_1")
    assert again.status_code == 200 and again.json()["replayed"] is True
    # another event for the same payment: the writer applies an order once
    other = deliver(client, fake_stripe, "payment_intent.succeeded", intent, clock=clock,
                    event_id="evt_2")
    assert other.json()["outcome"] == "settled_before"
    assert OutboxMessage.objects.filter(template="receipt").count() == 1
    assert len(intents_for(fake_stripe, payment)) == 1
    assert StripeEvent.objects.count() == 2
    assert payments_reconcile_due()["looked_at"] == 0


def test_an_event_is_believed_only_as_far_as_stripe_confirms_it(acme, fake_stripe, clock,
                                                                client):
    """A signed "succeeded" event about an intent that Stripe now says was declined applies
    nothing: the writer reads the intent's current state, whatever the event says."""
    account, alice = acme
    fake_stripe.mode, fake_stripe.reads_fail = "timeout", True
    result = buy(account, alice, "standard", "annual", 2, card_token="pm_card_visa")
    fake_stripe.mode, fake_stripe.reads_fail = "", False
    intent = next(iter(fake_stripe.intents.values()))
    stale = dict(intent)
    intent.update(status="requires_payment_method", last_payment_error={
        "type": "card_error", "code": "card_declined", "decline_code": "generic_decline"})

    answer = deliver(client, fake_stripe, "payment_intent.succeeded", stale, clock=clock)
    assert answer.status_code == 200 and answer.json()["outcome"] == "failed"
    order = Order.objects.get(pk=result.order.pk)
    assert (order.status, order.failure_code) == (OrderStatus.FAILED, "payment_declined")
    assert not Subscription.objects.filter(account=account).exists()


@pytest.mark.parametrize("tamper", ["secret", "body", "missing", "old"])
def test_a_delivery_that_is_not_stripe_s_is_refused_with_nothing_done(acme, fake_stripe, clock,
                                                                      client, tamper):
    account, alice = acme
    fake_stripe.mode, fake_stripe.reads_fail = "timeout", True
    result = buy(account, alice, "standard", "annual", 2, card_token="pm_card_visa")
    fake_stripe.mode, fake_stripe.reads_fail = "", False
    intent = next(iter(fake_stripe.intents.values()))
    body, header = fake_stripe.event(
        "payment_intent.succeeded", intent, event_id="evt_bad",
        secret="whsec_someone_else" if tamper == "secret" else None,
        timestamp=int(clock.now().timestamp()) - (600 if tamper == "old" else 0))
    if tamper == "body":
        body = body.replace(b'"livemode": false', b'"livemode": true')
    headers = {} if tamper == "missing" else {"HTTP_STRIPE_SIGNATURE": header}
    answer = client.post(reverse("stripe_gateway:webhook"), data=body,
                         content_type="application/json", **headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "stripe_signature_invalid"
    assert not StripeEvent.objects.exists()
    assert Order.objects.get(pk=result.order.pk).status == OrderStatus.PLACED
    assert json.loads(body)["id"] == "evt_bad"


def test_events_of_other_kinds_or_other_apps_are_acknowledged_and_ignored(acme, fake_stripe,
                                                                         clock, client):
    answer = deliver(client, fake_stripe, "customer.created", {"id": "cus_x"}, clock=clock)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "ignored")
    answer = deliver(client, fake_stripe, "payment_intent.succeeded",
                     {"id": "pi_elsewhere", "metadata": {}}, clock=clock)
    assert answer.json()["outcome"] == "not_prorata"


def test_payment_settle_never_abandons_what_stripe_cannot_confirm(acme, fake_stripe):
    account, alice = acme
    fake_stripe.mode, fake_stripe.reads_fail = "timeout", True
    result = buy(account, alice, "standard", "annual", 2, card_token="pm_card_visa")
    payment = Payment.objects.get(order=result.order)
    assert payment_settle(idempotency_key=payment.idempotency_key) == "not_known_yet"
    assert Order.objects.get(pk=result.order.pk).status == OrderStatus.PLACED
    assert payment_settle(idempotency_key="no-such-key") == "no_such_payment"


def test_the_payment_methods_page_loads_the_stripe_adapter_and_saves_a_pm_id(acme, fake_stripe,
                                                                            client):
    account, alice = acme
    client.force_login(alice)
    url = reverse("billing:payment_methods", args=[account.pk])
    page = client.get(url).content.decode()
    assert 'src="/payments/stripe/v1/card.js"' in page
    assert "js.stripe.com" in page and "pk_test_fake" in page  # the adapter's options
    assert "sandbox-gateway" not in page

    # the form sends only the PaymentMethod id Stripe.js made
    answer = client.post(url, {"card_token": "pm_card_visa"})
    assert answer.status_code in (200, 302, 303)
    card = PaymentMethod.objects.get(account=account)
    assert card.token.endswith("/pm_card_visa") and card.last4 == "4242"
