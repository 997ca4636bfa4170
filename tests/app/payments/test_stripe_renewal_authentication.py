"""3-D Secure at renewal with the Stripe gateway selected, against the local fake Stripe: the
billing run's off-session PaymentIntent answered with the ``authentication_required`` card error
is a renewal that requires action (not a refusal), with its e-mail; Pay now makes an on-session
PaymentIntent whose ``next_action`` page the customer is sent to, and the return page (or
Stripe's webhook first) pays the invoice once; a failed authentication leaves the renewal to its
dunning schedule, whose next off-session attempt requires the authentication again."""

from __future__ import annotations

import pytest
from django.urls import reverse

from prorata.billing.models import Payment, PaymentStatus
from prorata.jobs.billing_run import bill_run
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.models import OutboxMessage
from prorata.payments.models import PaymentMethod
from prorata.payments.services import payment_method_add
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata_core.periods import utc
from tests.app.subscriptions.support import assert_books_balance, buy, customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(clock, demo_catalog, fake_stripe, client):
    """Acme's Standard monthly × 1 from 2026-01-01 paid through the fake Stripe, its card on
    file now Stripe's test card that requires authentication; the first renewal on 2026-02-01
    requires action."""
    clock.set(utc(2026, 1, 1))
    account, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(account, alice, "standard", "monthly", 1, card_token="pm_card_visa")
    PaymentMethod.objects.filter(account=account).update(removed_at=utc(2026, 1, 2),
                                                         is_default=False)
    payment_method_add(account=account, token="pm_card_authenticationRequired", actor=alice)
    clock.set(utc(2026, 2, 1))
    assert bill_run().requires_action == 1
    client.force_login(alice)
    yield account, Renewal.objects.get().invoice
    assert_books_balance()


def intents(fake, key):
    return [r for r in fake.posts("/v1/payment_intents") if r.idempotency_key == key]


def pay_now(client, account, invoice, fake):
    """Authenticate and pay: the answer is Stripe's page (``next_action``); returns the attempt
    and the return URL Stripe was given."""
    pay = f"/billing/{account.pk}/invoices/{invoice.pk}/pay/"
    assert "Authenticate and pay</button>" in client.get(pay).content.decode()
    answer = client.post(pay, {"payment_method": "default"})
    attempt = Payment.objects.filter(invoice=invoice).latest("id")
    assert answer.status_code == 302
    assert answer["Location"] == f"{fake.url}/3ds/{attempt.reference}"
    (sent,) = intents(fake, attempt.idempotency_key)
    assert "off_session" not in sent.params
    assert sent.params["return_url"].endswith(
        f"/billing/{account.pk}/invoices/{invoice.pk}/pay/authenticated/")
    assert attempt.status == PaymentStatus.REQUIRES_ACTION and attempt.completed_at is None
    return attempt, sent.params["return_url"]


def test_the_off_session_authentication_required_error_is_a_renewal_that_requires_action(
        acme, fake_stripe):
    account, invoice = acme
    payment = Payment.objects.get(invoice=invoice)
    (sent,) = intents(fake_stripe, payment.idempotency_key)
    assert sent.params["off_session"] == "true"
    assert fake_stripe.intents[payment.reference]["last_payment_error"]["code"] == (
        "authentication_required")
    assert (payment.status, payment.failure_code) == (PaymentStatus.REQUIRES_ACTION,
                                                      "authentication_required")
    renewal = Renewal.objects.get()
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.REQUIRES_ACTION,
                                                         utc(2026, 2, 2))
    assert Subscription.objects.get(account=account).status == SubscriptionStatus.PAST_DUE
    (mail,) = OutboxMessage.objects.filter(template="payment_requires_action")
    assert mail.context["url"] == f"/billing/{account.pk}/invoices/{invoice.pk}/pay/"
    # the run again the same day drives nothing (the attempt is over) and sends nothing more
    assert bill_run().requires_action == 0
    assert len(intents(fake_stripe, payment.idempotency_key)) == 1


def test_pay_now_sends_the_customer_to_stripe_s_page_and_the_return_page_pays_once(
        acme, fake_stripe, client):
    account, invoice = acme
    attempt, return_url = pay_now(client, account, invoice, fake_stripe)
    fake_stripe.authenticate(attempt.reference, approve=True)
    landed = client.get(return_url, follow=True)
    assert f"invoice {invoice.number} is paid" in landed.content.decode()
    attempt.refresh_from_db()
    invoice.refresh_from_db()
    assert attempt.status == PaymentStatus.SUCCEEDED and invoice.amount_due == 0
    assert Renewal.objects.get().status == RenewalStatus.PAID
    assert Subscription.objects.get(account=account).status == SubscriptionStatus.ACTIVE
    assert OutboxMessage.objects.filter(template="receipt", context__kind="renewal").count() == 1
    client.get(return_url)  # again: nothing more
    assert Payment.objects.filter(invoice=invoice, status=PaymentStatus.SUCCEEDED).count() == 1
    assert len(intents(fake_stripe, attempt.idempotency_key)) == 1


def test_stripe_s_webhook_getting_there_first_pays_it_and_the_return_page_finds_it_paid(
        acme, fake_stripe, client, clock):
    account, invoice = acme
    attempt, return_url = pay_now(client, account, invoice, fake_stripe)
    intent = fake_stripe.authenticate(attempt.reference, approve=True)
    body, header = fake_stripe.event("payment_intent.succeeded", intent,
                                     timestamp=int(clock.now().timestamp()))
    answer = client.post(reverse("stripe_gateway:webhook"), data=body,
                         content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert answer.json()["outcome"] == "paid"
    assert Renewal.objects.get().status == RenewalStatus.PAID
    landed = client.get(return_url, follow=True)
    assert f"invoice {invoice.number} is paid" in landed.content.decode()
    assert OutboxMessage.objects.filter(template="receipt", context__kind="renewal").count() == 1


def test_a_failed_authentication_at_stripe_leaves_the_renewal_to_its_schedule(
        acme, fake_stripe, client, clock):
    account, invoice = acme
    attempt, return_url = pay_now(client, account, invoice, fake_stripe)
    intent = fake_stripe.authenticate(attempt.reference, approve=False)
    # Stripe's payment_failed event first: settled as the return page would, once
    body, header = fake_stripe.event("payment_intent.payment_failed", intent,
                                     timestamp=int(clock.now().timestamp()))
    answer = client.post(reverse("stripe_gateway:webhook"), data=body,
                         content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert answer.json()["outcome"] == "failed"
    landed = client.get(return_url, follow=True)
    assert "Authenticate and pay</button>" in landed.content.decode()
    attempt.refresh_from_db()
    assert (attempt.status, attempt.failure_code) == (PaymentStatus.FAILED,
                                                      "authentication_failed")
    renewal = Renewal.objects.get()
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.REQUIRES_ACTION,
                                                         utc(2026, 2, 2))
    # the retry on its day: a new off-session PaymentIntent, which requires action again
    clock.set(utc(2026, 2, 2))
    assert bill_run().requires_action == 1
    retry = Payment.objects.filter(invoice=invoice).latest("id")
    (sent,) = intents(fake_stripe, retry.idempotency_key)
    assert sent.params["off_session"] == "true"
    renewal.refresh_from_db()
    assert renewal.next_attempt_at == utc(2026, 2, 4)
    assert OutboxMessage.objects.filter(template="payment_requires_action").count() == 2
