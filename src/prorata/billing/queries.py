"""The billing app's hand-written queries: the only SQL of the app that is not the ORM's
(the billing run's set-based writes are the run's own persister, in :mod:`prorata.jobs` and
:mod:`prorata.common.bulk`).

Each reads the same rows, into the same model instances, as the ORM form written beside it
(``<name>_orm``, or :func:`prorata.billing.selectors.books_balance` for the books' check): the
reference that ``tests/app/billing/test_ledger_page.py`` and ``test_books.py`` compare it with and
that ``benchmarks/queries.py`` measures it against (figures in ``benchmarks/README.md``). Who may
call: :mod:`prorata.billing.selectors`, :mod:`prorata.billing.locks` (the document counters) and
the tests' books check.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q

from prorata.billing.models import Document, DocumentCounter, LedgerEntry, Payment
from prorata.common.db import concrete_columns, model_from_row, prepared_cursor

_ENTRY_COLUMNS = ", ".join(f"e.{c}" for c in concrete_columns(LedgerEntry))
_DOCUMENT_COLUMNS = ", ".join(f"d.{c}" for c in concrete_columns(Document, deferred={"snapshot"}))
_PAYMENT_COLUMNS = ", ".join(f"p.{c}" for c in concrete_columns(Payment))
_PAGE_SQL = (
    f"SELECT {_ENTRY_COLUMNS}, {_DOCUMENT_COLUMNS}, {_PAYMENT_COLUMNS} "  # noqa: S608
    f"FROM {LedgerEntry._meta.db_table} e "
    f"LEFT JOIN {Document._meta.db_table} d ON d.id = e.document_id "
    f"LEFT JOIN {Payment._meta.db_table} p ON p.id = e.payment_id "
    "WHERE e.account_id = %s{filters} ORDER BY e.at DESC, e.id DESC LIMIT %s"
)
_ENTRY_END = len(concrete_columns(LedgerEntry))
_DOCUMENT_END = _ENTRY_END + len(concrete_columns(Document, deferred={"snapshot"}))
_ENTRY_DOCUMENT = LedgerEntry._meta.get_field("document")
_ENTRY_PAYMENT = LedgerEntry._meta.get_field("payment")


def ledger_page(
    *,
    account_id: int,
    kinds: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int,
) -> list[LedgerEntry]:
    """Up to ``limit`` ledger entries of the account, newest first (``at``, then ``id``), of
    ``kinds`` (all when empty), in ``[start, end)``, strictly after the ``(at, id)`` position
    ``after``; each with its document (snapshot deferred) and payment loaded."""
    filters, params = [], []
    if kinds:
        filters.append(f" AND e.kind IN ({', '.join(['%s'] * len(kinds))})")
        params.extend(kinds)
    adapt = connection.ops.adapt_datetimefield_value
    if start is not None:
        filters.append(" AND e.at >= %s")
        params.append(adapt(start))
    if end is not None:
        filters.append(" AND e.at < %s")
        params.append(adapt(end))
    if after is not None:
        at, pk = adapt(after[0]), after[1]
        # at <= X bounds the index range; the OR then only breaks ties within one instant.
        filters.append(" AND (e.at < %s OR (e.at = %s AND e.id < %s)) AND e.at <= %s")
        params.extend([at, at, pk, at])
    with prepared_cursor() as db:
        db.execute(_PAGE_SQL.format(filters="".join(filters)), [account_id, *params, limit])
        return [_entry(row) for row in db.fetchall()]


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    entry = model_from_row(LedgerEntry, row[:_ENTRY_END])
    document = (model_from_row(Document, row[_ENTRY_END:_DOCUMENT_END], deferred={"snapshot"})
                if row[_ENTRY_END] is not None else None)
    payment = (model_from_row(Payment, row[_DOCUMENT_END:])
               if row[_DOCUMENT_END] is not None else None)
    _ENTRY_DOCUMENT.set_cached_value(entry, document)
    _ENTRY_PAYMENT.set_cached_value(entry, payment)
    return entry


def ledger_page_orm(
    *,
    account_id: int,
    kinds: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    after: tuple[datetime, int] | None = None,
    limit: int,
) -> list[LedgerEntry]:
    """The reference for :func:`ledger_page`: the ORM query it replaced."""
    rows = (LedgerEntry.objects.filter(account_id=account_id)
            .select_related("document", "payment").defer("document__snapshot"))
    if kinds:
        rows = rows.filter(kind__in=kinds)
    if start is not None:
        rows = rows.filter(at__gte=start)
    if end is not None:
        rows = rows.filter(at__lt=end)
    if after is not None:
        at, pk = after
        rows = rows.filter(Q(at__lt=at) | Q(at=at, id__lt=pk), at__lte=at)
    return list(rows.order_by("-at", "-id")[:limit])


#: The books' identity (:func:`prorata.billing.selectors.books_balance`) in one aggregate query:
#: each account's rows that break it (none when the books balance). Every source is reduced to
#: (account, currency, amount) signed in the customer's favour and summed; a balanced account nets
#: to zero in each of the three comparisons. Not a shortcut for speed: a second, independent
#: statement of the identity, so that a bug in one is caught by the other after every scenario.
BOOKS_IMBALANCES_SQL = """
SELECT account_id, currency,
       SUM(stored) AS stored, SUM(ledger) AS ledger, SUM(documents) AS documents
FROM (
    SELECT account_id, currency, balance AS stored, 0 AS ledger, 0 AS documents
      FROM billing_accountbalance
    UNION ALL
    SELECT account_id, currency, 0, amount, 0 FROM billing_ledgerentry
    UNION ALL
    SELECT account_id, currency, 0, 0, -total FROM billing_document
     WHERE number IS NOT NULL
    UNION ALL
    SELECT account_id, currency, 0, 0, amount FROM billing_payment WHERE status = 'succeeded'
    UNION ALL
    SELECT account_id, currency, 0, 0, -amount FROM billing_refund WHERE status = 'succeeded'
) AS movements
GROUP BY account_id, currency
HAVING SUM(stored) <> SUM(ledger) OR SUM(ledger) <> SUM(documents)
ORDER BY account_id, currency
"""


def books_imbalances_sql() -> list[tuple[int, str, int, int, int]]:
    """:data:`BOOKS_IMBALANCES_SQL` run in the database: ``(account, currency, stored, ledger,
    documents and payments)`` for every account whose books do not balance."""
    with connection.cursor() as cursor:
        cursor.execute(BOOKS_IMBALANCES_SQL)
        return [tuple(row) for row in cursor.fetchall()]


# --- document numbers ----------------------------------------------------------------------------

_COUNTER = DocumentCounter._meta.db_table
#: One statement per (series, year): creates the counter at ``n`` or moves it by ``n``, and locks
#: the row until the transaction ends (PostgreSQL and SQLite ≥ 3.35 both read ``ON CONFLICT …
#: RETURNING``). It replaces the ORM's locked read, savepoint, insert and update (5 statements).
_TAKE_SQL = (
    f"INSERT INTO {_COUNTER} (series, year, last) VALUES (%s, %s, %s) "  # noqa: S608
    f"ON CONFLICT (series, year) DO UPDATE SET last = {_COUNTER}.last + excluded.last "
    "RETURNING last"
)


def counter_take(*, series: str, year: int, count: int) -> int:
    """Reserve the next ``count`` numbers of (``series``, ``year``); returns the last of them
    (the first is ``last − count + 1``). Inside the caller's transaction, which holds the
    counter's row lock until it ends: a rollback gives the numbers back (gapless). Who may call:
    :func:`prorata.billing.locks.counters_take` (it orders the counters)."""
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_SQL, [series, year, count])
        return int(cursor.fetchone()[0])


def counter_take_orm(*, series: str, year: int, count: int) -> int:
    """:func:`counter_take` through the ORM (the reference of the parity test)."""
    counter, _created = DocumentCounter.objects.select_for_update().get_or_create(
        series=series, year=year)
    counter.last += count
    counter.save(update_fields=["last"])
    return counter.last
