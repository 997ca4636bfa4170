"""3-D Secure at the checkout (issue 17): the sandbox card 4000 0027 6000 3184 asks the customer to
authenticate. The order waits (placed, nothing applied, nothing charged) while the customer is on
the bank's page; the return page settles it exactly once (approved: applied, the new card saved;
failed or expired: refused with the bank's message and nothing half-written); a customer who never
comes back is settled by the reconciliation job, which may also get there before the return page.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from prorata.billing.models import Document, LedgerEntry, LedgerKind, Payment, PaymentStatus
from prorata.notifications.models import OutboxMessage
from prorata.payments.models import PaymentMethod, SandboxCharge
from prorata.payments.sandbox import SandboxGateway, sandbox_token
from prorata.subscriptions.models import CartItem, Order, OrderStatus, Subscription
from prorata.subscriptions.services import payments_reconcile_due
from prorata_core.periods import utc
from tests.app.payments.test_sandbox_pages import english_on_the_challenge_page
from tests.app.subscriptions.support import assert_books_balance
from tests.app.web.billing_support import acme_world, bistro_world
from tests.app.web.conftest import page_text
from tests.app.web.test_billing_checkout import open_checkout

pytestmark = pytest.mark.usefixtures("demo_catalog")

SCA_CARD = "4000 0027 6000 3184"
PRO = {"plan": "pro", "cycle": "annual", "quantity": "2", "action": "checkout"}
LITE_3 = {"plan": "lite", "cycle": "monthly", "quantity": "3", "action": "checkout"}


@pytest.fixture
def acme(clock):
    world = acme_world(clock)
    clock.set(utc(2026, 4, 1))
    return world


def place_with_sca_card(world, client, change=PRO):
    """Place the order with a new 3-D Secure card: the answer is the bank's page."""
    _, form = open_checkout(world, client, change)
    placed = client.post(world.url + "checkout/", {
        **form, "payment_method": "new", "card_token": sandbox_token(SCA_CARD)})
    assert placed.status_code == 302
    assert placed["Location"].startswith("/sandbox-gateway/v1/challenge/")
    return placed["Location"], form


def answer_challenge(client, challenge_url, answer):
    """The customer's answer on the bank's page: it sends them back to Prorata's return page."""
    back = client.post(challenge_url, {"answer": answer})
    assert back.status_code == 303
    return back["Location"]


def applied(account) -> bool:
    return Subscription.objects.get(account=account).plan.code == "pro"


def receipts(account) -> int:
    return OutboxMessage.objects.filter(template="receipt", context__kind="change").count()


def assert_waiting(world) -> Order:
    """The order is placed and waits: nothing applied, charged, issued or saved."""
    order = Order.objects.filter(account=world.account).latest("id")
    assert order.status == OrderStatus.PLACED
    payment = Payment.objects.get(order=order)
    assert payment.status == PaymentStatus.REQUIRES_ACTION and payment.action_url
    assert not applied(world.account)
    assert not Document.objects.filter(order=order).exists()
    assert not LedgerEntry.objects.filter(payment=payment).exists()
    assert not PaymentMethod.objects.filter(account=world.account, last4="3184").exists()
    assert SandboxCharge.objects.get(idempotency_key=payment.idempotency_key).outcome == (
        "requires_action")
    return order


def test_the_checkout_shows_the_challenge_and_completes_after_it(acme, clock):
    client = acme.client()
    challenge, _ = place_with_sca_card(acme, client)
    order = assert_waiting(acme)
    page = client.get(challenge)
    assert "$2,985.86" in page_text(page)  # the bank's page names the amount

    back = answer_challenge(client, challenge, "approve")
    assert back == f"http://testserver/billing/{acme.account.pk}/orders/{order.pk}/authenticated/"
    done = client.get(back)
    assert done.status_code == 302 and done["Location"] == f"{acme.url}orders/{order.pk}/"
    confirmation = page_text(client.get(done["Location"]))
    assert "Thank you: your order is complete" in confirmation and "$2,985.86" in confirmation

    order.refresh_from_db()
    assert order.status == OrderStatus.PAID and applied(acme.account)
    payment = Payment.objects.get(order=order)
    assert payment.status == PaymentStatus.SUCCEEDED and payment.invoice == order.invoice
    card = PaymentMethod.objects.get(account=acme.account, last4="3184")
    assert card.is_default and payment.payment_method == card
    assert payment.method_label == "Visa •••• 3184 (12/2030)"
    assert receipts(acme.account) == 1
    assert not CartItem.objects.filter(account=acme.account).exists()
    assert_books_balance()


def test_loading_the_return_page_twice_applies_the_order_once(acme):
    client = acme.client()
    challenge, form = place_with_sca_card(acme, client)
    back = answer_challenge(client, challenge, "approve")
    first, second = client.get(back), client.get(back)
    assert first["Location"] == second["Location"]
    order = Order.objects.get(account=acme.account, idempotency_key=form["idempotency_key"])
    assert order.status == OrderStatus.PAID
    assert Document.objects.filter(order=order, kind="invoice").count() == 1
    assert LedgerEntry.objects.filter(account=acme.account, kind=LedgerKind.PAYMENT,
                                      payment__order=order).count() == 1
    assert PaymentMethod.objects.filter(account=acme.account, last4="3184").count() == 1
    assert receipts(acme.account) == 1
    # The checkout form posted again (back button) leads to the order, not to a second charge.
    again = client.post(acme.url + "checkout/", {**form, "payment_method": "new",
                                                 "card_token": sandbox_token(SCA_CARD)})
    assert again["Location"] == f"{acme.url}orders/{order.pk}/"
    assert SandboxCharge.objects.filter(idempotency_key__startswith="prorata:order").count() == 2
    assert_books_balance()


def test_a_failed_authentication_is_refused_and_leaves_nothing_half_written(acme):
    client = acme.client()
    version = Subscription.objects.get(account=acme.account).version
    challenge, form = place_with_sca_card(acme, client)
    back = answer_challenge(client, challenge, "fail")
    refused = client.get(back)
    assert refused["Location"] == f"{acme.url}checkout/"
    text = page_text(client.get(refused["Location"]))
    assert ("The payment was not authenticated with your bank, so nothing was charged. Try "
            "again, or use another card.") in text
    order = Order.objects.get(account=acme.account, idempotency_key=form["idempotency_key"])
    assert order.status == OrderStatus.FAILED and order.failure_code == "authentication_failed"
    payment = Payment.objects.get(order=order)
    assert payment.status == PaymentStatus.FAILED and payment.failure_code == "authentication_failed"
    assert not applied(acme.account)
    assert Subscription.objects.get(account=acme.account).version == version
    assert not Document.objects.filter(order=order).exists()
    assert not LedgerEntry.objects.filter(payment=payment).exists()
    assert not PaymentMethod.objects.filter(account=acme.account, last4="3184").exists()
    assert CartItem.objects.filter(account=acme.account).exists()  # the cart is as it was
    assert receipts(acme.account) == 0
    # A second look changes nothing; the same change is then placed with the saved card.
    assert client.get(back)["Location"] == f"{acme.url}checkout/"
    _, form = open_checkout(acme, client)
    saved = PaymentMethod.objects.get(account=acme.account, is_default=True)
    paid = client.post(acme.url + "checkout/", {**form, "payment_method": str(saved.pk)})
    assert paid.status_code == 302 and "/orders/" in paid["Location"]
    assert applied(acme.account)
    assert_books_balance()


def _french_checkout_challenge(clock):
    """Bistro's French billing contact places an order with a card its bank challenges: the
    world, the signed-in client and the challenge page's address."""
    world = bistro_world(clock)
    world.user.language = "fr"
    world.user.save()
    clock.set(utc(2026, 3, 11))
    client = world.client()
    challenge, _ = place_with_sca_card(world, client, LITE_3 | {"quantity": "7"})
    return world, client, challenge


def test_the_refusal_is_in_french_for_a_french_customer(clock):
    _world, client, challenge = _french_checkout_challenge(clock)
    refused = client.get(answer_challenge(client, challenge, "fail"))
    text = page_text(client.get(refused["Location"]))
    assert "Le paiement n'a pas été authentifié auprès de votre banque" in text, text[:3000]


def test_the_banks_page_is_in_french_for_a_french_customer(clock):
    """The challenge page a French customer reaches from the checkout: every sentence in
    French, the order's description too ("Commande 12", not "Order 12")."""
    world, client, challenge = _french_checkout_challenge(clock)
    order = Order.objects.filter(account=world.account).latest("id")
    text = page_text(client.get(challenge))
    assert english_on_the_challenge_page(text, description=f"Order {order.pk}") == [], text
    assert "Confirmez votre paiement" in text and f"Commande {order.pk}" in text, text


def test_an_abandoned_authentication_is_settled_by_the_reconciliation_job(acme, clock):
    client = acme.client()
    challenge, form = place_with_sca_card(acme, client)
    order = assert_waiting(acme)
    # While the customer may still be on the bank's page, the order waits and the account's
    # other orders are held back (the page says so).
    clock.advance(timedelta(minutes=5))
    assert payments_reconcile_due()["still_placed"] == 1
    assert_waiting(acme)
    page = page_text(client.get(f"{acme.url}orders/{order.pk}/"))
    assert "Your bank asks you to confirm this payment" in page
    assert "Authenticate the payment" in page

    # The bank's page expires after 10 minutes: the job reads the decline and fails the order.
    clock.advance(timedelta(minutes=6))
    counts = payments_reconcile_due()
    assert counts["failed"] == 1 and counts["looked_at"] == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED and order.failure_code == "authentication_failed"
    assert "not completed in time" in order.failure_message
    failed_mail = OutboxMessage.objects.get(template="payment_failed")
    assert "not completed in time" in failed_mail.context["reason"]
    assert not applied(acme.account)
    # Approving late charges nothing; the return page then says it was refused.
    answer_challenge(client, challenge, "approve")
    assert SandboxCharge.objects.get(
        idempotency_key=Payment.objects.get(order=order).idempotency_key).outcome == "declined"
    assert payments_reconcile_due()["looked_at"] == 0
    # The account is not blocked: the change is placed again with the saved card.
    _, form = open_checkout(acme, client)
    saved = PaymentMethod.objects.get(account=acme.account, is_default=True)
    client.post(acme.url + "checkout/", {**form, "payment_method": str(saved.pk)})
    assert applied(acme.account)
    assert_books_balance()


def test_a_gateway_that_never_expires_the_authentication_is_given_up_after_30_minutes(
    acme, clock, monkeypatch
):
    client = acme.client()
    place_with_sca_card(acme, client)
    order = assert_waiting(acme)
    SandboxCharge.objects.filter(idempotency_key=Payment.objects.get(order=order).idempotency_key
                                 ).update(action_expires_at=utc(2027, 1, 1))
    clock.advance(timedelta(minutes=29))
    assert payments_reconcile_due()["still_placed"] == 1
    clock.advance(timedelta(minutes=2))
    assert payments_reconcile_due()["failed"] == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.FAILED
    assert order.failure_code == "authentication_abandoned"
    assert OutboxMessage.objects.filter(template="payment_failed").count() == 1
    assert not applied(acme.account)
    assert_books_balance()


def test_the_job_settling_an_approved_payment_first_leaves_the_return_page_nothing_to_do(
    acme, clock
):
    client = acme.client()
    challenge, form = place_with_sca_card(acme, client)
    back = answer_challenge(client, challenge, "approve")
    clock.advance(timedelta(minutes=3))  # the customer's return is slow: the job comes first
    assert payments_reconcile_due()["paid"] == 1
    order = Order.objects.get(account=acme.account, idempotency_key=form["idempotency_key"])
    assert order.status == OrderStatus.PAID and applied(acme.account)
    assert PaymentMethod.objects.filter(account=acme.account, last4="3184", is_default=True
                                        ).count() == 1
    assert client.get(back)["Location"] == f"{acme.url}orders/{order.pk}/"
    assert payments_reconcile_due()["looked_at"] == 0
    assert receipts(acme.account) == 1
    assert Document.objects.filter(order=order, kind="invoice").count() == 1
    assert PaymentMethod.objects.filter(account=acme.account, last4="3184").count() == 1
    assert_books_balance()


def test_the_return_page_coming_first_leaves_the_job_nothing_to_do(acme, clock, monkeypatch):
    client = acme.client()
    challenge, form = place_with_sca_card(acme, client)
    back = answer_challenge(client, challenge, "approve")
    # The job read the payment to settle before the return page applied it, and asks the
    # gateway after: it finds the order settled and writes nothing.
    from prorata.subscriptions import services

    stale = services.payments_to_reconcile(before=clock.now() + timedelta(hours=1))
    assert client.get(back)["Location"].endswith(f"/orders/{stale[0].order_id}/")
    monkeypatch.setattr(services, "payments_to_reconcile", lambda before: stale)
    clock.advance(timedelta(minutes=3))
    counts = payments_reconcile_due()
    assert counts["paid"] == 1  # its answer is the order's: paid, by the return page
    assert receipts(acme.account) == 1
    order = Order.objects.get(account=acme.account, idempotency_key=form["idempotency_key"])
    assert Document.objects.filter(order=order, kind="invoice").count() == 1
    assert LedgerEntry.objects.filter(account=acme.account, kind=LedgerKind.PAYMENT,
                                      payment__order=order).count() == 1
    assert_books_balance()


def test_another_accounts_return_page_is_404(acme, clock):
    from tests.app.subscriptions.support import customer
    from tests.app.web.billing_support import World

    client = acme.client()
    challenge, form = place_with_sca_card(acme, client)
    back = answer_challenge(client, challenge, "approve")
    other = World(*customer("Other", "US", "other@other.example", currency="USD"))
    stranger = other.client()
    assert stranger.get(back).status_code == 404
    assert stranger.get(back.replace(f"/{acme.account.pk}/", f"/{other.account.pk}/")
                        ).status_code == 404
    assert not applied(acme.account)
    order = Order.objects.get(idempotency_key=form["idempotency_key"])
    assert order.status == OrderStatus.PLACED
    assert SandboxGateway().lookup(
        idempotency_key=f"prorata:order:{order.pk}:1").outcome == "succeeded"
