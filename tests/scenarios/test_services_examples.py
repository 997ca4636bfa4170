"""DESIGN §3's worked examples 1 and 2 end to end through the services, at the stated instants:
quote, checkout, card payment (the sandbox gateway), documents and their numbers, ledger, balance,
next billing date, e-mails, and the books balanced after each step."""

from fractions import Fraction

import pytest

from prorata.billing.models import Document, DocumentKind, DocumentStatus, PaymentStatus
from prorata.billing.receipts import document_pdf
from prorata.billing.selectors import account_balance, credit_balance
from prorata.catalog.selectors import catalog_snapshot
from prorata.catalog.services import catalog_load_demo
from prorata.notifications.models import OutboxMessage
from prorata.payments.models import SandboxCharge
from prorata.subscriptions.models import OrderStatus, Subscription, SubscriptionEvent
from prorata.subscriptions.selectors import account_tax, current_term, order_quote, state_of
from prorata.subscriptions.services import checkout_place
from prorata_core.orders import OrderKind, price_order
from prorata_core.periods import Period, utc
from prorata_core.tax import TaxRule
from tests.app.conftest import Clock
from tests.app.subscriptions.support import (
    assert_books_balance,
    buy,
    card,
    customer,
    eur,
    key,
    ledger_rows,
    usd,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock(db):
    return Clock()


@pytest.fixture(autouse=True)
def catalog(db):
    catalog_load_demo()


def test_example_1_annual_upgrade_usd_no_tax(clock):
    # Given Acme bought Standard annual × 2 on 2026-01-01 with a card: invoice 2,376.00, paid
    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    first = buy(acme, alice, "standard", "annual", 2, card_token=card())
    assert first.status == OrderStatus.PAID
    assert (first.invoice.number, first.invoice.total, first.invoice.amount_paid) == (
        "2026-000001", 237600, 237600)
    assert first.invoice.tax == 0 and first.invoice.snapshot["tax_rule"] == TaxRule.OUTSIDE_EU
    subscription = Subscription.objects.get(account=acme)
    assert (subscription.period_start, subscription.period_end) == (utc(2026, 1, 1), utc(2027, 1, 1))
    assert subscription.invoiced_amount == 237600 and subscription.invoice == first.invoice
    assert_books_balance()

    # When she upgrades to Pro annual × 2 on 2026-04-01T00:00Z: the summary she sees ...
    clock.set(utc(2026, 4, 1))
    quote = order_quote(account=acme, user=alice, product_code="webinar", plan_code="pro",
                        cycle_code="annual", quantity=2)
    credit, charge = quote.order.lines
    assert (credit.ratio, credit.amount) == (Fraction(275, 365), usd("-1790.14"))
    assert (charge.amount, charge.period) == (usd("4776.00"), Period(utc(2026, 4, 1), utc(2027, 4, 1)))
    assert quote.totals.amount_due == usd("2985.86")
    assert quote.next_billing_date == utc(2027, 4, 1)
    # ... is what she places, paid with her saved (default) card
    result = checkout_place(account=acme, user=alice, idempotency_key=key(), items=[quote.item],
                            expected=[quote.fingerprint])

    # Then a credit note for the unused time corrects the first invoice ...
    assert result.status == OrderStatus.PAID and result.amount_charged == usd("2985.86")
    (note,) = result.credit_notes
    assert (note.number, note.refers_to, note.total, note.status) == (
        "CN-2026-000001", first.invoice, -179014, DocumentStatus.PAID)
    assert note.snapshot["refers_to"] == "2026-000001"
    assert note.snapshot["lines"][0]["ratio"] == "55/73"  # 275/365, reduced
    assert note.snapshot["lines"][0]["amount"] == -179014
    # ... and the new year is invoiced, the credit applied and the rest paid by card
    invoice = result.invoice
    assert invoice.number == "2026-000002"
    assert (invoice.subtotal, invoice.tax, invoice.total) == (477600, 0, 477600)
    assert (invoice.credit_applied, invoice.amount_paid, invoice.amount_due) == (179014, 298586, 0)
    assert invoice.status == DocumentStatus.PAID
    line = invoice.snapshot["lines"][0]
    assert (line["period_start"], line["period_end"], line["quantity"], line["unit_amount"],
            line["ratio"], line["amount"]) == (
        "2026-04-01T00:00:00Z", "2027-04-01T00:00:00Z", 2, 238800, "1/1", 477600)
    assert invoice.snapshot["buyer"]["name"] == "Acme Corp"
    assert invoice.snapshot["seller"]["country"] == "FR"
    assert invoice.payments.get().status == PaymentStatus.SUCCEEDED
    assert SandboxCharge.objects.count() == 2
    # the ledger: each invoice charged, each payment and the credit in her favour; balance 0
    assert ledger_rows(acme) == [("invoice", -237600), ("payment", 237600),
                                 ("credit_note", 179014), ("invoice", -477600),
                                 ("payment", 298586)]
    assert account_balance(acme) == usd("0")
    # the subscription: Pro × 2, new period from the change instant, next billing 2027-04-01
    subscription.refresh_from_db()
    assert (subscription.plan.code, subscription.quantity, subscription.anchor) == (
        "pro", 2, utc(2026, 4, 1))
    assert (subscription.period_start, subscription.period_end) == (utc(2026, 4, 1), utc(2027, 4, 1))
    assert subscription.invoiced_amount == 477600 and subscription.invoice == invoice
    event = SubscriptionEvent.objects.filter(subscription=subscription).last()
    assert (event.kind, event.before["plan"], event.after["plan"]) == ("changed", "standard", "pro")
    # and a receipt e-mail with both documents attached went to the billing contact
    mail = OutboxMessage.objects.filter(to="alice@acme.example").order_by("id").last()
    assert (mail.template, mail.language, mail.context["kind"]) == ("receipt", "en", "change")
    assert mail.context["amount_paid"] == {"amount": 298586, "currency": "USD"}
    assert mail.attachments == [{"kind": "invoice", "id": invoice.pk},
                                {"kind": "credit_note", "id": note.pk}]
    filename, pdf = document_pdf(document=invoice, language="en")
    assert filename == "invoice-2026-000002.pdf" and pdf.startswith(b"%PDF")
    assert_books_balance()


def test_example_2_fewer_licenses_monthly_eur_french_vat_then_renewal(clock):
    # Given Bistro bought Lite monthly × 5 on 2026-03-01: 275.00 + 55.00 VAT, paid
    clock.set(utc(2026, 3, 1))
    bistro, jeanne = customer("Bistro Numérique", "FR", "jeanne@bistro.example", currency="EUR",
                              language="fr")
    first = buy(bistro, jeanne, "lite", "monthly", 5, card_token=card())
    assert (first.invoice.subtotal, first.invoice.tax, first.invoice.total) == (27500, 5500, 33000)
    assert first.invoice.snapshot["tax_rule"] == TaxRule.DOMESTIC
    assert_books_balance()

    # When she reduces it to 3 licenses on 2026-03-11T00:00Z
    clock.set(utc(2026, 3, 11))
    quote = order_quote(account=bistro, user=jeanne, product_code="webinar", plan_code="lite",
                        cycle_code="monthly", quantity=3)
    credit, charge = quote.order.lines
    assert credit.ratio == Fraction(21, 31)
    assert (credit.amount, credit.tax) == (eur("-186.29"), eur("-37.26"))
    assert (charge.amount, charge.tax) == (eur("165.00"), eur("33.00"))
    assert quote.totals.total == eur("-25.55") and quote.totals.credit_created == eur("25.55")
    charges_before = SandboxCharge.objects.count()
    result = checkout_place(account=bistro, user=jeanne, idempotency_key=key(),
                            items=[quote.item], expected=[quote.fingerprint])

    # Then nothing is charged (no gateway call), and the account's credit becomes 25.55
    assert result.status == OrderStatus.PAID and result.amount_charged == eur("0")
    assert SandboxCharge.objects.count() == charges_before
    (note,) = result.credit_notes
    assert (note.number, note.subtotal, note.tax, note.total) == (
        "CN-2026-000001", -18629, -3726, -22355)
    assert (note.snapshot["lines"][0]["ratio"], note.snapshot["lines"][0]["tax_rate_bp"]) == (
        "21/31", 2000)
    invoice = result.invoice
    assert (invoice.number, invoice.subtotal, invoice.tax, invoice.total) == (
        "2026-000002", 16500, 3300, 19800)
    assert (invoice.credit_applied, invoice.amount_paid, invoice.amount_due) == (19800, 0, 0)
    assert ledger_rows(bistro) == [("invoice", -33000), ("payment", 33000),
                                   ("credit_note", 22355), ("invoice", -19800)]
    assert account_balance(bistro) == eur("25.55") == credit_balance(bistro)
    subscription = Subscription.objects.get(account=bistro)
    assert subscription.quantity == 3 and subscription.period_end == utc(2026, 4, 11)
    mail = OutboxMessage.objects.filter(to="jeanne@bistro.example").order_by("id").last()
    assert (mail.template, mail.language) == ("credit_created", "fr")
    assert mail.context["credit"] == {"amount": 2555, "currency": "EUR"}
    assert mail.context["balance"] == {"amount": 2555, "currency": "EUR"}
    assert {attachment["kind"] for attachment in mail.attachments} == {"invoice", "credit_note"}
    assert_books_balance()

    # And at the renewal on 2026-04-11 the order is 198.00: 25.55 of credit applied, 172.45 due
    renewal_at = utc(2026, 4, 11)
    clock.set(renewal_at)
    term = current_term(catalog_snapshot(), state_of(subscription))
    renewal = price_order(kind=OrderKind.RENEWAL, at=renewal_at, target=term.configuration,
                          tax=account_tax(bistro, renewal_at), credit_balance=credit_balance(bistro),
                          current=term)
    assert renewal.period == Period(utc(2026, 4, 11), utc(2026, 5, 11))
    assert renewal.totals.total == eur("198.00")
    assert renewal.totals.credit_applied == eur("25.55")
    assert renewal.totals.amount_due == eur("172.45")
    assert Document.objects.filter(kind=DocumentKind.INVOICE).count() == 2
