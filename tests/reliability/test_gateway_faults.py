"""Gateway faults (issue 18, RELIABILITY-PLAN T08): each fault mode of the sandbox gateway
(:mod:`prorata.payments.sandbox_faults`: decline, insufficient funds, authentication required,
timeout before the charge, timeout after it, HTTP 500, slow) met by the first charge of each road
that charges a card: a checkout, a renewal's charge in the billing run, Pay now. Then everything
that runs by itself runs (the reconciliation job past its waits, the billing run's charge step,
the relay) and:

- the outcome is settled by idempotency key, never by a second charge: at most one charge per
  order and per renewal invoice, every charge at the gateway matched by its succeeded payment
  (``check_all()``'s I1, after every test);
- nothing is left blocking the account: no order waiting, no renewal stuck ``charging``; the
  customer can buy again, or pay the renewal with Pay now;
- the e-mails are the right ones, in order, each sent.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from prorata.billing.errors import AuthenticationInProgress, NothingToPay
from prorata.billing.models import Payment, PaymentStatus
from prorata.billing.renewals import renewal_pay_now
from prorata.jobs.billing_run import bill_run
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.jobs.periodic import deliver_mail, reconcile_payments
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.payments.models import SandboxCharge
from prorata.payments.sandbox_faults import Fault, FaultPlan, faults_inject
from prorata.subscriptions.errors import PaymentFailed
from prorata.subscriptions.models import Order, OrderStatus, Subscription
from prorata.subscriptions.services import AUTHENTICATION_TIMEOUT
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, customer, save_card

BOUGHT_AT = utc(2026, 1, 1)
RENEWS_AT = utc(2026, 2, 2)
GATEWAY = "prorata.payments.sandbox_faults.FaultySandboxGateway"


@pytest.fixture
def inject(settings):
    """Inject one fault into the next first charge (then none): ``inject(Fault.X)``."""
    settings.PRORATA_PAYMENT_GATEWAY = GATEWAY

    def inject(fault: Fault | None, **options: object) -> FaultPlan:
        return faults_inject(FaultPlan(script=[fault], **options))  # type: ignore[return-value]

    yield inject
    faults_inject(None)


def _settle(clock, *, wait: timedelta = timedelta(minutes=3)) -> None:
    """What runs by itself: past the reconciliation's wait, the job, the charge step, the relay."""
    clock.advance(wait)
    reconcile_payments()
    bill_run()
    deliver_mail()


def _mails(account, since: int) -> list[str]:
    """The templates of the e-mails queued for ``account``'s contact after outbox id ``since``,
    in order; each must have been sent."""
    rows = list(OutboxMessage.objects.filter(pk__gt=since, to__startswith="buyer@")
                .order_by("id").values_list("template", "status"))
    assert {status for _template, status in rows} <= {OutboxStatus.SENT}
    return [template for template, _status in rows]


def _last_mail() -> int:
    return OutboxMessage.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _not_blocking(account) -> None:
    assert not Order.objects.filter(account=account, status=OrderStatus.PLACED).exists()
    assert not Renewal.objects.filter(account=account, status=RenewalStatus.CHARGING).exists()
    assert not Payment.objects.filter(account=account, status__in=[
        PaymentStatus.PENDING, PaymentStatus.UNKNOWN]).exists()


def _charges(account) -> int:
    tokens = Payment.objects.filter(account=account).values_list("payment_method__token",
                                                                 flat=True)
    return SandboxCharge.objects.filter(token__in=list(tokens), outcome="succeeded").count()


# --- at checkout ---------------------------------------------------------------------------------

#: fault → (what the customer is answered, the e-mails after settling; then they buy again).
CHECKOUT = {
    Fault.DECLINE: ("payment_declined", []),
    Fault.INSUFFICIENT_FUNDS: ("insufficient_funds", []),
    Fault.AUTHENTICATION_REQUIRED: ("requires_action", ["payment_failed"]),  # abandoned
    Fault.TIMEOUT_BEFORE: ("placed", ["payment_failed"]),  # not received: order again
    Fault.HTTP_500: ("placed", ["payment_failed"]),
    Fault.TIMEOUT_AFTER: ("paid", ["receipt"]),  # asked at once by the same key: charged
    Fault.SLOW: ("paid", ["receipt"]),
}


@pytest.mark.parametrize("fault", list(CHECKOUT))
def test_a_fault_at_checkout(fault, inject, demo_catalog, clock):
    clock.set(BOUGHT_AT)
    account, user = customer("Buyer Ltd", "US", "buyer@example.com", currency="USD")
    save_card(account, user)
    since = _last_mail()
    answered, mails = CHECKOUT[fault]
    plan = inject(fault)
    try:
        status = str(buy(account, user, "lite", "monthly", 3, idempotency_key="k1").status)
    except PaymentFailed as refused:
        status = refused.code
    assert status == answered
    assert plan.injected and plan.injected[0][1] == fault
    _settle(clock, wait=AUTHENTICATION_TIMEOUT + timedelta(minutes=1))
    assert _mails(account, since) == mails
    _not_blocking(account)
    paid = Order.objects.filter(account=account, status=OrderStatus.PAID).count()
    assert _charges(account) == paid
    if not paid:  # refused, abandoned or never received: nothing charged, the customer buys again
        since = _last_mail()
        assert buy(account, user, "lite", "monthly", 3, idempotency_key="k2").status == "paid"
        deliver_mail()
        assert _mails(account, since) == ["receipt"]
    assert _charges(account) == 1
    assert Subscription.objects.filter(account=account).count() == 1


# --- at renewal (the billing run's charge step) --------------------------------------------------

#: fault → (the renewal after the run, the e-mails after settling; then Pay now if still owed).
RENEWAL = {
    Fault.DECLINE: (RenewalStatus.RETRYING, ["payment_failed"]),
    Fault.INSUFFICIENT_FUNDS: (RenewalStatus.RETRYING, ["payment_failed"]),
    Fault.AUTHENTICATION_REQUIRED: (RenewalStatus.REQUIRES_ACTION, ["payment_requires_action"]),
    Fault.TIMEOUT_BEFORE: (RenewalStatus.CHARGING, ["receipt"]),  # the next run charges it
    Fault.HTTP_500: (RenewalStatus.CHARGING, ["receipt"]),
    Fault.TIMEOUT_AFTER: (RenewalStatus.CHARGING, ["receipt"]),  # the next run finds it charged
    Fault.SLOW: (RenewalStatus.PAID, ["receipt"]),
}


def _renewal_due(clock):
    """A customer (two others beside it) whose monthly subscription is due at RENEWS_AT: its
    renewal is the run's first charge (payments in id order)."""
    clock.set(BOUGHT_AT)
    others = [customer(f"Other{i} Ltd", "US", f"other{i}@example.com", currency="USD")
              for i in range(2)]
    account, user = customer("Buyer Ltd", "US", "buyer@example.com", currency="USD")
    for who, contact in [(account, user), *others]:  # its renewal is charged first
        save_card(who, contact)
        buy(who, contact, "lite", "monthly", 3)
    deliver_mail()
    clock.set(RENEWS_AT)
    return account, user


@pytest.mark.parametrize("fault", list(RENEWAL))
def test_a_fault_at_renewal(fault, inject, demo_catalog, clock):
    account, user = _renewal_due(clock)
    since = _last_mail()
    status, mails = RENEWAL[fault]
    plan = inject(fault)
    stats = bill_run()
    assert plan.injected == [(Payment.objects.get(account=account, order__isnull=True)
                              .idempotency_key, fault)]
    assert stats.renewed == 3
    # The other customers are charged whatever happened to this one's charge.
    assert stats.charged == 2 + (status == RenewalStatus.PAID)
    assert Renewal.objects.get(account=account).status == status
    _settle(clock)
    renewal = Renewal.objects.get(account=account)
    if renewal.status != RenewalStatus.PAID:  # refused: not stuck, the customer pays now
        assert renewal_pay_now(account=account, user=user,
                               invoice_id=renewal.invoice_id).status == "paid"
        deliver_mail()
        mails = [*mails, "receipt"]
    assert _mails(account, since) == mails
    _not_blocking(account)
    assert Renewal.objects.get(account=account).status == RenewalStatus.PAID
    assert _charges(account) == 2  # the purchase and the renewal, once each


# --- at Pay now ----------------------------------------------------------------------------------

#: fault → (Pay now's answer, the e-mails after settling; then Pay now again if still owed).
PAY_NOW = {
    Fault.DECLINE: ("payment_declined", []),
    Fault.INSUFFICIENT_FUNDS: ("insufficient_funds", []),
    # abandoned: the customer is e-mailed (payment_failed), the renewal back on its schedule
    Fault.AUTHENTICATION_REQUIRED: ("requires_action", ["payment_failed"]),
    Fault.TIMEOUT_BEFORE: ("pending", ["receipt"]),  # the charge step charges it, same key
    Fault.HTTP_500: ("pending", ["receipt"]),
    Fault.TIMEOUT_AFTER: ("pending", ["receipt"]),
    Fault.SLOW: ("paid", ["receipt"]),
}


@pytest.mark.parametrize("fault", list(PAY_NOW))
def test_a_fault_at_pay_now(fault, inject, demo_catalog, clock):
    account, user = _renewal_due(clock)
    plan = inject(Fault.DECLINE)  # the renewal's charge refused: Pay now is offered
    bill_run()
    renewal = Renewal.objects.get(account=account)
    assert renewal.status == RenewalStatus.RETRYING
    deliver_mail()
    since = _last_mail()
    answered, mails = PAY_NOW[fault]
    plan.script = [fault]
    try:
        status = renewal_pay_now(account=account, user=user, invoice_id=renewal.invoice_id).status
    except PaymentFailed as refused:
        status = refused.code
    assert status == answered
    assert plan.injected[-1][1] == fault
    _settle(clock, wait=AUTHENTICATION_TIMEOUT + timedelta(minutes=1))
    renewal.refresh_from_db()
    if renewal.status != RenewalStatus.PAID:
        assert renewal_pay_now(account=account, user=user,
                               invoice_id=renewal.invoice_id).status == "paid"
        deliver_mail()
        mails = [*mails, "receipt"]
    assert _mails(account, since) == mails
    _not_blocking(account)
    assert _charges(account) == 2


def test_pay_now_when_the_gateway_answers_500_is_a_page_not_a_server_error(
        inject, demo_catalog, clock, client):
    """The Pay now page's POST when the gateway answers HTTP 500 (it was a 500 page, the attempt
    left ``charging``): My account with "we could not confirm the payment yet"; the charge step
    then charges it once, with the same key."""
    from django.urls import reverse

    account, user = _renewal_due(clock)
    inject(Fault.DECLINE)
    bill_run()
    renewal = Renewal.objects.get(account=account)
    inject(Fault.HTTP_500)
    client.force_login(user)
    response = client.post(reverse("billing:pay", args=[account.pk, renewal.invoice_id]))
    assert response.status_code == 302
    assert response["Location"] == reverse("billing:account", args=[account.pk])
    _settle(clock)
    assert Renewal.objects.get(account=account).status == RenewalStatus.PAID
    _not_blocking(account)
    assert _charges(account) == 2


# --- the reconciliation job when the gateway cannot answer ---------------------------------------

@pytest.mark.parametrize(("fault", "then"), [(Fault.TIMEOUT_BEFORE, OrderStatus.FAILED),
                                             (Fault.TIMEOUT_AFTER, OrderStatus.PAID)])
def test_an_unknown_checkout_waits_while_the_gateway_cannot_say_then_settles(
        fault, then, inject, demo_catalog, clock):
    """The charge's answer lost and every lookup failing too (the gateway down): the order is
    never taken for "not received" on a failed lookup (it may have been charged), whatever its
    age; once the gateway answers, the job settles it by the key: charged → paid, never seen →
    failed (the customer is told, and buys again)."""
    clock.set(BOUGHT_AT)
    account, user = customer("Buyer Ltd", "US", "buyer@example.com", currency="USD")
    save_card(account, user)
    plan = inject(fault, lookup_fails=True)
    assert buy(account, user, "lite", "monthly", 3, idempotency_key="k1").status == "placed"
    for _ in range(3):
        _settle(clock, wait=timedelta(hours=1))
        assert Order.objects.get(account=account).status == OrderStatus.PLACED
    plan.lookup_fails = False
    _settle(clock)
    assert Order.objects.get(account=account).status == then
    _not_blocking(account)
    assert _charges(account) == (then == OrderStatus.PAID)


# --- a seeded mix --------------------------------------------------------------------------------

SEED = 18
MIX = {fault: 0.08 for fault in Fault}  # 56 % of first charges meet a fault


def test_a_seeded_mix_of_faults_on_every_road(inject, demo_catalog, clock):
    """12 customers buy, are renewed and pay now, every first charge drawn from :data:`MIX` with
    seed :data:`SEED`; each one refused or lost buys again / pays now until paid. At the end:
    every account paid for its one subscription and its renewal, each charged exactly twice."""
    clock.set(BOUGHT_AT)
    people = [customer(f"Mix{i} Ltd", "US", f"mix{i}@example.com", currency="USD")
              for i in range(12)]
    for account, user in people:
        save_card(account, user)
    plan = faults_inject(FaultPlan(rates=MIX, seed=SEED))
    for attempt in range(10):  # each round: whoever has not paid buys (again), then all settles
        unpaid = [(number, account, user) for number, (account, user) in enumerate(people)
                  if not Order.objects.filter(account=account, status=OrderStatus.PAID).exists()]
        if not unpaid:
            break
        for number, account, user in unpaid:
            try:
                buy(account, user, "lite", "monthly", 3, idempotency_key=f"mix-{number}-{attempt}")
            except PaymentFailed:
                pass
        _settle(clock, wait=AUTHENTICATION_TIMEOUT + timedelta(minutes=1))
    clock.set(RENEWS_AT)
    bill_run()
    for _ in range(10):
        _settle(clock, wait=AUTHENTICATION_TIMEOUT + timedelta(minutes=1))
        owed = Renewal.objects.exclude(status=RenewalStatus.PAID)
        if not owed.exists():
            break
        for renewal in owed:
            user = next(u for a, u in people if a.pk == renewal.account_id)
            try:
                renewal_pay_now(account=renewal.account, user=user, invoice_id=renewal.invoice_id)
            except (PaymentFailed, NothingToPay, AuthenticationInProgress):
                pass  # refused, or an attempt still being settled: the page says so
    for account, _user in people:
        _not_blocking(account)
        assert Subscription.objects.filter(account=account).count() == 1
        assert Renewal.objects.get(account=account).status == RenewalStatus.PAID
        assert _charges(account) == 2
    assert len({fault for _key, fault in plan.injected}) == len(Fault)
    print(f"PRORATA_SEED={SEED}: {plan.drawn} first charges, {len(plan.injected)} faults",
          {fault.value: sum(1 for _k, f in plan.injected if f is fault) for fault in Fault})
