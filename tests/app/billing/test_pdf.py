"""Invoices and credit notes as PDF: what the snapshot says, in English and French, same bytes twice."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from prorata.billing.pdf import render_document_pdf
from tests.app.notifications.catalogs import install_french

SELLER = {"name": "Prorata Webinars SAS", "address": "12 rue de la Paix\n75002 Paris",
          "country": "FR", "vat_number": "FR40303265045"}

#: DESIGN §3 worked example 1: the upgrade to Pro annual × 2, paid after 1,790.14 of credit.
INVOICE = {
    "kind": "invoice", "number": "2026-000001", "issued_at": "2026-04-01T00:00:00Z",
    "due_at": None, "refers_to": None, "currency": "USD",
    "seller": SELLER,
    "buyer": {"name": "Acme Corp", "address": "1 Main Street\nSpringfield, IL 62701",
              "country": "US", "vat_number": ""},
    "lines": [{"description": "Webinar Pro, annual", "period_start": "2026-04-01T00:00:00Z",
               "period_end": "2027-04-01T00:00:00Z", "quantity": 2, "unit_amount": 238800,
               "ratio": "1", "amount": 477600, "tax_rate_bp": 0, "tax": 0}],
    "subtotal": 477600, "tax": 0, "total": 477600, "credit_applied": 179014,
    "amount_paid": 298586, "amount_due": 0,
    "tax_rule": "outside_eu", "mention": None, "status": "paid",
}

#: DESIGN §3 worked example 2: the unused 21/31 of Lite monthly × 5, with 20 % VAT.
CREDIT_NOTE = {
    "kind": "credit_note", "number": "2026-000003", "issued_at": "2026-03-11T00:00:00Z",
    "due_at": None, "refers_to": "2026-000002", "currency": "EUR",
    "seller": SELLER,
    "buyer": {"name": "Bistro Étoile SARL", "address": "3 place du Marché\n69001 Lyon",
              "country": "FR", "vat_number": ""},
    "lines": [{"description": "Webinar Lite, monthly: unused time",
               "period_start": "2026-03-11T00:00:00Z", "period_end": "2026-04-01T00:00:00Z",
               "quantity": 5, "unit_amount": 5500, "ratio": "21/31", "amount": 18629,
               "tax_rate_bp": 2000, "tax": 3726}],
    "subtotal": 18629, "tax": 3726, "total": 22355, "credit_applied": 0, "amount_paid": 0,
    "amount_due": 0, "tax_rule": "domestic", "mention": None, "status": "paid",
}

#: A French customer's invoice in euros, open, with a thousands separator to show.
FRENCH_INVOICE = INVOICE | {
    "number": "2026-000007", "issued_at": "2026-03-11T00:00:00Z",
    "due_at": "2026-04-10T00:00:00Z", "currency": "EUR", "buyer": CREDIT_NOTE["buyer"],
    "lines": [{"description": "Webinar Pro, annuel", "period_start": "2026-03-11T00:00:00Z",
               "period_end": "2027-03-11T00:00:00Z", "quantity": 2, "unit_amount": 219600,
               "ratio": "1", "amount": 439200, "tax_rate_bp": 2000, "tax": 87840}],
    "subtotal": 439200, "tax": 87840, "total": 527040, "credit_applied": 179014,
    "amount_paid": 0, "amount_due": 348026, "tax_rule": "domestic", "status": "open",
}


def text_of(pdf: bytes) -> str:
    """The PDF's text, with no-break and narrow no-break spaces read as plain spaces."""
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return re.sub(r"[\u00a0\u202f]", " ", text)


def test_an_english_invoice_shows_the_snapshot_to_the_cent():
    pdf = render_document_pdf(INVOICE, "en")
    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf)
    for expected in [
        "INVOICE", "No. 2026-000001", "Issue date: April 1, 2026", "PAID",
        "Prorata Webinars SAS", "VAT number: FR40303265045", "Acme Corp", "Springfield, IL 62701",
        "United States", "Webinar Pro, annual", "April 1, 2026 to April 1, 2027",
        "$2,388.00", "$4,776.00", "Subtotal excl. VAT", "VAT 0%", "$0.00", "Total incl. VAT",
        "Credit applied", "-$1,790.14", "Amount paid", "-$2,985.86", "Amount due",
        "Page 1 of 1",
    ]:
        assert expected in text, expected
    assert "Due date" not in text and "Prorated" not in text


def test_a_credit_note_names_the_invoice_it_corrects_and_the_exact_ratio():
    text = text_of(render_document_pdf(CREDIT_NOTE, "en"))
    for expected in [
        "CREDIT NOTE", "No. 2026-000003", "Corrects invoice 2026-000002",
        "Bistro Étoile SARL", "France", "March 11, 2026 to April 1, 2026",
        "Prorated: 21 of 31 days", "€55.00", "20%", "€186.29", "VAT 20%", "€37.26",
        "€223.55", "This credit note corrects invoice 2026-000002.",
    ]:
        assert expected in text, expected
    # a credit note has no payment lines, and is not stamped paid
    assert "Amount due" not in text and "PAID" not in text


def test_a_french_invoice_has_french_labels_dates_and_amounts(tmp_path, settings):
    install_french(tmp_path, settings, {
        "Invoice": "Facture", "No. %(number)s": "N° %(number)s",
        "Issue date: %(date)s": "Date d'émission : %(date)s",
        "Due date: %(date)s": "Date d'échéance : %(date)s",
        "Amount due": "Montant dû", "Credit applied": "Crédit appliqué",
        "Payment due": "À payer", "%(rate)s%%": "%(rate)s\u00a0%%",
        "VAT %(rate)s": "TVA %(rate)s",
    })
    text = text_of(render_document_pdf(FRENCH_INVOICE, "fr"))
    for expected in [
        "FACTURE", "N° 2026-000007", "Date d'émission : 11 mars 2026",
        "Date d'échéance : 10 avril 2026", "À PAYER", "France", "4 392,00 €", "TVA 20 %",
        "878,40 €", "5 270,40 €", "Crédit appliqué", "-1 790,14 €", "Montant dû", "3 480,26 €",
        "11 mars 2026", "11 mars 2027",
    ]:
        assert expected in text, expected


def test_the_reverse_charge_mention_and_void_status_are_shown():
    snapshot = CREDIT_NOTE | {
        "kind": "invoice", "refers_to": None, "status": "void", "tax_rule": "reverse_charge",
        "mention": "Reverse charge: VAT to be accounted for by the customer "
                   "(Article 196, Council Directive 2006/112/EC).",
        "buyer": {"name": "Globex GmbH", "address": "Hauptstraße 5\n10115 Berlin",
                  "country": "DE", "vat_number": "DE136695976"},
    }
    text = text_of(render_document_pdf(snapshot, "en"))
    assert "VOID" in text and "Germany" in text and "VAT number: DE136695976" in text
    assert "Hauptstraße 5" in text
    assert "Reverse charge: VAT to be accounted for by the customer" in text


def test_lines_at_several_rates_are_summed_per_rate_and_long_documents_get_more_pages():
    lines = [
        {"description": f"Line {n}", "period_start": None, "period_end": None, "quantity": 1,
         "unit_amount": 1000, "ratio": "1", "amount": 1000,
         "tax_rate_bp": 2000 if n % 2 else 550, "tax": 200 if n % 2 else 55}
        for n in range(60)
    ]
    snapshot = CREDIT_NOTE | {"lines": lines, "subtotal": 60000, "tax": 7650, "total": 67650}
    pdf = render_document_pdf(snapshot, "en")
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    text = text_of(pdf)
    assert pages >= 2 and f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert "VAT 5.5%" in text and "€16.50" in text  # 30 × 0.55
    assert "VAT 20%" in text and "€60.00" in text  # 30 × 2.00
    assert "Line 0 1 €10.00 5.5% €10.00" in text and "Line 59 1 €10.00 20% €10.00" in text


@pytest.mark.parametrize("snapshot", [INVOICE, CREDIT_NOTE])
def test_rendering_twice_gives_the_same_bytes(snapshot):
    assert render_document_pdf(snapshot, "en") == render_document_pdf(snapshot, "en")
