"""Real documents as PDF, read back with pypdf (issue 16): the buyer block from the billing
details, line texts in the document's language, how and when it was paid, the proration period
and ratio, where a credit note's amount went, the VAT mentions, the operator's logo and footer."""

from __future__ import annotations

import pytest

from prorata.accounts.billing_details import account_billing_details_update
from prorata.billing.models import Document, DocumentKind
from prorata.billing.receipts import document_pdf
from prorata_core.periods import utc
from tests.app.billing.test_pdf import text_of as pdf_text
from tests.app.subscriptions.support import buy
from tests.app.web.billing_support import acme_world, bistro_world

pytestmark = pytest.mark.usefixtures("demo_catalog")


def text_of(pdf: bytes) -> str:
    """The PDF's words, with the table's line wrapping undone."""
    return " ".join(pdf_text(pdf).split())


def newest(account, kind: str) -> Document:
    return Document.objects.filter(account=account, kind=kind).order_by("-id").first()


def bistro_change(clock):
    """DESIGN example 2: Bistro (FR, 20 % VAT) goes from Lite × 5 to Lite × 3 on 2026-03-11,
    after entering its billing details."""
    bistro = bistro_world(clock)
    account_billing_details_update(
        account=bistro.account, actor=bistro.user, name="Bistro Numérique SAS",
        billing_address="3 place du Marché\n69002 Lyon", country="FR", vat_number="",
        billing_email="compta@bistro.example", time_zone="Europe/Paris")
    clock.set(utc(2026, 3, 11))
    buy(bistro.account, bistro.user, "lite", "monthly", 3)
    return bistro


def test_a_french_credit_note_reads_french_with_its_ratio_and_where_it_went(clock):
    bistro = bistro_change(clock)
    credit_note = newest(bistro.account, DocumentKind.CREDIT_NOTE)
    _name, pdf = document_pdf(document=credit_note, language="fr")
    text = text_of(pdf)
    for expected in [
        "AVOIR", "Bistro Numérique SAS", "3 place du Marché", "69002 Lyon",
        "compta@bistro.example", "Temps non utilisé de Lite, mensuel, 5 licences",
        "11 mars 2026 au 1er avril 2026", "Au prorata : 21 jours sur 31",
        "Cet avoir corrige la facture 2026-000001.",
    ]:
        assert expected in text, expected
    assert "Unused time" not in text and "Émetteur".upper() in text
    # the change's new invoice took the credit (the net was in the customer's favour: the rest
    # stays on the account)
    invoice = newest(bistro.account, DocumentKind.INVOICE)
    assert f"appliqués à la facture {invoice.number}" in text
    assert "conservés en crédit sur votre compte" in text
    assert text.count("France") == 2  # once for the seller, once for the buyer


def test_an_english_invoice_says_how_and_when_it_was_paid(clock):
    acme = acme_world(clock)  # Standard annual × 2 paid by card on 2026-01-01, US: outside the EU
    invoice = newest(acme.account, DocumentKind.INVOICE)
    text = text_of(document_pdf(document=invoice, language="en")[1])
    assert "Standard, annual, 2 licenses" in text
    assert "$2,376.00 paid by card (Visa ending in 4242) on January 1, 2026." in text
    assert "VAT not applicable: the customer is established outside the European Union" in text
    assert "Prorated" not in text


def test_the_upgrade_credit_shows_275_of_365_days(clock):
    acme = acme_world(clock)
    clock.set(utc(2026, 4, 1))
    buy(acme.account, acme.user, "pro", "annual", 2)
    credit_note = newest(acme.account, DocumentKind.CREDIT_NOTE)
    text = text_of(document_pdf(document=credit_note, language="en")[1])
    assert "Unused time of Standard, annual, 2 licenses" in text
    assert "Prorated: 275 of 365 days" in text
    invoice = newest(acme.account, DocumentKind.INVOICE)
    assert f"$1,790.14 applied to invoice {invoice.number}." in text
    invoice_text = text_of(document_pdf(document=invoice, language="en")[1])
    assert "$1,790.14 paid from your account's credit on April 1, 2026." in invoice_text
    assert "$2,985.86 paid by card (Visa ending in 4242) on April 1, 2026." in invoice_text


def test_the_operator_logo_and_legal_footer_come_from_settings(clock, settings, tmp_path):
    logo = tmp_path / "logo.png"  # an 8 × 8 blue PNG, written with the standard library
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x24\x56\xd6" * 8 for _ in range(8))
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0,
                                                                          0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    settings.PRORATA_SELLER_LOGO = str(logo)
    settings.PRORATA_SELLER_LEGAL_FOOTER = "SAS au capital de 10 000 € · RCS Paris 303 265 045"
    acme = acme_world(clock)
    pdf = document_pdf(document=newest(acme.account, DocumentKind.INVOICE), language="en")[1]
    assert "SAS au capital de 10 000 € · RCS Paris 303 265 045" in text_of(pdf)
    assert b"/Subtype /Image" in pdf
