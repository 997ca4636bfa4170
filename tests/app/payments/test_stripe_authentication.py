"""3-D Secure at the web checkout with the Stripe gateway selected, against the local fake Stripe:
the redirect to Stripe's page (``next_action.redirect_to_url``), the return page, Stripe's webhook
getting there first, and an authentication never completed (the PaymentIntent cancelled before
Prorata fails the order, so it cannot be confirmed afterwards)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from prorata.billing.models import Payment, PaymentStatus
from prorata.payments.models import PaymentMethod
from prorata.payments.stripe_gateway import AUTHENTICATION_MINUTES, StripeGateway
from prorata.subscriptions.models import Order, OrderStatus, Subscription
from prorata.subscriptions.services import payments_reconcile_due
from prorata_core.periods import utc
from tests.app.subscriptions.support import assert_books_balance
from tests.app.web.billing_support import acme_world
from tests.app.web.test_billing_checkout import open_checkout

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_catalog")]

PRO = {"plan": "pro", "cycle": "annual", "quantity": "2", "action": "checkout"}


@pytest.fixture
def acme(clock, fake_stripe):
    world = acme_world(clock)  # its first card and order went through the fake Stripe too
    clock.set(utc(2026, 4, 1))
    yield world
    assert_books_balance()


def place(world, client, fake):
    _, form = open_checkout(world, client, PRO)
    placed = client.post(world.url + "checkout/", {
        **form, "payment_method": "new", "card_token": "pm_card_authenticationRequired"})
    assert placed.status_code == 302
    order = Order.objects.filter(account=world.account).latest("id")
    payment = Payment.objects.get(order=order)
    return placed["Location"], order, payment


def applied(account) -> bool:
    return Subscription.objects.get(account=account).plan.code == "pro"


def test_the_checkout_redirects_to_stripe_s_page_and_the_return_page_completes_it(acme,
                                                                                  fake_stripe):
    client = acme.client()
    location, order, payment = place(acme, client, fake_stripe)

    assert location == f"{fake_stripe.url}/3ds/{payment.reference}"
    sent = fake_stripe.posts("/v1/payment_intents")[-1]
    return_url = sent.params["return_url"]
    assert return_url.endswith(f"/billing/{acme.account.pk}/orders/{order.pk}/authenticated/")
    assert payment.status == PaymentStatus.REQUIRES_ACTION and not applied(acme.account)

    fake_stripe.authenticate(payment.reference, approve=True)
    done = client.get(return_url)
    assert done.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and applied(acme.account)
    card = PaymentMethod.objects.get(account=acme.account, is_default=True)
    assert card.token.endswith("/pm_card_authenticationRequired")
    assert len([r for r in fake_stripe.posts("/v1/payment_intents")
                if r.idempotency_key == payment.idempotency_key]) == 1


def test_stripe_s_webhook_getting_there_first_completes_it_and_the_return_page_finds_it_done(
        acme, fake_stripe, clock):
    client = acme.client()
    _location, order, payment = place(acme, client, fake_stripe)
    intent = fake_stripe.authenticate(payment.reference, approve=True)
    body, header = fake_stripe.event("payment_intent.succeeded", intent,
                                     timestamp=int(clock.now().timestamp()))
    answer = client.post(reverse("stripe_gateway:webhook"), data=body,
                         content_type="application/json", HTTP_STRIPE_SIGNATURE=header)
    assert answer.json()["outcome"] == "paid"
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and applied(acme.account)
    # the webhook's settlement kept the new card as the checkout's return page would
    assert PaymentMethod.objects.get(account=acme.account, is_default=True).token.endswith(
        "/pm_card_authenticationRequired")
    return_url = fake_stripe.posts("/v1/payment_intents")[-1].params["return_url"]
    assert client.get(return_url).status_code == 302
    assert PaymentMethod.objects.filter(account=acme.account).count() == 2


def test_a_failed_authentication_fails_the_order_with_nothing_applied(acme, fake_stripe):
    client = acme.client()
    _location, order, payment = place(acme, client, fake_stripe)
    fake_stripe.authenticate(payment.reference, approve=False)
    return_url = fake_stripe.posts("/v1/payment_intents")[-1].params["return_url"]
    client.get(return_url)
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED and not applied(acme.account)


def test_an_abandoned_authentication_is_cancelled_at_stripe_before_the_order_fails(
        acme, fake_stripe, clock):
    client = acme.client()
    _location, order, payment = place(acme, client, fake_stripe)
    clock.advance(timedelta(minutes=AUTHENTICATION_MINUTES - 1))
    assert payments_reconcile_due()["still_placed"] == 1
    assert fake_stripe.intents[payment.reference]["status"] == "requires_action"

    clock.advance(timedelta(minutes=2))
    assert payments_reconcile_due()["failed"] == 1
    cancel, = [r for r in fake_stripe.requests if r.path.endswith("/cancel")]
    assert cancel.path == f"/v1/payment_intents/{payment.reference}/cancel"
    assert cancel.params == {"cancellation_reason": "abandoned"}
    assert fake_stripe.intents[payment.reference]["status"] == "canceled"
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED and not applied(acme.account)
    assert payments_reconcile_due()["looked_at"] == 0


def test_an_authentication_completed_just_before_the_cancel_is_kept(acme, fake_stripe, clock,
                                                                     monkeypatch):
    client = acme.client()
    _location, order, payment = place(acme, client, fake_stripe)
    clock.advance(timedelta(minutes=AUTHENTICATION_MINUTES + 1))
    # approved at Stripe, but the retrieve Prorata makes still saw requires_action: the cancel
    # is refused (the intent succeeded) and the new state is the answer
    retrieve = StripeGateway._intent_of

    def stale_then_approved(self, attempt):
        intent = retrieve(self, attempt)
        fake_stripe.authenticate(payment.reference, approve=True)
        return intent

    monkeypatch.setattr(StripeGateway, "_intent_of", stale_then_approved)
    assert payments_reconcile_due()["paid"] == 1
    assert fake_stripe.intents[payment.reference]["status"] == "succeeded"
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and applied(acme.account)
