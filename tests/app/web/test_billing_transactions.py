"""View all transactions (S10, S12): filters, keyset pages, PDF receipts; and payment methods."""

from __future__ import annotations

import pytest

from prorata.billing.models import Document, LedgerEntry
from prorata.payments.models import PaymentMethod
from prorata.payments.sandbox import sandbox_token
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, customer
from tests.app.web.billing_support import World, acme_world, bistro_world
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.usefixtures("demo_catalog")


@pytest.fixture
def bistro(clock):
    """Bistro after its purchase and three license changes: 14 ledger entries."""
    world = bistro_world(clock)
    for day, quantity in ((5, 6), (8, 7), (11, 3)):
        clock.set(utc(2026, 3, day))
        buy(world.account, world.user, "lite", "monthly", quantity)
    return world


def document_rows(html: str) -> list[str]:
    """The documents table's main rows (each document's, not its ledger detail row)."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in html else ""
    return [row for row in body.split("<tr>")[1:] if "kind kind-" in row]


def test_one_row_per_document_newest_first_with_status_and_ledger_detail(bistro):
    html = bistro.client().get(bistro.url + "transactions/").content.decode()
    documents = Document.objects.filter(account=bistro.account, number__isnull=False)
    rows = document_rows(html)
    assert len(rows) == documents.count() == 7  # 4 invoices, 3 credit notes
    assert LedgerEntry.objects.filter(account=bistro.account).count() > len(rows)
    text = page_text(bistro.client().get(bistro.url + "transactions/"))
    assert text.index("March 11, 2026") < text.index("March 8, 2026") < text.index("March 1, 2026")
    first_invoice = documents.order_by("id").first()
    assert f"Ledger detail ({first_invoice.number})" in text
    assert "Paid" in text and "Credit applied" in text  # the credit notes' amounts went to credit
    assert "Older" not in text


def test_filters_by_type_status_and_dates(bistro):
    client = bistro.client()
    credits = client.get(bistro.url + "transactions/", {"kind": "credit_note"}).content.decode()
    assert len(document_rows(credits)) == 3
    assert all("kind-credit_note" in row for row in document_rows(credits))
    paid = client.get(bistro.url + "transactions/", {"status": "paid"}).content.decode()
    assert document_rows(paid) and all("status-doc-paid" in row for row in document_rows(paid))
    one_day = client.get(bistro.url + "transactions/", {"start": "2026-03-08", "end": "2026-03-08"})
    text = page_text(one_day)
    assert "March 8, 2026" in text
    assert "March 1, 2026" not in text and "March 11, 2026" not in text
    # the export link keeps the filters
    assert "transactions.csv?kind=credit_note" in credits


def test_unknown_filter_values_are_ignored_not_errors(bistro):
    response = bistro.client().get(bistro.url + "transactions/",
                                   {"kind": "bogus", "status": "nope", "start": "yesterday"})
    assert response.status_code == 200
    assert len(document_rows(response.content.decode())) == 7


def test_keyset_pages_with_an_older_link_and_no_count(bistro, settings):
    from prorata.web import views_transactions
    settings_limit = views_transactions.TRANSACTIONS_PER_PAGE
    views_transactions.TRANSACTIONS_PER_PAGE = 3
    try:
        client = bistro.client()
        first = client.get(bistro.url + "transactions/", {"kind": "invoice"})
        html = first.content.decode()
        assert 'rel="next"' in html
        seen = []
        url = bistro.url + "transactions/?kind=invoice"
        pages = 0
        while url:
            body = client.get(url).content.decode()
            seen += document_rows(body)
            pages += 1
            marker = body.split('rel="next"')[0].rsplit('href="', 1) if 'rel="next"' in body \
                else None
            url = (bistro.url + "transactions/" + marker[1].split('"')[0].replace("&amp;", "&")
                   ) if marker else None
            assert all("kind-invoice" in row for row in document_rows(body))  # filter kept
        total = Document.objects.filter(account=bistro.account, kind="invoice").count()
        assert len(seen) == total == 4 and pages == 2
        assert " of " not in page_text(first)
    finally:
        views_transactions.TRANSACTIONS_PER_PAGE = settings_limit


def test_the_csv_export_streams_the_filtered_documents(bistro):
    import csv
    import io

    response = bistro.client().get(bistro.url + "transactions.csv", {"kind": "invoice"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["issued_at", "type", "number", "status", "currency", "subtotal", "tax",
                       "total", "credit_applied", "amount_paid", "amount_due"]
    assert len(rows) == 5 and {row[1] for row in rows[1:]} == {"invoice"}
    first = rows[-1]  # oldest last: the purchase of Lite × 5 on 2026-03-01
    assert first[0] == "2026-03-01T00:00:00Z" and first[3:8] == [
        "paid", "EUR", "275.00", "55.00", "330.00"]


def test_a_receipt_downloads_as_pdf_and_another_accounts_is_404(bistro, clock):
    document = Document.objects.filter(account=bistro.account, number__isnull=False).first()
    response = bistro.client().get(f"{bistro.url}documents/{document.pk}.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    other, user = customer("Other", "US", "o@other.example", currency="USD")
    stranger = World(other, user)
    assert stranger.client().get(
        f"/billing/{other.pk}/documents/{document.pk}.pdf").status_code == 404
    assert stranger.client().get(f"{bistro.url}documents/{document.pk}.pdf").status_code == 404


def test_payment_methods_add_make_default_remove(clock):
    acme = acme_world(clock)
    client = acme.client()
    url = acme.url + "payment-methods/"
    # add a second card, not default
    response = client.post(url, {"card_token": sandbox_token("5555 5555 5555 4444"),
                                 "make_default": "1"})
    assert response.status_code == 302
    cards = list(PaymentMethod.objects.filter(account=acme.account).order_by("id"))
    assert [c.last4 for c in cards] == ["4242", "4444"]
    assert cards[1].is_default
    # make the first the default again, then remove the second
    client.post(f"{url}{cards[0].pk}/default/")
    client.post(f"{url}{cards[1].pk}/remove/")
    text = page_text(client.get(url))
    assert "Saved cards Visa ending in 4242 (expires 12/2030) Default Remove Renewals" in text
    # a token already used (or unknown, or missing) is a field error, nothing saved
    used = PaymentMethod.objects.filter(account=acme.account).first()
    token = sandbox_token()
    assert client.post(url, {"card_token": token}).status_code == 302
    client.post(f"{url}{PaymentMethod.objects.latest('id').pk}/remove/")
    for posted in ({"card_token": token}, {"card_token": "tok_sandbox_nope"}, {}):
        bad = client.post(url, posted)
        assert bad.status_code == 422
        assert ("The card details could not be used" in page_text(bad)
                or "Enter your card in the card form." in page_text(bad))
    assert used is not None
    assert PaymentMethod.objects.filter(account=acme.account, removed_at__isnull=True).count() == 1


def test_the_french_date_filter_reads_du_and_au(bistro):
    client = bistro.client()
    client.cookies["django_language"] = "fr"
    html = client.get(bistro.url + "transactions/").content.decode()
    assert '<label for="start">Du</label>' in html and '<label for="end">Au</label>' in html
    assert "Émetteur" not in html
