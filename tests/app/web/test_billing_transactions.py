"""View all transactions (S10, S12): filters, keyset pages, PDF receipts; and payment methods."""

from __future__ import annotations

import pytest

from prorata.billing.models import Document, LedgerEntry
from prorata.payments.models import PaymentMethod
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


def test_every_entry_newest_first(bistro):
    text = page_text(bistro.client().get(bistro.url + "transactions/"))
    entries = LedgerEntry.objects.filter(account=bistro.account)
    assert entries.count() > 5
    assert text.index("March 11, 2026") < text.index("March 8, 2026") < text.index("March 1, 2026")
    assert "Older" not in text


def test_filters_by_type_and_dates(bistro):
    client = bistro.client()
    payments = page_text(client.get(bistro.url + "transactions/", {"kind": "payment"}))
    assert "Payment" in payments and "Charge Invoice" not in payments
    assert "Credit Credit note" not in payments
    credits = page_text(client.get(bistro.url + "transactions/", {"kind": "credit_note"}))
    assert "Credit Credit note CN-2026-" in credits and "Payment " not in credits.split("Filter")[1]
    one_day = page_text(client.get(bistro.url + "transactions/",
                                   {"start": "2026-03-08", "end": "2026-03-08"}))
    assert "March 8, 2026" in one_day
    assert "March 1, 2026" not in one_day and "March 11, 2026" not in one_day


def test_keyset_pages_with_an_older_link_and_no_count(bistro, settings):
    from prorata.web import views_billing
    settings_limit = views_billing.TRANSACTIONS_PER_PAGE
    views_billing.TRANSACTIONS_PER_PAGE = 4
    try:
        client = bistro.client()
        first = client.get(bistro.url + "transactions/", {"kind": ""})
        html = first.content.decode()
        assert 'rel="next"' in html
        seen = []
        url = bistro.url + "transactions/"
        pages = 0
        while url:
            response = client.get(url)
            body = response.content.decode()
            seen += [line for line in body.split("<tr>") if "<td>" in line]
            pages += 1
            marker = body.split('rel="next"')[0].rsplit('href="', 1) if 'rel="next"' in body \
                else None
            url = (bistro.url + "transactions/" + marker[1].split('"')[0].replace("&amp;", "&")
                   ) if marker else None
        total = LedgerEntry.objects.filter(account=bistro.account).count()
        assert len(seen) == total and pages == (total + 3) // 4
        assert " of " not in page_text(first)
    finally:
        views_billing.TRANSACTIONS_PER_PAGE = settings_limit


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
    response = client.post(url, {"card_number": "5555 5555 5555 4444", "card_expiry": "11/31",
                                 "card_cvc": "321", "make_default": "1"})
    assert response.status_code == 302
    cards = list(PaymentMethod.objects.filter(account=acme.account).order_by("id"))
    assert [c.last4 for c in cards] == ["4242", "4444"]
    assert cards[1].is_default
    # make the first the default again, then remove the second
    client.post(f"{url}{cards[0].pk}/default/")
    client.post(f"{url}{cards[1].pk}/remove/")
    text = page_text(client.get(url))
    assert "Saved cards Visa ending in 4242 (expires 12/2030) Default Remove Renewals" in text
    # a mistyped card is a field error, nothing saved
    bad = client.post(url, {"card_number": "4242 4242 4242 4241", "card_expiry": "12/30",
                            "card_cvc": "123"})
    assert bad.status_code == 422
    assert "This card number is not valid" in page_text(bad)
    assert PaymentMethod.objects.filter(account=acme.account, removed_at__isnull=True).count() == 1
