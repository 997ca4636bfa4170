"""The account's billing history as documents (issue 16): one row per invoice or credit note, with
its status, its ledger rows on demand, the filters of "View all transactions", and an export of
the whole filtered list that streams in chunks (a 100,000-document account never sits in memory).

Status of a document (:func:`document_status` and its SQL twin in :func:`_with_status`):

- ``void``: voided;
- ``open``: an invoice with an amount still due;
- ``refunded``: an invoice one of whose payments was refunded (fully or in part);
- ``credit_applied``: an invoice settled by the account's credit alone, or a credit note (its
  amount went to the account's credit or to the invoice of the same order);
- ``paid``: any other settled invoice.

Pages are keyset pages on ``(issued_at, id)`` (the ``document_account_at`` index): the same cost
at any depth, no count. Only finalised documents are listed; their snapshot is never read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Case, CharField, Exists, OuterRef, Q, QuerySet, Value, When

from prorata.accounts.models import Account
from prorata.billing.models import (
    Document,
    DocumentKind,
    DocumentStatus,
    LedgerEntry,
    PaymentStatus,
    Refund,
)
from prorata.common.clock import instant_from_json

STATUSES = ("paid", "credit_applied", "refunded", "open", "void")

#: The columns an export reads, in order (no snapshot).
EXPORT_COLUMNS = ("id", "issued_at", "kind", "number", "row_status", "currency", "subtotal",
                  "tax", "total", "credit_applied", "amount_paid", "amount_due")


@dataclass
class HistoryRow:
    document: Document
    status: str
    entries: list[LedgerEntry] = field(default_factory=list)


@dataclass
class HistoryPage:
    rows: list[HistoryRow]
    next_cursor: str | None


def _with_status(rows: QuerySet[Document]) -> QuerySet[Document]:
    refunded = Refund.objects.filter(payment__invoice=OuterRef("pk"),
                                     status=PaymentStatus.SUCCEEDED)
    return rows.annotate(row_status=Case(
        When(status=DocumentStatus.VOID, then=Value("void")),
        When(kind=DocumentKind.INVOICE, amount_due__gt=0, then=Value("open")),
        When(Exists(refunded), then=Value("refunded")),
        When(kind=DocumentKind.CREDIT_NOTE, then=Value("credit_applied")),
        When(amount_paid=0, credit_applied__gt=0, then=Value("credit_applied")),
        default=Value("paid"), output_field=CharField(),
    ))


def _filtered(*, account: Account, kinds: list[str] | None, statuses: list[str] | None,
              start: datetime | None, end: datetime | None) -> QuerySet[Document]:
    rows = _with_status(Document.objects.filter(account=account, number__isnull=False))
    if kinds:
        rows = rows.filter(kind__in=kinds)
    if statuses:
        rows = rows.filter(row_status__in=statuses)
    if start is not None:
        rows = rows.filter(issued_at__gte=start)
    if end is not None:
        rows = rows.filter(issued_at__lt=end)
    return rows


def _parse_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    try:
        at, pk = str(cursor).rsplit("|", 1)
        # A row id is a positive 64-bit integer in ASCII digits: a larger one is no row (and
        # SQLite cannot even compare it: a 500), and int() would read other scripts' digits.
        if not (pk.isascii() and pk.isdigit() and 0 < int(pk) < 2**63):
            return None
        return instant_from_json(at), int(pk)
    except (ValueError, AttributeError, OverflowError):
        return None


def _after(rows: QuerySet[Document], position: tuple[datetime, int] | None) -> QuerySet[Document]:
    if position is None:
        return rows
    at, pk = position
    # issued_at <= at bounds the index range; the OR only breaks ties within one instant.
    return rows.filter(Q(issued_at__lt=at) | Q(issued_at=at, id__lt=pk), issued_at__lte=at)


def document_history(
    *, account: Account, kinds: list[str] | None = None, statuses: list[str] | None = None,
    start: datetime | None = None, end: datetime | None = None, cursor: str | None = None,
    limit: int = 25,
) -> HistoryPage:
    """A page of ``account``'s documents, newest first, in ``[start, end)``, each with its
    status and its ledger rows (two queries). ``cursor`` is the previous page's ``next_cursor``."""
    rows = _after(_filtered(account=account, kinds=kinds, statuses=statuses, start=start,
                            end=end), _parse_cursor(cursor) if cursor else None)
    documents = list(rows.defer("snapshot").order_by("-issued_at", "-id")[:limit + 1])
    more = len(documents) > limit
    documents = documents[:limit]
    entries: dict[int, list[LedgerEntry]] = {document.pk: [] for document in documents}
    for entry in (LedgerEntry.objects.filter(document_id__in=list(entries))
                  .select_related("payment").order_by("at", "id")):
        entries[entry.document_id].append(entry)  # type: ignore[index]
    last = documents[-1] if documents else None
    return HistoryPage(
        rows=[HistoryRow(document, document.row_status,  # type: ignore[attr-defined]
                         entries[document.pk]) for document in documents],
        next_cursor=f"{last.issued_at.isoformat()}|{last.pk}" if more and last else None,
    )


def document_history_export(
    *, account: Account, kinds: list[str] | None = None, statuses: list[str] | None = None,
    start: datetime | None = None, end: datetime | None = None, chunk: int = 2_000,
) -> Iterator[tuple[Any, ...]]:
    """Every filtered document of ``account`` as a tuple of :data:`EXPORT_COLUMNS`, newest first.

    Read in keyset chunks of ``chunk`` rows, each its own short query: memory holds one chunk,
    whatever the account's size, and no long-running cursor pins the database."""
    base = _filtered(account=account, kinds=kinds, statuses=statuses, start=start, end=end)
    position: tuple[datetime, int] | None = None
    while True:
        batch = list(_after(base, position).order_by("-issued_at", "-id")
                     .values_list(*EXPORT_COLUMNS)[:chunk])
        yield from batch
        if len(batch) < chunk:
            return
        position = (batch[-1][1], batch[-1][0])
