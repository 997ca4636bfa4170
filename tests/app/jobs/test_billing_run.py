"""The billing run: renewals at the period end, credit applied first, the card charged, dunning,
exactly once whatever happens (issue 5; DESIGN §3 "Renewal" and example 2)."""

from datetime import timedelta

import pytest
from benchmarks.billing_run import RUN_AT, _load
from django.core.management import call_command
from django.db import connection

from prorata.billing.models import Document, DocumentKind, DocumentStatus, Payment, PaymentStatus
from prorata.billing.selectors import credit_balance
from prorata.jobs.billing_run import bill_run
from prorata.jobs.claim import mostly_due
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.models import OutboxMessage
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Subscription, SubscriptionEvent, SubscriptionStatus
from prorata_core.periods import utc
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import (
    assert_books_balance,
    buy,
    card,
    customer,
    eur,
    numbers,
    staff,
    usd,
)

pytestmark = pytest.mark.django_db

DECLINED = "4000 0000 0000 0002"


@pytest.fixture
def bistro_after_example_2(clock, demo_catalog):
    """DESIGN example 2 up to the change: Lite monthly × 5 from 2026-03-01, reduced to 3 licenses
    on 2026-03-11, leaving 25.55 of credit."""
    clock.set(utc(2026, 3, 1))
    bistro, jeanne = customer("Bistro Numérique", "FR", "jeanne@bistro.example", currency="EUR")
    buy(bistro, jeanne, "lite", "monthly", 5, card_token=card())
    clock.set(utc(2026, 3, 11))
    buy(bistro, jeanne, "lite", "monthly", 3)
    assert credit_balance(bistro) == eur("25.55")
    return bistro, jeanne


def test_example_2_renewal_applies_the_credit_and_charges_the_rest(clock, bistro_after_example_2):
    bistro, _ = bistro_after_example_2
    OutboxMessage.objects.all().delete()
    # When the billing run runs at 2026-04-11
    clock.set(utc(2026, 4, 11))
    stats = bill_run()
    # Then the invoice is 198.00, 25.55 of credit is applied and 172.45 is charged to the card
    assert (stats.renewed, stats.charged, stats.declined) == (1, 1, 0)
    invoice = Document.objects.filter(account=bistro, kind=DocumentKind.INVOICE).latest("sequence")
    assert (invoice.total, invoice.tax, invoice.credit_applied, invoice.amount_paid,
            invoice.amount_due) == (19800, 3300, 2555, 17245, 0)
    assert invoice.status == DocumentStatus.PAID and invoice.number == "2026-000003"
    assert invoice.snapshot["number"] == "2026-000003" and invoice.sequence == 3
    assert invoice.snapshot["lines"][0]["period_start"] == "2026-04-11T00:00:00Z"
    assert invoice.lines.get().amount == 16500
    payment = Payment.objects.get(invoice=invoice)
    assert (payment.amount, payment.status) == (17245, PaymentStatus.SUCCEEDED)
    subscription = Subscription.objects.get(account=bistro)
    assert (subscription.period_start, subscription.period_end) == (utc(2026, 4, 11),
                                                                    utc(2026, 5, 11))
    assert (subscription.invoiced_amount, subscription.invoice) == (16500, invoice)
    assert credit_balance(bistro) == eur("0")
    # The renewal is the subscription's history entry for the period, once, with its invoice.
    (renewal,) = Renewal.objects.filter(subscription=subscription)
    assert (renewal.period_start, renewal.period_end, renewal.invoice) == (
        utc(2026, 4, 11), utc(2026, 5, 11), invoice)
    assert not SubscriptionEvent.objects.filter(subscription=subscription, kind="renewed").exists()
    (receipt,) = OutboxMessage.objects.filter(template="receipt")
    assert receipt.to == "jeanne@bistro.example"
    assert receipt.attachments == [{"kind": "invoice", "id": invoice.pk}]
    assert_books_balance()


def test_nothing_is_renewed_before_the_period_ends_and_a_second_run_does_nothing(
    clock, bistro_after_example_2
):
    clock.set(utc(2026, 4, 10, 23, 59, 59))
    assert bill_run().renewed == 0
    clock.set(utc(2026, 4, 11))
    assert bill_run().renewed == 1
    again = bill_run()
    assert (again.renewed, again.charged) == (0, 0)
    assert Renewal.objects.count() == 1
    assert_books_balance()


def test_a_run_late_by_three_months_renews_each_period_once_from_the_anchor(clock, demo_catalog):
    clock.set(utc(2026, 1, 31))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(acme, alice, "lite", "monthly", 1, card_token=card())
    clock.set(utc(2026, 4, 30, 12))
    stats = bill_run(chunk_size=1)
    assert (stats.renewed, stats.charged) == (3, 3)
    periods = list(Renewal.objects.order_by("period_start").values_list("period_start",
                                                                        "period_end"))
    assert periods == [(utc(2026, 2, 28), utc(2026, 3, 31)), (utc(2026, 3, 31), utc(2026, 4, 30)),
                       (utc(2026, 4, 30), utc(2026, 5, 31))]
    assert numbers(DocumentKind.INVOICE) == [f"2026-00000{i}" for i in range(1, 5)]
    assert_books_balance()


def test_a_declined_card_is_retried_1_3_and_7_days_later_then_the_subscription_expires(
    clock, demo_catalog
):
    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(acme, alice, "lite", "monthly", 1, card_token=card())
    # the card on file now declines
    PaymentMethod.objects.filter(account=acme).update(removed_at=utc(2026, 1, 2), is_default=False)
    from prorata.payments.services import payment_method_add
    payment_method_add(account=acme, token=card(DECLINED), actor=alice)
    OutboxMessage.objects.all().delete()

    clock.set(utc(2026, 2, 1))
    stats = bill_run()
    assert (stats.renewed, stats.declined) == (1, 1)
    subscription = Subscription.objects.get(account=acme)
    renewal = Renewal.objects.get()
    assert subscription.status == SubscriptionStatus.PAST_DUE
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.RETRYING, utc(2026, 2, 2))
    for day, next_attempt in [(2, utc(2026, 2, 4)), (4, utc(2026, 2, 8))]:
        clock.set(utc(2026, 2, day))
        assert bill_run().declined == 1
        renewal.refresh_from_db()
        assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.RETRYING, next_attempt)
    # nothing happens between two retries
    clock.set(utc(2026, 2, 7))
    assert bill_run().declined == 0
    clock.set(utc(2026, 2, 8))
    last = bill_run()
    assert (last.declined, last.expired) == (1, 1)
    renewal.refresh_from_db()
    subscription.refresh_from_db()
    assert renewal.status == RenewalStatus.FAILED and renewal.attempts == 4
    assert subscription.status == SubscriptionStatus.EXPIRED
    assert Payment.objects.filter(invoice=renewal.invoice, status=PaymentStatus.FAILED).count() == 4
    # every "payment failed" e-mail announces a next attempt; the end of dunning is an expiry
    # e-mail instead (issue 12 item 7: tests/app/jobs/test_dunning.py follows it step by step)
    failed_mails = OutboxMessage.objects.filter(template="payment_failed")
    assert failed_mails.count() == 3
    assert all("next_retry_at" in mail.context for mail in failed_mails)
    (expired,) = OutboxMessage.objects.filter(template="subscription_expired")
    assert expired.context["reason"] == "payment_failed"
    # an expired subscription is not renewed again
    clock.set(utc(2026, 3, 5))
    assert bill_run().renewed == 0
    assert_books_balance()


def test_a_retry_with_a_new_card_pays_and_ends_past_due(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(acme, alice, "lite", "monthly", 2, card_token=card())
    from prorata.payments.services import payment_method_add
    PaymentMethod.objects.filter(account=acme).update(removed_at=utc(2026, 1, 2), is_default=False)
    payment_method_add(account=acme, token=card(DECLINED), actor=alice)
    clock.set(utc(2026, 2, 1))
    bill_run()
    assert Subscription.objects.get(account=acme).status == SubscriptionStatus.PAST_DUE
    payment_method_add(account=acme, token=card(), actor=alice)  # a good card, now the default
    clock.set(utc(2026, 2, 2))
    stats = bill_run()
    assert stats.charged == 1
    assert Subscription.objects.get(account=acme).status == SubscriptionStatus.ACTIVE
    assert Renewal.objects.get().status == RenewalStatus.PAID
    assert_books_balance()


def test_a_corporate_renewal_is_invoiced_on_terms_and_not_charged(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    globex, _hans = customer("Globex", "DE", "hans@globex.example", currency="EUR",
                            vat_number="DE136695976", corporate_advisor=advisor)
    buy(globex, advisor, "pro", "annual", 20, by_staff=True)
    clock.set(utc(2027, 1, 1))
    stats = bill_run()
    assert (stats.renewed, stats.charged) == (1, 0)
    renewal = Renewal.objects.get()
    invoice = renewal.invoice
    assert renewal.status == RenewalStatus.INVOICED
    assert (invoice.status, invoice.due_at, invoice.tax) == (DocumentStatus.OPEN,
                                                           utc(2027, 1, 31), 0)
    assert invoice.snapshot["tax_rule"] == "reverse_charge" and invoice.snapshot["mention"]
    assert not Payment.objects.filter(invoice=invoice).exists()
    assert Subscription.objects.get(account=globex).status == SubscriptionStatus.ACTIVE
    assert_books_balance()


def test_a_subscription_that_cannot_be_priced_does_not_block_the_others(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    accounts = []
    for index in range(3):
        account, user = customer(f"Customer {index}", "US", f"c{index}@x.example", currency="USD")
        buy(account, user, "lite", "monthly", 1, card_token=card())
        accounts.append(account)
    # a corrupt row: a license count the plan does not allow
    Subscription.objects.filter(account=accounts[1]).update(quantity=10**6)
    clock.set(utc(2026, 2, 1))
    stats = bill_run(chunk_size=10)
    assert (stats.renewed, stats.fallbacks, len(stats.failed_ids)) == (2, 1, 1)
    assert stats.failed_ids == [Subscription.objects.get(account=accounts[1]).pk]
    assert numbers(DocumentKind.INVOICE)[-2:] == ["2026-000004", "2026-000005"]
    assert_books_balance()


def test_the_command_prints_what_it_did(clock, bistro_after_example_2, capsys):
    clock.set(utc(2026, 4, 11))
    call_command("bill-run", "--chunk-size", "10")
    assert '"renewed": 1' in capsys.readouterr().out
    from django.core.management.base import CommandError
    with pytest.raises(CommandError, match="INDEX/COUNT"):
        call_command("bill-run", "--partition", "2/2")


def test_partitions_split_the_work_without_overlap(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    for index in range(6):
        account, user = customer(f"Customer {index}", "US", f"p{index}@x.example", currency="USD")
        buy(account, user, "lite", "monthly", 1, card_token=card())
    clock.set(utc(2026, 2, 1) + timedelta(hours=1))
    first = bill_run(partition=(0, 2))
    second = bill_run(partition=(1, 2))
    assert first.renewed + second.renewed == 6
    assert first.renewed > 0 and second.renewed > 0
    assert bill_run().renewed == 0
    assert usd("59.00").amount * 6 * 2 == sum(
        Document.objects.filter(kind=DocumentKind.INVOICE).values_list("total", flat=True))
    assert_books_balance()


def test_rows_behind_the_claim_cursor_are_renewed_by_a_last_pass_from_the_start(
    clock, demo_catalog
):
    """Each claim starts after the previous one; a row skipped meanwhile (held by a checkout's
    transaction) lies behind the cursor, and the pass from the start renews it in the same run."""
    from prorata.common.clock import now
    from prorata.jobs.billing_run import RunStats
    from prorata.jobs.claim import Claim
    from prorata.jobs.invoicing import renew_due

    clock.set(utc(2026, 1, 1))
    for index in range(5):
        account, user = customer(f"Customer {index}", "US", f"c{index}@x.example", currency="USD")
        clock.advance(timedelta(minutes=1))  # five different period ends, in id order
        buy(account, user, "lite", "monthly", 1, card_token=card())
    clock.set(utc(2026, 2, 2))
    due = list(Subscription.objects.order_by("period_end", "id"))
    stats = RunStats()
    claim = Claim(cursor=(due[2].period_end, due[2].id))  # as if the first three were skipped

    renew_due(at=now(), chunk_size=2, partition=None, stats=stats, claim=claim)

    assert stats.renewed == 5
    assert not Subscription.objects.filter(period_end__lte=now()).exists()
    assert Renewal.objects.count() == 5


def test_a_cancelled_renewal_expires_at_the_period_end_with_an_e_mail(clock, demo_catalog):
    from prorata.subscriptions.services import subscription_cancel_renewal

    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(acme, alice, "lite", "monthly", 1, card_token=card())
    subscription_cancel_renewal(account=acme, user=alice, product_code="webinar")
    OutboxMessage.objects.all().delete()
    clock.set(utc(2026, 1, 31, 23))
    assert bill_run().expired == 0  # active to the end of the paid period
    clock.set(utc(2026, 2, 1))
    stats = bill_run()
    assert (stats.expired, stats.renewed) == (1, 0)
    subscription = Subscription.objects.get(account=acme)
    assert subscription.status == SubscriptionStatus.EXPIRED
    assert subscription.events.filter(kind="expired").count() == 1
    (mail,) = OutboxMessage.objects.filter(template="subscription_expired")
    assert mail.context["trial"] is False and mail.to == "alice@acme.example"
    assert bill_run().expired == 0  # once
    assert not Document.objects.filter(issued_at=utc(2026, 2, 1)).exists()


def test_a_free_trial_expires_at_its_end_and_is_then_bought_again(clock, demo_catalog):
    from prorata.subscriptions.services import subscription_start_trial

    clock.set(utc(2026, 3, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    trial = subscription_start_trial(account=acme, product_code="webinar")
    assert trial.period_end == utc(2026, 3, 15)
    clock.set(utc(2026, 3, 15))
    assert bill_run().expired == 1
    assert Subscription.objects.get(account=acme).status == SubscriptionStatus.EXPIRED
    mail = OutboxMessage.objects.get(template="subscription_expired")
    assert mail.context["trial"] is True
    # Subscribe now: the new period starts at payment (S9)
    clock.set(utc(2026, 4, 2, 10))
    result = buy(acme, alice, "pro", "annual", 1, card_token=card())
    subscription = Subscription.objects.get(account=acme)
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert (subscription.period_start, subscription.period_end) == (utc(2026, 4, 2, 10),
                                                                    utc(2027, 4, 2, 10))
    assert result.invoice.total == usd("2388.00").amount
    assert subscription.events.filter(kind="expired").count() == 1  # history kept
    assert_books_balance()


def test_paying_the_open_invoice_from_the_billing_center_ends_past_due(clock, demo_catalog, client):
    from prorata.payments.services import payment_method_add

    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(acme, alice, "lite", "monthly", 1, card_token=card())
    PaymentMethod.objects.filter(account=acme).update(removed_at=utc(2026, 1, 2), is_default=False)
    payment_method_add(account=acme, token=card(DECLINED), actor=alice)
    clock.set(utc(2026, 2, 1))
    bill_run()
    subscription = Subscription.objects.get(account=acme)
    assert subscription.status == SubscriptionStatus.PAST_DUE
    console_login(client, alice)
    account_page = client.get(f"/billing/{acme.pk}/").content.decode()
    pay_url = f"/billing/{acme.pk}/invoices/{subscription.invoice_id}/pay/"
    assert pay_url in account_page
    # the declined card refuses again: the message, and the dunning schedule is unchanged
    response = client.post(pay_url, follow=True)
    assert "declined" in response.content.decode()
    renewal = Renewal.objects.get()
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.RETRYING, utc(2026, 2, 2))
    # with a good card it is paid at once
    payment_method_add(account=acme, token=card(), actor=alice)
    page = client.get(pay_url).content.decode()
    assert "$59.00" in page and "Pay now" in page
    response = client.post(pay_url, follow=True)
    assert "is paid" in response.content.decode()
    subscription.refresh_from_db()
    renewal.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert renewal.status == RenewalStatus.PAID
    assert Document.objects.get(pk=subscription.invoice_id).status == DocumentStatus.PAID
    # nothing left to pay: a second payment is refused and charges nothing
    paid = Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count()
    response = client.post(pay_url, follow=True)
    assert "nothing left to pay" in response.content.decode()
    assert Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count() == paid
    # and the run has nothing to retry
    clock.set(utc(2026, 2, 2))
    assert bill_run().declined == 0
    assert_books_balance()


def test_an_overdue_corporate_invoice_is_flagged_to_its_advisor_who_records_the_transfer(
    clock, demo_catalog, client
):
    clock.set(utc(2026, 1, 1))
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    globex, _hans = customer("Globex", "DE", "hans@globex.example", currency="EUR",
                             vat_number="DE136695976", corporate_advisor=advisor)
    buy(globex, advisor, "pro", "annual", 2, by_staff=True)  # invoiced, net 30
    invoice = Document.objects.get(account=globex, kind=DocumentKind.INVOICE)
    assert (invoice.status, invoice.due_at) == (DocumentStatus.OPEN, utc(2026, 1, 31))
    clock.set(utc(2026, 1, 31))
    bill_run()
    assert not OutboxMessage.objects.filter(template="invoice_overdue").exists()
    clock.set(utc(2026, 2, 1))
    bill_run()
    bill_run()
    (flag,) = OutboxMessage.objects.filter(template="invoice_overdue")
    assert flag.to == "advisor@prorata.example" and flag.context["number"] == invoice.number
    assert Subscription.objects.get(account=globex).status == SubscriptionStatus.ACTIVE
    # the advisor records the transfer in the console
    console_login(client, advisor)
    url = f"/console/billing/document/{invoice.pk}/transfer/"
    assert client.get("/console/billing/document/").status_code == 200
    page = client.get(url)
    assert page.status_code == 200 and invoice.amount_due == 439200
    refused = client.post(url, {"amount": "9999999.00", "reference": "TR-1"})
    assert refused.status_code == 200 and Payment.objects.filter(invoice=invoice).count() == 0
    done = client.post(url, {"amount": "4392.00", "reference": "TR-1"})
    assert done.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (DocumentStatus.PAID, 439200)
    # a support agent sees documents but may not record money on an account they do not manage
    agent = staff("support@prorata.example", "support_agent")
    console_login(client, agent)
    other = Document.objects.get(pk=invoice.pk)
    assert client.get(f"/console/billing/document/{other.pk}/transfer/").status_code == 403
    assert_books_balance()


@pytest.mark.parametrize(("mostly_due", "expected"), [(False, [5, 4, 3, 2, 1]),
                                                      (True, [1, 2, 3, 4, 5])])
def test_claims_go_oldest_first_or_in_id_order_when_most_subscriptions_are_due(
    clock, demo_catalog, monkeypatch, mostly_due, expected
):
    """Oldest period end first, or, when most subscriptions are due at once, in id order (their
    pages reached one after the other); every one renewed once either way."""
    from prorata.jobs import claim

    monkeypatch.setattr(claim, "MOSTLY_DUE", 0.5 if mostly_due else 2.0)
    ids = []
    for index in range(5):
        clock.set(utc(2026, 1, 1, 0, 5 - index))  # period ends in the reverse of id order
        account, user = customer(f"Customer {index}", "US", f"c{index}@x.example", currency="USD")
        buy(account, user, "lite", "monthly", 1, card_token=card())
        ids.append(Subscription.objects.get(account=account).pk)
    clock.set(utc(2026, 2, 2))

    stats = bill_run(chunk_size=1, charge=False)

    assert stats.renewed == 5
    renewed = list(Renewal.objects.order_by("id").values_list("subscription_id", flat=True))
    assert renewed == [ids[number - 1] for number in expected]
    assert bill_run(charge=False).renewed == 0


def test_most_subscriptions_are_due_from_a_twentieth_of_them(clock, demo_catalog):
    _load(40, connection.vendor, credit_share=0)
    assert mostly_due(at=RUN_AT)  # all 40
    later = RUN_AT + timedelta(days=40)
    keep_due = list(Subscription.objects.order_by("id").values_list("id", flat=True)[:2])
    Subscription.objects.exclude(id__in=keep_due).update(
        period_start=RUN_AT, period_end=later)
    assert mostly_due(at=RUN_AT)  # 2 of 40: a twentieth
    Subscription.objects.filter(id=keep_due[0]).update(period_start=RUN_AT, period_end=later)
    assert not mostly_due(at=RUN_AT)  # 1 of 40


@pytest.mark.django_db(transaction=True)  # a retry happens only outside a test's transaction
def test_pay_now_is_retried_when_the_database_is_busy(clock, demo_catalog, monkeypatch):
    # given Acme past due on a declined renewal, with a good card now
    import sqlite3

    from django.db import OperationalError

    from prorata.billing import renewals
    from prorata.payments.services import payment_method_add

    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(acme, alice, "lite", "monthly", 1, card_token=card())
    PaymentMethod.objects.filter(account=acme).update(removed_at=utc(2026, 1, 2), is_default=False)
    payment_method_add(account=acme, token=card(DECLINED), actor=alice)
    clock.set(utc(2026, 2, 1))
    bill_run()
    payment_method_add(account=acme, token=card(), actor=alice)
    invoice_id = Subscription.objects.get(account=acme).invoice_id
    # when the first attempt to record the payment meets a lock held by another writer
    real, calls = renewals.renewal_attempt_create, []

    def busy_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            locked = sqlite3.OperationalError("database is locked")
            locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise OperationalError("database is locked") from locked
        return real(**kwargs)

    monkeypatch.setattr(renewals, "renewal_attempt_create", busy_once)
    # then Pay now tries again and pays once
    assert renewals.renewal_pay_now(account=acme, user=alice, invoice_id=invoice_id).status == "paid"
    assert len(calls) == 2
    assert Payment.objects.filter(invoice_id=invoice_id,
                                  status=PaymentStatus.SUCCEEDED).count() == 1
    assert Subscription.objects.get(account=acme).status == SubscriptionStatus.ACTIVE
    assert_books_balance()
