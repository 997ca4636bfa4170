"""The end of dunning (issue 12, item 7), the test clock driven through the whole schedule: a
renewal whose card keeps declining is retried 1, 3 and 7 days after the first failure, each time
with an e-mail that names the item, the amount and the next attempt and links to Pay now; after
the last failure the invoice is voided by a credit note and the subscription expires with an
e-mail saying how to come back. The balance, the Pay now page and the transactions list agree at
every step."""

from __future__ import annotations

import pytest
from django.conf import settings

from prorata.billing.models import Document, DocumentKind, DocumentStatus, Payment
from prorata.billing.selectors import account_balance, credit_balance
from prorata.jobs.billing_run import bill_run
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import render_message
from prorata.payments.models import PaymentMethod
from prorata.payments.services import payment_method_add
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata_core.periods import utc
from tests.app.subscriptions.support import assert_books_balance, buy, card, customer, eur

pytestmark = pytest.mark.django_db

DECLINED = "4000 0000 0000 0002"


def _declining(account, user) -> None:
    """The card on file now declines."""
    PaymentMethod.objects.filter(account=account).update(removed_at=utc(2026, 1, 2),
                                                         is_default=False)
    payment_method_add(account=account, token=card(DECLINED), actor=user)


def _text(message: OutboxMessage, language: str = "en") -> str:
    message.language = language
    email = render_message(message)
    return f"{email.subject}\n{email.body}\n{email.alternatives[0][0]}"


def _pages(client, account, invoice) -> tuple[str, str]:
    pay = client.get(f"/billing/{account.pk}/invoices/{invoice.pk}/pay/")
    transactions = client.get(f"/billing/{account.pk}/transactions/")
    assert pay.status_code == transactions.status_code == 200
    return pay.content.decode(), transactions.content.decode()


def test_dunning_retries_then_voids_the_invoice_and_expires_the_subscription(
    clock, demo_catalog, client
):
    clock.set(utc(2026, 1, 1))
    bistro, jeanne = customer("Bistro Numérique", "FR", "jeanne@bistro.example", currency="EUR")
    buy(bistro, jeanne, "lite", "monthly", 5, card_token=card())
    _declining(bistro, jeanne)
    OutboxMessage.objects.all().delete()
    client.force_login(jeanne)

    # The renewal on 2026-02-01 declines, then each retry until the last one
    schedule = [(utc(2026, 2, 1), utc(2026, 2, 2), "February 2, 2026"),
                (utc(2026, 2, 2), utc(2026, 2, 4), "February 4, 2026"),
                (utc(2026, 2, 4), utc(2026, 2, 8), "February 8, 2026")]
    for attempt, (at, next_attempt, next_day) in enumerate(schedule, start=1):
        clock.set(at)
        assert bill_run().declined == 1
        renewal = Renewal.objects.get()
        invoice = renewal.invoice
        assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.RETRYING, next_attempt)
        assert Subscription.objects.get(account=bistro).status == SubscriptionStatus.PAST_DUE
        # the balance, the Pay now page and the transactions list say the same: 330.00 due
        assert (invoice.status, invoice.amount_due) == (DocumentStatus.OPEN, 33000)
        assert account_balance(bistro, "EUR") == eur("-330.00")
        pay, transactions = _pages(client, bistro, invoice)
        assert "€330.00" in pay and 'Pay now</button>' in pay
        assert f"Invoice {invoice.number}" in transactions and "-€330.00" in transactions
        # the e-mail names the item, the amount and the next attempt, and links to Pay now
        mails = OutboxMessage.objects.filter(template="payment_failed").order_by("id")
        assert mails.count() == attempt
        text = _text(mails.last())
        pay_link = f"{settings.PRORATA_BASE_URL}/billing/{bistro.pk}/invoices/{invoice.pk}/pay/"
        assert "Webinar Lite, 5 licenses, monthly" in text and "€330.00" in text
        assert f"again on {next_day}" in text and pay_link in text
        french = _text(mails.last(), "fr")
        assert "330,00" in french and pay_link in french and "5 licences" in french

    # The last retry fails: the end of dunning
    clock.set(utc(2026, 2, 8))
    last = bill_run()
    assert (last.declined, last.expired) == (1, 1)
    renewal = Renewal.objects.get()
    invoice = Document.objects.get(pk=renewal.invoice_id)
    assert renewal.status == RenewalStatus.FAILED and renewal.attempts == 4
    assert Subscription.objects.get(account=bistro).status == SubscriptionStatus.EXPIRED
    # the invoice is voided by a credit note of its whole total
    note = Document.objects.get(kind=DocumentKind.CREDIT_NOTE, refers_to=invoice)
    assert (invoice.status, invoice.amount_due, invoice.total) == (DocumentStatus.VOID, 0, 33000)
    assert (note.total, note.tax, note.status) == (-33000, -5500, DocumentStatus.PAID)
    assert note.snapshot["refers_to"] == invoice.number and note.number.startswith("CN-2026-")
    # the balance, the Pay now page and the transactions list agree: nothing is owed
    assert account_balance(bistro, "EUR") == eur("0.00")
    pay, transactions = _pages(client, bistro, invoice)
    assert f"cancelled by credit note {note.number}" in pay and 'Pay now</button>' not in pay
    assert f"Credit note {note.number}" in transactions and "€330.00" in transactions
    refused = client.post(f"/billing/{bistro.pk}/invoices/{invoice.pk}/pay/", follow=True)
    assert "nothing left to pay" in refused.content.decode()
    assert Payment.objects.filter(invoice=invoice).count() == 4  # no fifth attempt
    # no fourth "payment failed" e-mail; an expiry e-mail says how to come back
    assert OutboxMessage.objects.filter(template="payment_failed").count() == 3
    (expired,) = OutboxMessage.objects.filter(template="subscription_expired")
    text = _text(expired)
    assert "Webinar subscription ended on February 8, 2026" in text
    assert f"invoice {invoice.number}" in text and "€330.00" in text
    assert f"cancelled by credit note {note.number}: you owe nothing" in text
    assert "Subscribe now" in text and f"/billing/{bistro.pk}/" in text
    assert "pay now" not in text.lower() and "keep your subscription" not in text
    french = _text(expired, "fr")
    assert "Abonnez-vous" in french or "S'abonner" in french
    assert f"annulée par l'avoir {note.number}" in french
    # the card says when it ended, never the end of the unpaid period that lies ahead
    page = client.get(f"/billing/{bistro.pk}/").content.decode()
    assert "Expired on" in page and "February 8, 2026" in page
    assert "March 1, 2026" not in page
    # nothing more happens, and the subscription can be bought again (S9)
    clock.set(utc(2026, 3, 5))
    assert (bill_run().declined, Renewal.objects.count()) == (0, 1)
    assert_books_balance()


def test_the_credit_an_unpaid_renewal_took_comes_back_when_it_is_voided(clock, demo_catalog):
    """DESIGN example 2's credit (25.55) is applied to the renewal of 2026-04-11; the card
    declines to the end: the voiding credit note gives the whole invoice back, the 25.55 of
    credit included, and the ledger and documents agree."""
    clock.set(utc(2026, 3, 1))
    bistro, jeanne = customer("Bistro Numérique", "FR", "jeanne@bistro.example", currency="EUR")
    buy(bistro, jeanne, "lite", "monthly", 5, card_token=card())
    clock.set(utc(2026, 3, 11))
    buy(bistro, jeanne, "lite", "monthly", 3)
    assert credit_balance(bistro) == eur("25.55")
    _declining(bistro, jeanne)
    for at in (utc(2026, 4, 11), utc(2026, 4, 12), utc(2026, 4, 14), utc(2026, 4, 18)):
        clock.set(at)
        bill_run()
        if at == utc(2026, 4, 11):
            invoice = Renewal.objects.get().invoice
            assert (invoice.total, invoice.credit_applied, invoice.amount_due) == (
                19800, 2555, 17245)
            assert account_balance(bistro, "EUR") == eur("-172.45")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == (DocumentStatus.VOID, 0)
    assert Subscription.objects.get(account=bistro).status == SubscriptionStatus.EXPIRED
    assert credit_balance(bistro) == eur("25.55")
    assert_books_balance()
