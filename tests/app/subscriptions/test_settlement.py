"""Checkouts whose payment outcome is not known at once (issue 12, item 8): the gateway is asked
right after the call, the reconciliation job settles what is left within minutes, a definite
gateway error is a failure, a crash between the checkout's transactions is settled the same way,
and a paid order whose subscription moved meanwhile is refunded, never applied blind.
Every test ends with the books balanced (conftest)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from prorata.billing.models import (
    Document,
    DocumentKind,
    LedgerKind,
    Payment,
    PaymentStatus,
    Refund,
)
from prorata.billing.selectors import credit_balance
from prorata.jobs.billing_run import bill_run
from prorata.notifications.models import OutboxMessage
from prorata.payments.errors import IdempotencyKeyReused
from prorata.payments.models import SandboxCharge, SandboxRefund
from prorata.payments.sandbox import SandboxGateway
from prorata.subscriptions import services
from prorata.subscriptions.errors import PaymentFailed
from prorata.subscriptions.models import Order, OrderStatus, Subscription
from prorata.subscriptions.selectors import CheckoutItem, order_quote
from prorata.subscriptions.services import checkout_place, payments_reconcile_due
from prorata_core.periods import utc
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import (
    TIMEOUT_CARD,
    buy,
    card,
    eur,
    key,
    save_card,
    usd,
)

pytestmark = pytest.mark.django_db

PRO_2 = CheckoutItem("webinar", "pro", "annual", 2)


def quote_of(account, user, item):
    return order_quote(account=account, user=user, product_code=item.product_code,
                       plan_code=item.plan_code, cycle_code=item.cycle_code,
                       quantity=item.quantity)


def place(account, user, item, **options):
    quote = quote_of(account, user, item)
    return checkout_place(account=account, user=user, idempotency_key=options.pop("k", key()),
                          items=[item], expected=[quote.fingerprint], **options)


@pytest.fixture
def acme_standard(acme, clock):
    """Acme on Standard annual × 2 since 2026-01-01 (saved good card); clock 2026-04-01."""
    account, alice = acme
    save_card(account, alice)
    buy(account, alice, "standard", "annual", 2)
    clock.set(utc(2026, 4, 1))
    return account, alice


@pytest.fixture
def gateway_behind(monkeypatch):
    """The sandbox, except that its lookup knows nothing until ``caught_up`` is set."""
    state = {"caught_up": False}
    lookup = SandboxGateway.lookup

    def behind(self, *, idempotency_key):
        return lookup(self, idempotency_key=idempotency_key) if state["caught_up"] else None

    monkeypatch.setattr(SandboxGateway, "lookup", behind)
    return state


def test_the_timed_out_charge_is_settled_right_after_the_call(acme_standard):
    account, alice = acme_standard
    result = place(account, alice, PRO_2, card_token=card(TIMEOUT_CARD))
    assert result.status == OrderStatus.PAID and result.amount_charged == usd("2985.86")
    assert SandboxCharge.objects.filter(idempotency_key__startswith="prorata:order").count() == 2
    assert Subscription.objects.get(account=account).plan.code == "pro"
    assert OutboxMessage.objects.filter(template="receipt", context__kind="change").count() == 1
    assert place(account, alice, CheckoutItem("webinar", "pro", "annual", 3)).status == "paid"


def test_the_job_settles_an_unknown_payment_within_minutes_and_the_account_orders_again(
    acme_standard, clock, gateway_behind
):
    account, alice = acme_standard
    result = place(account, alice, PRO_2, card_token=card(TIMEOUT_CARD))
    assert result.status == OrderStatus.PLACED
    assert Payment.objects.get(order=result.order).status == PaymentStatus.UNKNOWN

    clock.advance(timedelta(minutes=1))
    assert payments_reconcile_due()["still_placed"] == 1  # the gateway does not know yet
    gateway_behind["caught_up"] = True
    clock.advance(timedelta(minutes=1))
    counts = payments_reconcile_due(at=clock.now())
    assert counts == {"looked_at": 1, "paid": 1, "failed": 0, "refunded": 0, "still_placed": 0,
                      "renewals_paid": 0, "renewals_failed": 0, "renewals_waiting": 0}
    order = Order.objects.get(pk=result.order.pk)
    assert order.status == OrderStatus.PAID and order.invoice.amount_paid == 298586
    assert OutboxMessage.objects.filter(template="receipt", context__kind="change").count() == 1
    assert payments_reconcile_due()["looked_at"] == 0
    assert place(account, alice, CheckoutItem("webinar", "pro", "annual", 3)).status == "paid"


def test_a_payment_the_gateway_never_saw_is_abandoned_after_the_grace_and_the_customer_told(
    acme_standard, clock, gateway_behind
):
    account, alice = acme_standard
    version = Subscription.objects.get(account=account).version
    result = place(account, alice, PRO_2, card_token=card(TIMEOUT_CARD))
    SandboxCharge.objects.all().delete()  # the gateway never received it
    clock.advance(timedelta(minutes=1))
    assert payments_reconcile_due()["still_placed"] == 1  # too early to say it never arrived
    clock.advance(timedelta(minutes=2))
    assert payments_reconcile_due()["failed"] == 1
    order = Order.objects.get(pk=result.order.pk)
    assert (order.status, order.failure_code) == (OrderStatus.FAILED, "not_received")
    assert Subscription.objects.get(account=account).version == version
    mail = OutboxMessage.objects.get(template="payment_failed")
    assert mail.context["reason"].startswith("Your payment did not reach the bank")
    assert place(account, alice, PRO_2).status == OrderStatus.PAID


def test_a_crash_between_the_checkouts_transactions_is_settled_by_the_job(
    acme_standard, clock, monkeypatch
):
    account, alice = acme_standard

    class Crash(BaseException):
        """The process dies after the gateway charged, before the second transaction."""

    def crash(**kwargs):
        raise Crash

    monkeypatch.setattr(services, "_settle", crash)
    with pytest.raises(Crash):
        place(account, alice, PRO_2)
    monkeypatch.undo()
    payment = Payment.objects.get(order__isnull=False, status=PaymentStatus.PENDING,
                                  account=account, amount=298586)
    clock.advance(timedelta(minutes=1))
    assert payments_reconcile_due()["looked_at"] == 0  # still within a checkout's time
    clock.advance(timedelta(minutes=2))
    assert payments_reconcile_due()["paid"] == 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.invoice is not None
    assert Subscription.objects.get(account=account).plan.code == "pro"
    assert SandboxCharge.objects.filter(idempotency_key=payment.idempotency_key).count() == 1


def test_a_definite_gateway_error_fails_the_order_instead_of_leaving_it_unknown(
    acme_standard, monkeypatch
):
    account, alice = acme_standard

    def refuse(self, **kwargs):
        raise IdempotencyKeyReused("The idempotency key was already used.", idempotency_key="x")

    monkeypatch.setattr(SandboxGateway, "charge", refuse)
    with pytest.raises(PaymentFailed) as failed:
        place(account, alice, PRO_2)
    assert failed.value.code == "payment_refused"
    order = Order.objects.get(pk=failed.value.params["order"])
    assert order.status == OrderStatus.FAILED
    assert Payment.objects.get(order=order).status == PaymentStatus.FAILED
    monkeypatch.undo()
    assert place(account, alice, PRO_2).status == OrderStatus.PAID  # not 409 order_in_progress


def test_a_paid_order_is_refunded_not_applied_when_a_renewal_moved_the_subscription(
    bistro, clock, gateway_behind
):
    """The issue's case: Lite monthly × 5 (330,00 € with VAT); a change to 6 licenses is paid
    with the timing-out card the day before the renewal; the billing run renews the month; the
    payment is confirmed afterwards. The month is billed once and the change's money goes back."""
    account, jeanne = bistro
    save_card(account, jeanne)
    clock.set(utc(2026, 3, 1))
    buy(account, jeanne, "lite", "monthly", 5)
    clock.set(utc(2026, 3, 31, 12))
    result = place(account, jeanne, CheckoutItem("webinar", "lite", "monthly", 6),
                   card_token=card(TIMEOUT_CARD))
    assert result.status == OrderStatus.PLACED
    clock.set(utc(2026, 4, 1))
    bill_run()
    renewed = Subscription.objects.get(account=account)
    assert (renewed.period_start, renewed.period_end) == (utc(2026, 4, 1), utc(2026, 5, 1))

    gateway_behind["caught_up"] = True
    clock.advance(timedelta(minutes=5))
    assert payments_reconcile_due()["refunded"] == 1

    order = Order.objects.get(pk=result.order.pk)
    assert (order.status, order.failure_code) == (OrderStatus.FAILED, "order_outdated")
    subscription = Subscription.objects.get(account=account)
    assert (subscription.period_start, subscription.period_end, subscription.quantity) == (
        utc(2026, 4, 1), utc(2026, 5, 1), 5)
    invoices = Document.objects.filter(account=account, kind=DocumentKind.INVOICE)
    assert sorted(doc.total for doc in invoices) == [33000, 33000]  # March and April, once each
    payment = Payment.objects.get(order=order)
    assert payment.status == PaymentStatus.SUCCEEDED
    refund = Refund.objects.get(payment=payment)
    assert (refund.status, refund.amount) == (PaymentStatus.SUCCEEDED, payment.amount)
    assert SandboxRefund.objects.get().amount == payment.amount
    assert sorted(payment.ledger_entries.values_list("kind", "amount")) == [
        (LedgerKind.PAYMENT, payment.amount), (LedgerKind.REFUND, -payment.amount)]
    assert credit_balance(account, "EUR") == eur("0")
    mail = OutboxMessage.objects.get(template="order_not_applied")
    assert mail.context["refunded"] is True
    assert mail.context["amount"] == {"amount": payment.amount, "currency": "EUR"}


def test_the_database_refuses_a_period_that_moves_back(acme_standard):
    """The last line of defence: even a writer that skips the re-check cannot put a subscription
    back on an earlier period (SQLite and PostgreSQL triggers)."""
    from django.db import IntegrityError, InternalError, transaction

    account, _alice = acme_standard
    subscription = Subscription.objects.get(account=account)
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(
            period_start=subscription.period_start - timedelta(days=1))
    # moving forward (a change, a renewal) is allowed
    Subscription.objects.filter(pk=subscription.pk).update(
        period_start=subscription.period_start + timedelta(days=1))


def test_support_sees_every_order_not_settled_in_the_console_and_settles_it(
    acme_standard, support, clock, gateway_behind
):
    from django.test import Client

    account, alice = acme_standard
    waiting = place(account, alice, PRO_2, card_token=card(TIMEOUT_CARD)).order
    client = console_login(Client(), support)
    page = client.get("/console/subscriptions/order/?settlement=unsettled")
    assert page.status_code == 200
    text = page.content.decode()
    assert f"prorata:order:{waiting.pk}:1" in text and "unknown" in text
    assert text.count('class="action-checkbox"') == 1  # only the order not settled

    gateway_behind["caught_up"] = True
    response = client.post("/console/subscriptions/order/?settlement=unsettled", {
        "action": "reconcile_now", "_selected_action": [waiting.pk]})
    assert response.status_code == 302
    assert Order.objects.get(pk=waiting.pk).status == OrderStatus.PAID
