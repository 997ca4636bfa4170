"""Crash points (issue 18, RELIABILITY-PLAN T07 and T10): the billing run, its charge step, a
web checkout and the e-mail relay, each killed with SIGKILL at every named point it passes
(:mod:`prorata.common.faults`, ``PRORATA_CRASH_AT``) in a process of its own, then everything run
again until idle: the billing run, the reconciliation job (which settles payments left pending or
unknown by asking the sandbox gateway by idempotency key), the customer's own retry with the same
key, the relay (after the claimed e-mails' lease).

After each: the invariants (``check_all()``, by the directory's fixture) and every due
subscription renewed exactly once, each charged once (the sandbox gateway's own record, one row
per idempotency key, every one matched by a succeeded payment), invoice numbers gapless, every
e-mail sent, and a second copy only after a kill between handing an e-mail to the mail server and
marking it sent, with the same ``Message-ID``.

The children share the test's database (``shared_database``: the PostgreSQL test database, or on
SQLite a file copy of the in-memory one). Each child must die by SIGKILL at its point (return
code -9): a point the code no longer passes fails the test rather than passing it untested.
"""

from __future__ import annotations

import email
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from benchmarks.billing_run import _load
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from prorata.billing.models import Document, DocumentKind, Payment, PaymentStatus
from prorata.billing.renewals import renewal_pay_now
from prorata.common import faults
from prorata.jobs.billing_run import bill_run
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.jobs.periodic import deliver_mail, reconcile_payments
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.notifications.outbox import message_id
from prorata.payments.models import PaymentMethod, SandboxCharge
from prorata.payments.services import payment_method_add
from prorata.subscriptions.errors import CheckoutInProgress
from prorata.subscriptions.models import Order, OrderStatus, Subscription
from prorata.subscriptions.selectors import CheckoutItem, order_quote
from prorata.subscriptions.services import checkout_place
from prorata_core.periods import utc
from tests.app.jobs.support import assert_each_period_once
from tests.app.subscriptions.support import DECLINED_CARD, buy, card, customer, save_card
from tests.reliability.crash_child import ITEM
from tests.reliability.invariants import assert_invariants
from tests.reliability.processes import ROOT, child_environment, run_child

CUSTOMERS = 5
BOUGHT_AT = utc(2026, 1, 1)
RUN_AT = utc(2026, 2, 2)  # every subscription bought at BOUGHT_AT is due
KILLED = -signal.SIGKILL


def test_every_point_is_placed_and_the_setting_is_checked(db):
    """The code passes exactly the points :data:`faults.POINTS` documents, and a value of
    ``PRORATA_CRASH_AT`` that names no point is refused rather than silently never hit."""
    placed = set()
    for path in (ROOT / "src" / "prorata").rglob("*.py"):
        placed |= set(re.findall(r'faults\.point\("([a-z_]+)"\)', path.read_text()))
    assert placed == faults.POINTS
    assert faults.crash_target("") == ("", 0)
    assert faults.crash_target("after_invoice:3") == ("after_invoice", 3)
    for wrong in ("after_invoce", "after_invoice:0", "after_invoice:x"):
        with pytest.raises(ImproperlyConfigured):
            faults.crash_target(wrong)


def _customers(count: int = CUSTOMERS, *, deliver: bool = True) -> None:
    """``count`` customers, each with a monthly subscription bought by card at BOUGHT_AT."""
    for index in range(count):
        account, user = customer(f"Customer{index} Ltd", "US", f"c{index}@example.com",
                                 currency="USD")
        buy(account, user, "lite", "monthly", 5, card_token=card())
    if deliver:
        deliver_mail()


def _crash(command: list[str], env: dict[str, str], point: str) -> None:
    done = run_child(command, env | {"PRORATA_CRASH_AT": point})
    assert done.returncode == KILLED, (
        f"{command} with PRORATA_CRASH_AT={point} did not die there "
        f"(exit {done.returncode}):\n{done.stdout}\n{done.stderr}")


def _until_idle(clock) -> None:
    """Everything that runs by itself, run again until nothing is left to do: the billing run
    (renewals and charges), the reconciliation of checkout payments (past its wait), the relay
    (past the lease of e-mails claimed by a killed relay)."""
    for _ in range(3):
        bill_run()
        clock.advance(timedelta(minutes=3))
        reconcile_payments()
        deliver_mail()


def _assert_renewed_once_and_charged_once(due: int) -> None:
    assert Renewal.objects.count() == due
    assert not Subscription.objects.filter(period_end__lte=RUN_AT).exists()
    renewals = Payment.objects.filter(order__isnull=True)
    assert set(renewals.values_list("status", flat=True)) == {PaymentStatus.SUCCEEDED}
    assert renewals.count() == due  # one attempt each: nothing charged with a second key
    charged = SandboxCharge.objects.filter(outcome="succeeded")
    assert charged.count() == Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count()
    sequences = sorted(Document.objects.filter(kind=DocumentKind.INVOICE, number__isnull=False)
                       .values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))
    _assert_every_email_sent()
    # One receipt per invoice (purchases and renewals): none lost, none queued twice.
    receipts = OutboxMessage.objects.filter(template="receipt").count()
    assert receipts == Document.objects.filter(kind=DocumentKind.INVOICE).count()


def _assert_every_email_sent() -> None:
    assert set(OutboxMessage.objects.values_list("status", flat=True)) <= {OutboxStatus.SENT}
    assert_invariants()


BILL_RUN_POINTS = ["after_lock:2", "after_payment_row:2", "after_number:2", "after_invoice:2",
                   "after_gateway_call:2", "after_outbox_row:2", "after_payment_commit:2"]


@pytest.mark.parametrize("point", BILL_RUN_POINTS)
def test_the_billing_run_killed_at_each_point_then_run_again(
        point, shared_database, demo_catalog, clock, tmp_path):
    """``prorata bill-run`` in chunks of 2 over 5 due subscriptions, killed at the second hit of
    the point (a chunk committed before, or a payment charged and recorded before)."""
    clock.set(BOUGHT_AT)
    _customers()
    clock.set(RUN_AT)
    env = child_environment(shared_database, tmp_path)
    _crash(["prorata.cli", "bill-run", "--chunk-size", "2", "--workers", "1", "--quiet"], env,
           point)
    _until_idle(clock)
    _assert_renewed_once_and_charged_once(CUSTOMERS)


@pytest.mark.parametrize("point", ["after_gateway_call:2", "after_outbox_row:2",
                                   "after_payment_commit:2"])
def test_the_charge_step_killed_at_each_point_then_run_again(
        point, shared_database, demo_catalog, clock, tmp_path):
    """The renewals invoiced first; then the charge step alone (the periodic dunning job) killed
    at its second charge: the second card is charged at the gateway, its payment not recorded
    (``after_gateway_call``, ``after_outbox_row``: the receipt's transaction rolled back)."""
    clock.set(BOUGHT_AT)
    _customers()
    clock.set(RUN_AT)
    assert bill_run(charge=False).renewed == CUSTOMERS
    env = child_environment(shared_database, tmp_path)
    _crash(["tests.reliability.crash_child", "charge"], env, point)
    if point != "after_payment_commit:2":
        # The second card was charged at the gateway and the database does not know it yet.
        assert SandboxCharge.objects.filter(outcome="succeeded").count() == (
            Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count() + 1)
    _until_idle(clock)
    _assert_renewed_once_and_charged_once(CUSTOMERS)


CHECKOUT_POINTS = ["after_lock", "after_payment_row", "after_gateway_call", "after_number",
                   "after_invoice", "after_outbox_row", "after_payment_commit"]


@pytest.mark.parametrize("point", CHECKOUT_POINTS)
def test_a_checkout_killed_at_each_point_then_retried(
        point, shared_database, demo_catalog, clock, tmp_path):
    """A customer's checkout (the checkout page's service) killed at the point; the customer
    sends the same request again (same idempotency key) before and after the reconciliation
    job: one order paid, one subscription, one charge, one receipt."""
    clock.set(BOUGHT_AT)
    account, user = customer("Buyer Ltd", "US", "buyer@example.com", currency="USD")
    save_card(account, user)
    product, plan, cycle, quantity = ITEM
    seen = order_quote(account=account, user=user, product_code=product, plan_code=plan,
                       cycle_code=cycle, quantity=quantity).fingerprint
    env = child_environment(shared_database, tmp_path)
    _crash(["tests.reliability.crash_child", "checkout", str(account.pk), str(user.pk),
            "checkout-1", seen], env, point)

    def retry() -> None:  # the browser sends the same form again
        try:
            checkout_place(account=account, user=user, idempotency_key="checkout-1",
                           expected=[seen], items=[CheckoutItem(*ITEM)])
        except CheckoutInProgress:
            pass  # the first request's payment is still being settled: the page says so

    retry()
    _until_idle(clock)
    retry()
    orders = Order.objects.filter(account=account)
    assert [order.status for order in orders] == [OrderStatus.PAID]
    assert Subscription.objects.filter(account=account).count() == 1
    assert SandboxCharge.objects.filter(outcome="succeeded").count() == 1
    assert Payment.objects.get(order=orders[0]).status == PaymentStatus.SUCCEEDED
    assert OutboxMessage.objects.filter(template="receipt").count() == 1
    _assert_every_email_sent()


@pytest.mark.parametrize(("road", "point"), [
    ("pay-now", "after_payment_row"), ("pay-now", "after_gateway_call"),
    ("pay-now", "after_payment_commit"), ("retry", "after_payment_row"),
    ("retry", "after_gateway_call")])
def test_a_past_due_renewal_paid_now_or_retried_killed_at_each_point(
        road, point, shared_database, demo_catalog, clock, tmp_path):
    """A renewal refused (the card on file declines); the customer adds a good card. Then Pay now
    (``pay-now``), or the dunning retry a day later (``retry``: the charge step), killed at the
    point: the attempt's row rolled back, or the card charged with nothing recorded. Everything
    runs again, and the customer presses Pay now if the invoice is still owed: paid once, one
    receipt."""
    clock.set(BOUGHT_AT)
    account, user = customer("Late Ltd", "US", "late@example.com", currency="USD")
    buy(account, user, "lite", "monthly", 5, card_token=card())
    PaymentMethod.objects.filter(account=account).update(is_default=False, removed_at=BOUGHT_AT)
    payment_method_add(account=account, token=card(DECLINED_CARD), actor=user)
    clock.set(RUN_AT)
    assert bill_run().declined == 1
    payment_method_add(account=account, token=card(), actor=user)
    renewal = Renewal.objects.get(account=account)
    env = child_environment(shared_database, tmp_path)
    if road == "pay-now":
        _crash(["tests.reliability.crash_child", "pay-now", str(account.pk), str(user.pk),
                str(renewal.invoice_id)], env, point)
    else:
        clock.set(renewal.next_attempt_at)
        _crash(["tests.reliability.crash_child", "charge"], env, point)
    _until_idle(clock)
    renewal.refresh_from_db()
    if renewal.status != RenewalStatus.PAID:
        assert renewal_pay_now(account=account, user=user,
                               invoice_id=renewal.invoice_id).status == "paid"
        deliver_mail()
    assert Renewal.objects.get(pk=renewal.pk).status == RenewalStatus.PAID
    attempts = Payment.objects.filter(invoice_id=renewal.invoice_id)
    assert sorted(attempts.values_list("status", flat=True)) == [
        PaymentStatus.FAILED, PaymentStatus.SUCCEEDED]
    keys = list(attempts.values_list("idempotency_key", flat=True))
    assert SandboxCharge.objects.filter(idempotency_key__in=keys,
                                        outcome="succeeded").count() == 1
    assert OutboxMessage.objects.filter(template="receipt").count() == 2  # purchase, renewal
    _assert_every_email_sent()


def _delivered(directory: Path) -> list[str]:
    """The Message-IDs of every e-mail delivered: by the children (``.eml`` files) and by this
    process (Django's test outbox)."""
    ids = [str(email.message_from_bytes(path.read_bytes(), policy=policy.default)["Message-ID"])
           for path in sorted(directory.glob("*.eml"))]
    return ids + [str(message.message()["Message-ID"]) for message in mail.outbox]


@pytest.mark.parametrize(("point", "duplicates"), [
    ("relay_after_claim", 0), ("relay_after_send:2", 1), ("relay_after_mark_sent:2", 0)])
def test_the_relay_killed_at_each_point_then_run_again(
        point, duplicates, shared_database, demo_catalog, clock, tmp_path):
    """``prorata deliver-mail`` in batches of 2 killed at the point, then the relay again once the
    killed one's lease is over: every e-mail delivered, and twice only the one killed between its
    sending and its marking, under the same Message-ID (the receiver drops the copy)."""
    clock.set(BOUGHT_AT)
    _customers(deliver=False)
    queued = list(OutboxMessage.objects.values_list("dedupe_key", flat=True))
    assert len(queued) >= CUSTOMERS
    env = child_environment(shared_database, tmp_path)
    _crash(["prorata.cli", "deliver-mail", "--batch-size", "2"], env, point)
    mail.outbox.clear()
    clock.advance(timedelta(minutes=2))
    deliver_mail()
    _assert_every_email_sent()
    delivered = _delivered(tmp_path / "mail")
    assert sorted(set(delivered)) == sorted(message_id(key) for key in queued)
    assert len(delivered) - len(set(delivered)) == duplicates


# --- a worker process of the billing run killed (moved from tests/app/jobs/test_exactly_once.py) ---

def _workers_of(pid: int) -> list[int]:
    """The run's spawned worker processes (not multiprocessing's resource tracker)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"multiprocessing.spawn" in cmdline:
            found.append(int(child))
    return found


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="worker processes renew side by side on PostgreSQL only")
def test_a_worker_killed_mid_run_loses_only_its_chunk_and_the_run_goes_on_to_charge(
        shared_database):
    """Issue 18: killing one billing-run worker process must not abort the whole run (a process
    pool ended every worker with BrokenProcessPool and skipped the charge step): the other worker
    finishes, the dead one's chunk is renewed again, and the run charges."""
    _load(600, connection.vendor, credit_share=0)
    env = {**os.environ, "DATABASE_URL": shared_database, "PRORATA_CLOCK": "movable",
           "DJANGO_SETTINGS_MODULE": "prorata.settings.base"}
    command = [sys.executable, "-m", "prorata.cli", "bill-run", "--chunk-size", "3",
               "--workers", "2"]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,  # noqa: S603
                               stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    while (process.poll() is None and Renewal.objects.count() == 0
           and time.monotonic() < deadline):
        time.sleep(0.02)
    workers = _workers_of(process.pid)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert '"workers_lost": 1' in output, output
    assert_each_period_once(600)
    # The charge step ran: no renewal payment is left waiting for a charge.
    assert Renewal.objects.count() == 600
    assert not Payment.objects.filter(status="pending").exists()
    assert Payment.objects.filter(status="succeeded").count() > 500
