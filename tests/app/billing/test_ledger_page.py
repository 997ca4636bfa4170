"""A page of the ledger (hand-written query) is exactly what the ORM's query gives: the same
entries in the same order for every filter and cursor, with their document (without its snapshot)
and payment loaded alongside."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Q

from prorata.billing.models import LedgerEntry, LedgerKind
from prorata.billing.selectors import _cursor, transactions_for_account
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, card

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_catalog")]

KINDS = [LedgerKind.INVOICE, LedgerKind.PAYMENT, LedgerKind.CREDIT_NOTE, LedgerKind.REFUND]


def _orm_page(account, kinds=None, start=None, end=None, after=None, limit=25):
    """The reference: the ORM query the selector replaced."""
    rows = LedgerEntry.objects.filter(account=account).select_related("document", "payment")
    if kinds:
        rows = rows.filter(kind__in=kinds)
    if start is not None:
        rows = rows.filter(at__gte=start)
    if end is not None:
        rows = rows.filter(at__lt=end)
    if after is not None:
        rows = rows.filter(Q(at__lt=after.at) | Q(at=after.at, id__lt=after.pk), at__lte=after.at)
    return list(rows.order_by("-at", "-id")[:limit])


def _shape(entry):
    document, payment = entry.document, entry.payment
    return (entry.pk, entry.at, entry.kind, entry.amount, entry.currency, entry.memo,
            None if document is None else (document.pk, document.kind, document.number,
                                           document.status, document.total),
            None if payment is None else (payment.pk, payment.method_label, payment.amount))


@pytest.fixture
def history(bistro, clock):
    """A paid purchase (an invoice and a payment entry) and 60 more entries, several at the same
    instant (ties broken by id), some naming the invoice or the payment."""
    account, jeanne = bistro
    first = buy(account, jeanne, "lite", "monthly", 5, card_token=card())
    invoice = first.invoice
    payment = invoice.payments.get()
    base = utc(2026, 1, 5)
    LedgerEntry.objects.bulk_create([
        LedgerEntry(account=account, currency="EUR", at=base + timedelta(hours=index // 3),
                    kind=KINDS[index % 4], amount=(-1) ** index * (index + 1) * 100,
                    memo=f"entry {index}",
                    document=invoice if index % 4 in (0, 2) else None,
                    payment=payment if index % 4 == 1 else None)
        for index in range(60)
    ])
    return account


@pytest.mark.parametrize("filters", [
    {},
    {"kinds": ["payment"]},
    {"kinds": ["invoice", "refund"]},
    {"start": utc(2026, 1, 5, 6)},
    {"end": utc(2026, 1, 5, 12)},
    {"start": utc(2026, 1, 5, 3), "end": utc(2026, 1, 5, 15), "kinds": ["credit_note"]},
])
def test_every_page_is_the_orm_s_page(history, filters):
    account = history
    cursor, after, pages = None, None, 0
    while True:
        page = transactions_for_account(account=account, cursor=cursor, limit=7, **filters)
        expected = _orm_page(account, after=after, limit=8, **filters)
        assert [_shape(e) for e in page.entries] == [_shape(e) for e in expected[:7]]
        assert page.next_cursor == (_cursor(expected[6]) if len(expected) > 7 else None)
        pages += 1
        if page.next_cursor is None:
            break
        cursor, after = page.next_cursor, page.entries[-1]
    assert pages >= 1


def test_an_entry_s_document_and_payment_need_no_query(history, django_assert_num_queries):
    with django_assert_num_queries(1):
        page = transactions_for_account(account=history, limit=25)
        shapes = [_shape(entry) for entry in page.entries]
    assert any(shape[6] for shape in shapes) and any(shape[7] for shape in shapes)
    document = next(entry.document for entry in page.entries if entry.document is not None)
    assert "snapshot" in document.get_deferred_fields()
    with django_assert_num_queries(1):
        assert document.snapshot["number"] == document.number  # loaded on demand, as before


@pytest.mark.parametrize("filters", [{}, {"kinds": ["payment", "refund"]},
                                     {"start": utc(2026, 1, 5, 3), "end": utc(2026, 1, 5, 15)}])
def test_the_query_module_s_orm_reference_is_the_same_page(history, filters):
    """benchmarks/queries.py measures the hand-written page against this reference."""
    from prorata.billing.queries import ledger_page, ledger_page_orm

    after = None
    for _ in range(3):
        page = ledger_page(account_id=history.pk, after=after, limit=9, **filters)
        reference = ledger_page_orm(account_id=history.pk, after=after, limit=9, **filters)
        assert [_shape(e) for e in page] == [_shape(e) for e in reference]
        assert all("snapshot" in e.document.get_deferred_fields()
                   for e in reference if e.document is not None)
        if not page:
            break
        after = (page[-1].at, page[-1].pk)
