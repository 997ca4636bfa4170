"""DESIGN §3's worked examples 1 and 2 through the JSON API: quote, checkout with a card, then
the receipts, transactions and PDF the customer sees."""

from __future__ import annotations

import pytest

from prorata.billing.selectors import account_balance
from prorata_core.periods import utc
from tests.app.api.billing_support import (
    acme_with_standard_annual,
    bistro_with_lite_monthly,
    item,
    money,
)
from tests.app.subscriptions.support import assert_books_balance, card, usd

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def catalog(demo_catalog):
    return demo_catalog


def test_example_1_upgrade_quoted_and_checked_out_over_the_api(clock):
    # Given Acme with Standard annual × 2 since 2026-01-01 (invoiced 2,376.00)
    acme, _alice, api = acme_with_standard_annual(clock)
    # When its billing contact asks for the summary of Pro annual × 2 on 2026-04-01
    clock.set(utc(2026, 4, 1))
    response = api.quote(acme.pk, "pro", "annual", 2)
    assert response.status_code == 200, response.content
    quote = response.json()
    # Then: the credit for 275/365 of the year, the new year charged, 2,985.86 due now
    credit, charge = quote["lines"]
    assert (credit["kind"], credit["ratio"], credit["amount"]) == (
        "credit", "55/73", money("-1790.14", "USD"))
    assert (credit["period_start"], credit["period_end"]) == (
        "2026-04-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert (charge["kind"], charge["quantity"], charge["unit_amount"], charge["amount"]) == (
        "charge", 2, money("2388.00", "USD"), money("4776.00", "USD"))
    assert (charge["period_start"], charge["period_end"]) == (
        "2026-04-01T00:00:00Z", "2027-04-01T00:00:00Z")
    assert charge["tax_rate_bp"] == 0 and charge["tax"] == money("0.00", "USD")
    totals = quote["totals"]
    assert totals["subtotal"] == money("2985.86", "USD")
    assert totals["amount_due"] == money("2985.86", "USD")
    assert totals["credit_created"] == money("0.00", "USD")
    assert quote["currency"] == "USD"
    assert quote["period"] == {"start": "2026-04-01T00:00:00Z", "end": "2027-04-01T00:00:00Z"}
    assert quote["next_billing_date"] == "2027-04-01T00:00:00Z"
    assert quote["kind"] == "change" and quote["previous"]["plan"] == "standard"

    # When she checks out with the card 4242…
    response = api.checkout(acme.pk, {"items": [item("pro", "annual", 2)],
                                      "expected": [quote["fingerprint"]], "card_token": card()})
    # Then it is paid: a credit note for the unused time and the new invoice
    assert response.status_code == 201, response.content
    result = response.json()
    assert result["status"] == "paid"
    assert result["amount_charged"] == money("2985.86", "USD")
    assert result["next_billing_dates"] == {"webinar": "2027-04-01T00:00:00Z"}
    invoice = result["invoice"]
    (note,) = result["credit_notes"]
    assert (invoice["number"], invoice["total"], invoice["credit_applied"],
            invoice["amount_paid"], invoice["amount_due"]) == (
        "2026-000002", money("4776.00", "USD"), money("1790.14", "USD"),
        money("2985.86", "USD"), money("0.00", "USD"))
    assert (note["number"], note["total"], note["refers_to"]) == (
        "CN-2026-000001", money("-1790.14", "USD"), "2026-000001")
    assert account_balance(acme) == usd("0")

    # And the receipts list shows them with the first invoice, newest first
    documents = api.get(f"/api/v1/accounts/{acme.pk}/invoices").json()
    assert documents["has_more"] is False and documents["next_cursor"] is None
    assert [(d["kind"], d["number"]) for d in documents["data"]] == [
        ("invoice", "2026-000002"), ("credit_note", "CN-2026-000001"),
        ("invoice", "2026-000001")]
    only_notes = api.get(f"/api/v1/accounts/{acme.pk}/invoices?kind=credit_note").json()
    assert [d["number"] for d in only_notes["data"]] == ["CN-2026-000001"]
    detail = api.get(f"/api/v1/accounts/{acme.pk}/invoices/{note['id']}").json()
    assert detail["lines"][0]["ratio"] == "55/73"
    assert detail["lines"][0]["amount"] == money("-1790.14", "USD")
    assert detail["buyer"]["name"] == "Acme Corp"

    # And the transactions show each charge, credit and payment, newest first
    page = api.get(f"/api/v1/accounts/{acme.pk}/transactions").json()
    assert [(e["kind"], e["amount"]["decimal"]) for e in page["data"]] == [
        ("payment", "2985.86"), ("invoice", "-4776.00"), ("credit_note", "1790.14"),
        ("payment", "2376.00"), ("invoice", "-2376.00")]
    assert page["next_cursor"] is None
    assert page["data"][1]["document"]["number"] == \
        "2026-000002"

    # And each receipt is downloadable as PDF
    pdf = api.get(invoice["pdf_url"])
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert 'filename="invoice-2026-000002.pdf"' in pdf["Content-Disposition"]
    assert pdf.content.startswith(b"%PDF")
    note_pdf = api.get(f"{note['pdf_url']}?language=fr")
    assert note_pdf.status_code == 200 and note_pdf.content.startswith(b"%PDF")

    # And the subscription is Pro × 2 until 2027-04-01
    (subscription,) = api.get(f"/api/v1/accounts/{acme.pk}/subscriptions").json()["data"]
    assert (subscription["plan"], subscription["quantity"], subscription["status"],
            subscription["next_billing_date"]) == ("pro", 2, "active", "2027-04-01T00:00:00Z")
    assert subscription["invoiced_amount"] == money("4776.00", "USD")
    assert_books_balance()


def test_example_2_fewer_licenses_creates_a_credit_of_25_55(clock):
    # Given Bistro with Lite monthly × 5 since 2026-03-01, French VAT
    bistro, _bea, api = bistro_with_lite_monthly(clock)
    clock.set(utc(2026, 3, 11))
    # When it reduces to 3 licenses
    quote = api.quote(bistro.pk, "lite", "monthly", 3).json()
    credit, charge = quote["lines"]
    assert (credit["amount"], credit["tax"], credit["ratio"]) == (
        money("-186.29", "EUR"), money("-37.26", "EUR"), "21/31")
    assert (charge["amount"], charge["tax"], charge["tax_rate_bp"]) == (
        money("165.00", "EUR"), money("33.00", "EUR"), 2000)
    assert quote["totals"]["total"] == money("-25.55", "EUR")
    assert quote["totals"]["amount_due"] == money("0.00", "EUR")
    assert quote["totals"]["credit_created"] == money("25.55", "EUR")
    assert quote["next_billing_date"] == "2026-04-11T00:00:00Z"
    # Then checking out charges nothing (no card needed) and leaves 25.55 of credit
    response = api.checkout(bistro.pk, {"items": [item("lite", "monthly", 3)],
                                        "expected": [quote["fingerprint"]]})
    assert response.status_code == 201, response.content
    result = response.json()
    assert result["status"] == "paid"
    assert result["amount_charged"] == money("0.00", "EUR")
    assert result["credit_created"] == money("25.55", "EUR")
    assert account_balance(bistro).amount == 2555
    # and the next quote shows the credit the account holds
    again = api.quote(bistro.pk, "lite", "monthly", 4).json()
    assert again["credit_balance"] == money("25.55", "EUR")
    assert_books_balance()
