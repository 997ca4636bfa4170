"""Concurrency (issue 18, RELIABILITY-PLAN T05, T06, T20): many writers on one subscription, on
one billing period, on one account's money, at the same instant. Each test states what must hold
whoever wins: every committed change complete (documents, ledger, e-mail), losers told with a
typed 4xx and nothing written, nothing done twice, no 500; then the suite's invariants.

PostgreSQL for the tests that need a second connection at the same time (the SQLite test
database lives in memory, one connection); the billing run beside fifty checkouts runs on both,
SQLite in a process of its own on a database file (:mod:`tests.app.jobs.sqlite_load`).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection, connections

from prorata.api.services import api_token_create
from prorata.billing.models import Document, LedgerEntry, Payment, PaymentStatus
from prorata.billing.selectors import account_balance
from prorata.notifications.models import OutboxMessage
from prorata.payments.models import SandboxCharge
from prorata.subscriptions.models import Order, OrderStatus, Subscription, SubscriptionEvent
from prorata.subscriptions.services import (
    subscription_cancel_renewal,
    subscription_resume_renewal,
)
from prorata_core.periods import utc
from tests.app.console.test_refunds import staff_groups  # noqa: F401  (a fixture)
from tests.app.jobs.support import test_database_url
from tests.app.subscriptions.support import buy, customer, save_card
from tests.reliability.concurrent_clients import plan_changer

ROOT = Path(__file__).resolve().parents[2]

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs several connections writing at once: the SQLite test database is one "
           "in-memory connection (the SQLite case runs on a file: the checkouts test)")


# --- T05: 20 concurrent plan changes on one subscription, from 4 processes ------------------------

PROCESSES, ROUNDS = 4, 5


def _history(account) -> dict[str, object]:
    """What a customer's account holds, without ids, numbers or names: comparable between the
    account changed concurrently and its serial replay."""
    subscription = Subscription.objects.select_related("plan", "cycle").get(account=account)
    documents = [
        (d.kind, d.status, d.subtotal, d.tax, d.total, d.amount_paid, d.credit_applied,
         d.amount_due, [(line.kind, line.amount, line.tax, line.period_start, line.period_end)
                        for line in d.lines.order_by("id")])
        for d in Document.objects.filter(account=account).order_by("id")]
    return {
        "subscription": (subscription.plan.code, subscription.cycle.code, subscription.quantity,
                         subscription.auto_renew, subscription.status, subscription.period_start,
                         subscription.period_end, subscription.unit_amount,
                         subscription.invoiced_amount),
        "documents": documents,
        "ledger": list(LedgerEntry.objects.filter(account=account).order_by("id")
                       .values_list("kind", "amount")),
        "balance": account_balance(account).amount,
        "payments": list(Payment.objects.filter(account=account).order_by("id")
                         .values_list("status", "amount")),
        "events": list(SubscriptionEvent.objects.filter(subscription=subscription)
                       .order_by("id").values_list("kind", "at")),
    }


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_plan_changes_equal_their_serial_replay(clock, demo_catalog):
    """4 processes × 5 rounds: in each round every process quotes a change of the one
    subscription (upgrade, a license more or less, monthly → annual, renewal off or on), then all
    place theirs at once. Must hold: each answer is 201/200 or a 409 ``quote_changed`` (never a
    500, never a deadlock); each placed change has its paid order, its invoice or credit and its
    e-mail; and the account ends exactly as the committed changes replayed one by one, in commit
    order, at the same instants, on a twin account (documents, lines, ledger, balance, periods,
    to the cent)."""
    clock.set(utc(2026, 1, 1))
    accounts = {}
    for name, email in (("Acme Corp", "alice@acme.example"), ("Twin Corp", "bob@twin.example")):
        account, user = customer(name, "US", email, currency="USD")
        save_card(account, user)
        buy(account, user, "lite", "monthly", 3)
        accounts[name] = (account, user)
    (acme, alice), (twin, bob) = accounts["Acme Corp"], accounts["Twin Corp"]
    mails_before = OutboxMessage.objects.filter(to=alice.email).count()
    token = api_token_create(user=alice, name="concurrency")[1]
    connections.close_all()

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES, timeout=120)
    results = context.Queue()
    processes = [context.Process(target=plan_changer, args=(
        index, test_database_url(), acme.pk, token, ROUNDS, 18, barrier, results))
        for index in range(PROCESSES)]
    for process in processes:
        process.start()
    answers = []
    while len(answers) < PROCESSES * ROUNDS:
        try:
            answer = results.get(timeout=180)
        except queue.Empty:
            break
        answers.append(answer)
        if "crash" in answer:
            break
    for process in processes:
        process.join(timeout=60)
    assert not [a["crash"] for a in answers if "crash" in a]
    assert len(answers) == PROCESSES * ROUNDS

    statuses = Counter(a["status"] for a in answers)
    print("answers", dict(statuses))
    assert set(statuses) <= {200, 201, 409, 422}, [(a["change"], a["body"]) for a in answers
                                                  if a["status"] not in (200, 201, 409, 422)]
    lost = [a for a in answers if a["status"] in (409, 422)]
    assert {(a["status"], a["body"]["code"]) for a in lost} <= {
        (409, "quote_changed"), (409, "downgrade_needs_support"),
        (422, "nothing_to_change")}, lost
    placed = {a["body"]["order_id"]: a["change"]["item"] for a in answers if a["status"] == 201}
    # "Nothing to change" only when the round's winner placed that very change.
    for a in lost:
        if a["status"] == 422:
            assert any(w["status"] == 201 and w["round"] == a["round"]
                       and w["change"] == a["change"] for w in answers), a
    # Every round raced: at most one checkout per round wins (the others quoted a subscription
    # that has moved on), and some lost.
    assert lost and placed
    assert max(Counter(a["round"] for a in answers if a["status"] == 201).values()) == 1

    # Each placed change: paid, with its documents and its confirmation e-mail.
    for order_id in placed:
        order = Order.objects.get(pk=order_id)
        assert order.status == OrderStatus.PAID
        assert Document.objects.filter(order=order, number__isnull=False).exists()
    subscription = Subscription.objects.get(account=acme)
    events = list(SubscriptionEvent.objects.filter(subscription=subscription, before__isnull=False)
                  .order_by("id"))
    changes = [e for e in events if e.order_id is not None]
    assert {e.order_id for e in changes} == set(placed)
    assert len(events) >= len(placed)
    mails = OutboxMessage.objects.filter(to=alice.email).count() - mails_before
    assert mails == len(events), (mails, len(events))

    # The serial replay, in commit order (the account lock orders the events' ids), at the
    # instants the changes were made.
    for event in events:
        clock.set(event.at)
        if event.order_id is not None:
            item = placed[event.order_id]
            buy(twin, bob, item["plan_code"], item["cycle_code"], item["quantity"])
        elif event.kind == SubscriptionEvent.Kind.RENEWAL_CANCELLED:
            subscription_cancel_renewal(account=twin, user=bob, product_code="webinar")
        else:
            assert event.kind == SubscriptionEvent.Kind.RENEWAL_RESUMED, event.kind
            subscription_resume_renewal(account=twin, user=bob, product_code="webinar")
    assert _history(acme) == _history(twin)
    assert OutboxMessage.objects.filter(to=bob.email).count() == mails + mails_before


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_plan_changes_racing_the_due_renewal_wait_for_it_and_follow_it(clock, demo_catalog):
    """The subscription's period ended 30 s ago and the billing run is renewing it while three
    of the customer's browsers change it (quote, then checkout, each through the API in a thread
    with its own connection), retrying what they are refused. Must hold: before the renewal a
    change is refused with a clear 422 ``invalid_instant`` ("renew first"), never a 500; the
    period is renewed exactly once and charged once; every placed change comes after it, with
    its credit inside the renewed period; the periods tile (I2, I10)."""
    import random
    import time

    from django.test import Client

    from prorata.jobs.billing_run import bill_run
    from prorata.jobs.models import Renewal
    from tests.reliability.concurrent_clients import choose

    clock.set(utc(2026, 1, 1))
    account, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    save_card(account, alice)
    buy(account, alice, "lite", "monthly", 3)
    due = Subscription.objects.get(account=account).period_end
    clock.set(due + timedelta(seconds=30))
    token = api_token_create(user=alice, name="race")[1]
    connections.close_all()
    start = threading.Barrier(4)
    answers: list[tuple[int, str, str]] = []  # (status, code, step)
    run: dict[str, object] = {}

    def billing() -> None:
        try:
            start.wait(timeout=30)
            run["stats"] = bill_run().as_dict()
        except BaseException as error:
            run["error"] = repr(error)
        finally:
            connections.close_all()

    def browser(index: int) -> None:
        client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}")
        base = f"/api/v1/accounts/{account.pk}"
        rng, placed = random.Random(index), 0
        try:
            start.wait(timeout=30)
            for attempt in range(60):
                if placed == 2:
                    break
                change = choose(rng, client.get(f"{base}/subscriptions").json()["data"][0])
                if change["kind"] != "checkout":
                    continue
                quote = client.post(f"{base}/quote", change["item"],
                                    content_type="application/json")
                if quote.status_code != 200:
                    answers.append((quote.status_code, quote.json().get("code", ""), "quote"))
                    time.sleep(0.05)
                    continue
                response = client.post(
                    f"{base}/checkout", {"items": [change["item"]],
                                         "expected": [quote.json()["fingerprint"]]},
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY=f"race-{index}-{attempt}")
                body = response.json()
                answers.append((response.status_code, body.get("code", body.get("status", "")),
                                "checkout"))
                placed += response.status_code == 201
        finally:
            connections.close_all()

    threads = [threading.Thread(target=billing)] + [
        threading.Thread(target=browser, args=(index,)) for index in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert "error" not in run, run
    statuses = Counter(status for status, _code, _step in answers)
    assert set(statuses) <= {201, 409, 422}, answers
    assert {code for status, code, _ in answers if status == 422} <= {
        "invalid_instant", "nothing_to_change"}, answers
    # A browser that read the plan before another one upgraded it asks for what is now a
    # downgrade: refused as such (support does downgrades).
    assert {code for status, code, _ in answers if status == 409} <= {
        "quote_changed", "downgrade_needs_support"}, answers
    assert statuses[201] == 6, answers
    subscription = Subscription.objects.get(account=account)
    renewal = Renewal.objects.get(subscription=subscription)
    assert renewal.period_start == due
    assert Payment.objects.filter(invoice=renewal.invoice, status=PaymentStatus.SUCCEEDED).count() == 1
    changes = Document.objects.filter(account=account, order__isnull=False).exclude(
        order__in=Order.objects.filter(account=account).order_by("id")[:1])
    assert all(line.period_start >= due for doc in changes for line in doc.lines.all())
    print("racing the renewal", dict(statuses), run["stats"])


# --- T06: overlapping billing runs ----------------------------------------------------------------

DUE = 300


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_overlapping_billing_runs_renew_and_charge_each_period_once():
    """The scheduler fires again before the run has finished: two runs start at once (renewing
    and charging, small chunks so that they interleave), a third once the first renewals have
    landed. Must hold: every due subscription renewed once, exactly one renewal invoice per
    (subscription, period start), one payment per invoice and one gateway charge per payment,
    the runs' counts adding up to exactly the work done (what another run did first is "nothing to
    do", not counted twice and not an error), no run failing."""
    from benchmarks.billing_run import _load

    from prorata.jobs.models import Renewal
    from tests.app.jobs.support import assert_each_period_once

    _load(DUE, connection.vendor, credit_share=0)
    errors: list[BaseException] = []
    stats: list[dict[str, int]] = []

    def run() -> None:
        from prorata.jobs.billing_run import bill_run

        try:
            stats.append(bill_run(chunk_size=5).as_dict())
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    first = [threading.Thread(target=run) for _ in range(2)]
    for thread in first:
        thread.start()
    late = threading.Thread(target=run)
    for _ in range(3000):  # at most 30 s: the third starts once the first renewals landed
        if Renewal.objects.exists():
            break
        threading.Event().wait(0.01)
    late.start()
    for thread in [*first, late]:
        thread.join(timeout=300)
    assert errors == []
    assert len(stats) == 3 and all(s["failed"] == 0 for s in stats), stats
    assert sum(s["renewed"] for s in stats) == DUE, stats
    assert_each_period_once(DUE)
    renewals = Renewal.objects.count()
    payments = Counter(Payment.objects.values_list("status", flat=True))
    assert sum(payments.values()) == renewals  # one payment per renewal invoice
    assert Payment.objects.values("invoice").distinct().count() == renewals
    # Each payment's outcome counted by exactly one run.
    assert sum(s["charged"] for s in stats) == payments[PaymentStatus.SUCCEEDED], (stats, payments)
    assert sum(s["declined"] for s in stats) == payments[PaymentStatus.FAILED], (stats, payments)
    charges = Counter(SandboxCharge.objects.values_list("idempotency_key", flat=True))
    assert set(charges) == set(Payment.objects.values_list("idempotency_key", flat=True))
    assert set(charges.values()) == {1}  # the gateway charged each payment once
    print("overlapping runs", stats, dict(payments), "charge rows", sum(charges.values()))


# --- a billing run while 50 web checkouts run ---------------------------------------------------

RENEWALS, CHECKOUTS = 300, 50


def _assert_run_beside_checkouts(result: dict, *, busy: set[str]) -> None:
    """Never a 500: every quote answered and every checkout paid (after 503 "busy, nothing was
    saved, try again" answers at worst, on SQLite, which the client follows); the run neither
    crashed nor skipped a renewal or a charge; every payment succeeded once."""
    statuses = {str(status): count for status, count in result["statuses"].items()}
    assert set(statuses) <= {"200", "201"} | busy, result["errors"]
    assert (statuses["200"], statuses["201"]) == (CHECKOUTS, CHECKOUTS), result["errors"]
    assert all("busy" in error for error in result["errors"]), result["errors"]
    assert "error" not in result["run"], result["run"].get("traceback")
    stats = result["run"]["stats"]
    assert stats["renewed"] == stats["charged"] == RENEWALS and stats["failed"] == 0, stats
    assert result["payments"] == {"succeeded": RENEWALS + CHECKOUTS}
    assert result["orders_paid"] == CHECKOUTS
    assert result["renewals"] == result["renewals_paid"] == RENEWALS


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_billing_run_beside_fifty_checkouts_on_postgresql():
    """Fifty customers check out through the API (quote, then checkout; each in a thread with its
    own connection) at the instant the billing run starts renewing and charging 300 due
    subscriptions. Then the suite's invariants (the autouse check)."""
    from benchmarks.billing_run import _load

    from prorata.payments.models import SandboxCard
    from tests.app.jobs.sqlite_load import customers_with_cards, race

    _load(RENEWALS, connection.vendor, credit_share=0)
    SandboxCard.objects.update(behaviour="succeed")
    customers = customers_with_cards(CHECKOUTS)
    connections.close_all()
    result = race(customers, 25)  # chunks of 25: the run commits between checkouts
    print("beside checkouts (postgresql)", result["statuses"], result["run"].get("stats"))
    _assert_run_beside_checkouts(result, busy=set())


@pytest.mark.django_db  # the suite's check afterwards reads the test database (empty here)
def test_a_billing_run_beside_fifty_checkouts_on_sqlite(tmp_path):
    """The same race on a SQLite file with the production pragmas (WAL, busy timeout, ``BEGIN
    IMMEDIATE``), in a process of its own (:mod:`tests.app.jobs.sqlite_load`), which also checks
    the suite's invariants on that file. Runs whatever ``DATABASE_URL`` says: SQLite is the
    point."""
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    finished = subprocess.run(  # noqa: S603  # this interpreter, fixed arguments
        [sys.executable, "-m", "tests.app.jobs.sqlite_load", str(tmp_path / "load.sqlite3"),
         str(RENEWALS), str(CHECKOUTS)],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600, check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(finished.stdout.splitlines()[-1])
    print("beside checkouts (sqlite)", result["statuses"], result["run"].get("stats"))
    _assert_run_beside_checkouts(result, busy={"503"})
    assert result["violations"] == []


# --- T20: two staff refunds of one account at once ------------------------------------------------

@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("staff_groups")
def test_two_agents_refund_one_accounts_payments_at_once_through_the_console(
        demo_catalog, clock):
    """Two support agents, each signed in to the console, submit at the same instant the refund
    form of two different invoices of one account (each paid by its own card payment), then both
    the form of one invoice for more than half of it each. Must hold: the two different
    invoices both refunded (nothing to serialise them on but the account), the same invoice
    refunded once and the other agent told what is left (a 400 form, never a 500); each refund
    with its numbered credit note, its gateway refund and its e-mail; the account's balance
    never below what it was (a refund gives back exactly what its credit note credits)."""
    from prorata.billing.models import Refund
    from prorata.console.models import StaffRefund, StaffRefundStatus
    from tests.app.console.test_money_pages import form_key, signed_in
    from tests.app.subscriptions.support import card, staff

    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example")
    first = buy(account, bea, "lite", "monthly", 3, card_token=card()).invoice
    second = buy(account, bea, "pro", "monthly", 2).invoice  # the upgrade, by the saved card
    third = buy(account, bea, "pro", "monthly", 4).invoice
    assert {first.status, second.status, third.status} == {"paid"}
    balance = account_balance(account).amount
    clients = [signed_in(staff(f"agent{i}@prorata.example", "support_agent")) for i in range(2)]

    def race(invoices, amounts) -> list[object]:
        forms = []
        for client, invoice in zip(clients, invoices, strict=True):
            url = f"/console/console/staffrefund/new/{invoice.pk}/"
            forms.append((url, form_key(client.get(url).content.decode())))
        connections.close_all()
        barrier, answers = threading.Barrier(2), [None, None]

        def submit(index: int) -> None:
            try:
                url, key = forms[index]
                barrier.wait(timeout=30)
                answers[index] = clients[index].post(url, {
                    "amount": amounts[index], "reason": "Goodwill", "key": key})
            except BaseException as error:
                answers[index] = error
            finally:
                connections.close_all()

        threads = [threading.Thread(target=submit, args=(index,)) for index in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return answers

    answers = race([first, second], [f"{first.amount_paid / 100:.2f}",
                                     f"{second.amount_paid / 100:.2f}"])
    assert [getattr(a, "status_code", a) for a in answers] == [302, 302], answers
    assert account_balance(account).amount == balance
    paid = third.amount_paid
    half_and_more = f"{(paid // 2 + 100) / 100:.2f}"
    answers = race([third, third], [half_and_more, half_and_more])
    codes = sorted(getattr(a, "status_code", a) for a in answers)
    assert codes == [302, 400], answers
    refused = next(a for a in answers if a.status_code == 400).content.decode()
    assert "can be refunded on invoice" in refused
    refunds = StaffRefund.objects.order_by("id")
    assert [r.status for r in refunds] == [StaffRefundStatus.REFUNDED] * 3
    assert Refund.objects.filter(status=PaymentStatus.SUCCEEDED).count() == 3
    assert all(r.credit_note.number for r in refunds)
    assert OutboxMessage.objects.filter(to=bea.email, template="receipt",
                                        context__kind="refund").count() == 3
    assert account_balance(account).amount == balance >= 0
