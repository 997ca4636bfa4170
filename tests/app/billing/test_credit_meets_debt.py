"""Credit created while an invoice is still open pays it, in the open (issue 12, item 8: "credit
announced, then swallowed by old debt"). Before, the balance netted the two silently: the invoice
kept showing its whole amount due, the ledger a smaller debt, and the e-mail announcing the credit
said "credit balance 0,00 €". Now documents, ledger and e-mail agree at every step."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from prorata.billing.models import (
    CreditApplication,
    Document,
    DocumentKind,
    DocumentStatus,
)
from prorata.billing.receipts import document_pdf, document_pdf_snapshot
from prorata.billing.selectors import account_balance
from prorata.console.services import credit_adjust
from prorata.jobs.billing_run import bill_run
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import render_message
from prorata.payments.services import payment_method_add
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata_core.periods import utc
from tests.app.subscriptions.support import (
    DECLINED_CARD,
    assert_books_balance,
    buy,
    card,
    customer,
    eur,
    key,
    staff,
)

pytestmark = pytest.mark.django_db


def open_due(account) -> int:
    """What the account's open invoices still have due (minor units)."""
    return sum(Document.objects.filter(account=account, kind=DocumentKind.INVOICE,
                                       status=DocumentStatus.OPEN)
               .values_list("amount_due", flat=True))


def assert_documents_agree_with_ledger(account) -> None:
    """Every debt the ledger holds is an invoice's amount due, and no credit hides beside it."""
    balance = account_balance(account, "EUR").amount
    assert open_due(account) == max(-balance, 0)
    assert_books_balance()


def texts(row: OutboxMessage) -> tuple[str, str]:
    message = render_message(row)
    html = message.alternatives[0][0] if message.alternatives else ""
    return message.body, html


def test_a_reduction_on_terms_pays_the_open_invoice_and_the_e_mail_says_so(clock, demo_catalog):
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    globex, _ = customer("Globex SARL", "FR", "bob@globex.example", currency="EUR",
                         corporate_advisor=advisor)
    clock.set(utc(2027, 2, 1))
    first = buy(globex, advisor, "pro", "monthly", 3, by_staff=True).invoice
    assert first.status == DocumentStatus.OPEN and first.amount_due == first.total > 0
    assert_documents_agree_with_ledger(globex)

    clock.set(utc(2027, 2, 15))
    result = buy(globex, advisor, "pro", "monthly", 1, by_staff=True)
    credit = result.order.credit_created
    assert 0 < credit < first.total

    first.refresh_from_db()
    assert (first.credit_applied, first.amount_due) == (credit, first.total - credit)
    assert first.status == DocumentStatus.OPEN
    (applied,) = CreditApplication.objects.filter(invoice=first)
    assert applied.amount == credit and applied.credit_note.kind == DocumentKind.CREDIT_NOTE
    assert account_balance(globex, "EUR").amount == -(first.total - credit)
    assert_documents_agree_with_ledger(globex)

    # The e-mail tells what the ledger holds: the credit paid the invoice, this much still due.
    (mail,) = OutboxMessage.objects.filter(template="credit_created")
    assert mail.context["applied_to"] == [{
        "number": first.number,
        "amount": {"amount": credit, "currency": "EUR"},
        "amount_due": {"amount": first.total - credit, "currency": "EUR"}}]
    body, html = texts(mail)
    due = f"€{(first.total - credit) // 100:,}.{(first.total - credit) % 100:02d}"
    assert f"invoice {first.number}: " in body and f"{due} still due" in body
    assert "used first on your next payment" not in body
    assert f"{due} still due" in html

    # The invoice's PDF says when and how the credit paid it; the credit note where it went.
    snapshot = document_pdf_snapshot(first)
    assert snapshot["credit_applied"] == credit and snapshot["amount_due"] == first.total - credit
    assert snapshot["credit_settled"][0]["credit_note"] == applied.credit_note.number
    note = document_pdf_snapshot(applied.credit_note)
    assert {"number": first.number, "amount": credit} in note["credit_applied_to"]
    assert note["kept_as_credit"] == 0
    _name, pdf = document_pdf(document=first, language="en")
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
                    .split())
    assert (f"paid from your account's credit (credit note {applied.credit_note.number})"
            in text)


def test_in_french_the_e_mail_names_the_invoice_paid(clock, demo_catalog):
    advisor = staff("advisor@prorata.example", "corporate_advisor")
    globex, _ = customer("Globex SARL", "FR", "bob@globex.example", currency="EUR",
                         corporate_advisor=advisor, language="fr")
    clock.set(utc(2027, 2, 1))
    first = buy(globex, advisor, "pro", "monthly", 3, by_staff=True).invoice
    clock.set(utc(2027, 2, 15))
    buy(globex, advisor, "pro", "monthly", 1, by_staff=True)
    (mail,) = OutboxMessage.objects.filter(template="credit_created")
    body, _html = texts(mail)
    assert f"facture {first.number}" in body and "restent dus" in body


def test_a_staff_credit_grant_pays_a_past_due_renewal_and_ends_its_dunning(clock, demo_catalog):
    agent = staff("sam@prorata.example", "support_agent")
    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example")
    clock.set(utc(2027, 1, 1))
    buy(account, bea, "lite", "monthly", 1, card_token=card())
    payment_method_add(account=account, token=card(DECLINED_CARD), actor=bea)
    clock.set(utc(2027, 2, 1))
    bill_run()
    subscription = Subscription.objects.get(account=account)
    assert subscription.status == SubscriptionStatus.PAST_DUE
    renewal = Renewal.objects.get(subscription=subscription, period_start=utc(2027, 2, 1))
    assert renewal.status == RenewalStatus.RETRYING
    invoice = renewal.invoice
    due = invoice.amount_due
    assert due > 0 and account_balance(account, "EUR").amount == -due
    assert_documents_agree_with_ledger(account)

    granted = credit_adjust(account=account, amount=eur("100.00"), reason="Outage on 3 Feb",
                            actor=agent, idempotency_key=key())
    invoice.refresh_from_db()
    renewal.refresh_from_db()
    subscription.refresh_from_db()
    paid_by_credit = min(10000, due)
    assert invoice.credit_applied == paid_by_credit
    assert invoice.amount_due == due - paid_by_credit
    if due <= 10000:
        assert invoice.status == DocumentStatus.PAID
        assert renewal.status == RenewalStatus.PAID and renewal.next_attempt_at is None
        assert subscription.status == SubscriptionStatus.ACTIVE
        assert OutboxMessage.objects.filter(template="receipt",
                                            context__document_number=invoice.number).exists()
    assert account_balance(account, "EUR").amount == 10000 - due
    assert_documents_agree_with_ledger(account)
    (mail,) = OutboxMessage.objects.filter(template="credit_granted")
    assert mail.context["applied_to"][0]["number"] == invoice.number
    assert mail.context["balance"]["amount"] == max(10000 - due, 0)
    body, _html = texts(mail)
    assert f"invoice {invoice.number}" in body
    assert granted.credit_note.number in body

    # The next dunning attempt has nothing left to take.
    clock.set(utc(2027, 2, 5))
    bill_run()
    renewal.refresh_from_db()
    assert renewal.status == RenewalStatus.PAID
    assert_documents_agree_with_ledger(account)


def test_a_grant_smaller_than_the_debt_leaves_the_rest_due_and_the_retry_takes_only_that(
        clock, demo_catalog):
    agent = staff("sam@prorata.example", "support_agent")
    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example")
    clock.set(utc(2027, 1, 1))
    buy(account, bea, "pro", "monthly", 2, card_token=card())
    payment_method_add(account=account, token=card(DECLINED_CARD), actor=bea)
    clock.set(utc(2027, 2, 1))
    bill_run()
    renewal = Renewal.objects.get(period_start=utc(2027, 2, 1))
    due = renewal.invoice.amount_due
    assert due > 2000
    credit_adjust(account=account, amount=eur("20.00"), reason="Goodwill", actor=agent,
                  idempotency_key=key())
    invoice = Document.objects.get(pk=renewal.invoice_id)
    assert (invoice.credit_applied, invoice.amount_due) == (2000, due - 2000)
    assert invoice.status == DocumentStatus.OPEN
    assert_documents_agree_with_ledger(account)
    # the good card again: the retry charges what is left, not the whole invoice
    payment_method_add(account=account, token=card(), actor=bea)
    clock.set(utc(2027, 2, 2))
    bill_run()
    invoice.refresh_from_db()
    assert invoice.status == DocumentStatus.PAID
    assert invoice.payments.filter(status="succeeded").get().amount == due - 2000
    assert account_balance(account, "EUR").amount == 0
    assert_documents_agree_with_ledger(account)


def test_credit_with_no_open_invoice_stays_credit(clock, demo_catalog):
    account, bea = customer("Bistro Numérique", "FR", "bea@bistro.example")
    clock.set(utc(2027, 1, 1))
    buy(account, bea, "pro", "monthly", 3, card_token=card())
    clock.set(utc(2027, 1, 15))
    result = buy(account, bea, "pro", "monthly", 1, card_token=card())
    assert not CreditApplication.objects.exists()
    assert account_balance(account, "EUR").amount == result.order.credit_created
    (mail,) = OutboxMessage.objects.filter(template="credit_created")
    assert mail.context["applied_to"] == []
    body, _html = texts(mail)
    assert "used first on your next payment" in body
