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

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import F, Q

from prorata.accounts.models import Account, Membership, User
from prorata.billing.models import (
    AccountBalance,
    Document,
    DocumentCounter,
    LedgerEntry,
    Payment,
)
from prorata.common.db import concrete_columns, model_from_row, prepared_cursor, update_parts
from prorata.webhooks.models import WebhookEndpoint

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
#: One statement for every (series, year) of a transaction: creates each counter at ``n`` or
#: moves it by ``n``, and locks its row until the transaction ends (PostgreSQL and SQLite ≥ 3.35
#: both read ``ON CONFLICT … RETURNING``). The rows are given in sorted order and an insert takes
#: them in the order of its ``VALUES``, so the counters are still locked in sorted order (STYLE
#: rule 9). It replaces, per counter, the ORM's locked read, savepoint, insert and update.
_TAKE_SQL = (
    f"INSERT INTO {_COUNTER} (series, year, last) VALUES {{rows}} "  # noqa: S608
    f"ON CONFLICT (series, year) DO UPDATE SET last = {_COUNTER}.last + excluded.last "
    "RETURNING series, year, last"
)


def counters_reserve(counts: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """Reserve the next ``counts[(series, year)]`` numbers of each counter (counts > 0), in one
    statement; returns the last number reserved of each (the first is ``last − count + 1``).
    Inside the caller's transaction, which holds the counters' row locks until it ends: a rollback
    gives the numbers back (gapless). Who may call: :func:`prorata.billing.locks.counters_take`."""
    keys = sorted(counts)
    if not keys:
        return {}
    params: list[Any] = []
    for series, year in keys:
        params.extend([series, year, counts[series, year]])
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_SQL.format(rows=", ".join(["(%s, %s, %s)"] * len(keys))), params)
        return {(series, int(year)): int(last) for series, year, last in cursor.fetchall()}


def counters_reserve_orm(counts: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """:func:`counters_reserve` through the ORM, a counter at a time (the reference of the parity
    test): a locked read (and an insert on first use) and an update per counter."""
    return {key: counter_take_orm(series=key[0], year=key[1], count=counts[key])
            for key in sorted(counts)}


def counter_take(*, series: str, year: int, count: int) -> int:
    """:func:`counters_reserve` of one counter: the last of the ``count`` numbers reserved."""
    return counters_reserve({(series, year): count})[series, year]


def counter_take_orm(*, series: str, year: int, count: int) -> int:
    """:func:`counter_take` through the ORM (the reference of the parity test)."""
    counter, _created = DocumentCounter.objects.select_for_update().get_or_create(
        series=series, year=year)
    counter.last += count
    counter.save(update_fields=["last"])
    return counter.last


# --- the ledger and its stored balance ----------------------------------------------------------

_LEDGER = LedgerEntry._meta.db_table
_BALANCE = AccountBalance._meta.db_table
#: The entries and the balance's move in one statement (PostgreSQL: data-modifying ``WITH``).
#: The balance row is created by the first entry of a currency (the account lock the caller
#: holds makes that race-free) or moved by the entries' sum.
_POST_SQL = (
    f"WITH entries AS (INSERT INTO {_LEDGER} "  # noqa: S608
    "(account_id, currency, at, kind, amount, document_id, payment_id, refund_id, memo) "
    "SELECT %s, %s, %s, * FROM UNNEST(%s::varchar[], %s::bigint[], %s::bigint[], %s::bigint[], "
    "%s::bigint[], %s::varchar[]) RETURNING id), "
    f"moved AS (INSERT INTO {_BALANCE} (account_id, currency, balance) VALUES (%s, %s, %s) "
    f"ON CONFLICT (account_id, currency) DO UPDATE SET balance = {_BALANCE}.balance + "
    "excluded.balance) "
    "SELECT id FROM entries ORDER BY id"
)


def ledger_post(entries: Sequence[LedgerEntry], *, payment: Payment | None = None,
                payment_fields: Sequence[str] = ()) -> list[LedgerEntry]:
    """Insert ``entries`` (unsaved, of one account and currency, at one instant) and move the
    account's stored balance by their sum; returns them saved (with their ids). ``payment``
    (saved) has its ``payment_fields`` saved with them (the checkout's payment, succeeded with
    its invoice). On PostgreSQL one statement; elsewhere :func:`ledger_post_orm`. Inside the
    caller's transaction, under the account lock. Who may call:
    :func:`prorata.billing.services.ledger_append`."""
    if not entries or connection.vendor != "postgresql":
        return ledger_post_orm(entries, payment=payment, payment_fields=payment_fields)
    head = entries[0]
    if any((e.account_id, e.currency, e.at) != (head.account_id, head.currency, head.at)
           for e in entries):
        raise ValueError("A ledger post is of one account and currency, at one instant.")
    delta = sum(entry.amount for entry in entries)
    sql, also = _POST_SQL, []
    if payment is not None and payment_fields:
        sets, also = update_parts(payment, payment_fields)
        sql = (f"WITH paid AS (UPDATE {Payment._meta.db_table} SET {sets} "  # noqa: S608
               f"WHERE id = %s), {_POST_SQL.removeprefix('WITH ')}")
        also = [*also, payment.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*also,
            head.account_id, head.currency, head.at,
            [e.kind for e in entries], [e.amount for e in entries],
            [e.document_id for e in entries], [e.payment_id for e in entries],
            [e.refund_id for e in entries], [e.memo for e in entries],
            head.account_id, head.currency, delta,
        ])
        ids = [row[0] for row in cursor.fetchall()]
    for entry, pk in zip(entries, ids, strict=True):
        entry.pk = pk
        entry._state.adding = False
        entry._state.db = connection.alias
    return list(entries)


def ledger_post_orm(entries: Sequence[LedgerEntry], *, payment: Payment | None = None,
                    payment_fields: Sequence[str] = ()) -> list[LedgerEntry]:
    """:func:`ledger_post` through the ORM (SQLite's road, and the parity test's reference): the
    payment saved, the entries in one insert, then the balance moved, or created by the first
    entry."""
    if payment is not None and payment_fields:
        payment.save(update_fields=list(payment_fields))
    if not entries:
        return []
    head = entries[0]
    saved = LedgerEntry.objects.bulk_create(list(entries))
    delta = sum(entry.amount for entry in entries)
    updated = AccountBalance.objects.filter(
        account_id=head.account_id, currency=head.currency).update(balance=F("balance") + delta)
    if not updated:
        AccountBalance.objects.create(account_id=head.account_id, currency=head.currency,
                                      balance=delta)
    return saved


# --- the account locked for an order's second transaction, with who hears of it -----------------

#: A billing contact as :func:`account_lock_with_readers` reads it: (user id, e-mail, first name,
#: last name, language, active), by user id.
ContactRow = tuple[int, str, str, str, str, bool]

_ACCOUNT_COLUMNS = ", ".join(f"a.{c}" for c in concrete_columns(Account))
_ACCOUNT_END = len(concrete_columns(Account))
#: The account row locked, with two reads that tolerate a snapshot taken before the lock was
#: granted (a statement's subqueries see the database as it was when the statement began, which
#: may be before a concurrent transaction on the account committed): the active webhook endpoints
#: and the account's billing contacts. Neither is written under the account lock, so a change to
#: them is at most one statement late, as it would be a moment later anyway. What must be read
#: under the lock (the order, its payment, the balance) is read by the next statement.
_LOCK_WITH_READERS_SQL = (
    f"SELECT {_ACCOUNT_COLUMNS}, "  # noqa: S608
    "(SELECT json_agg(json_build_array(e.id, e.event_types) ORDER BY e.id) "
    f"FROM {WebhookEndpoint._meta.db_table} e WHERE e.is_active), "
    "(SELECT json_agg(json_build_array(m.user_id, u.email, u.first_name, u.last_name, "
    "u.language, u.is_active) ORDER BY m.user_id) "
    f"FROM {Membership._meta.db_table} m JOIN {User._meta.db_table} u ON u.id = m.user_id "
    "WHERE m.account_id = a.id AND m.is_billing_contact) "
    f"FROM {Account._meta.db_table} a WHERE a.id = %s FOR UPDATE OF a"
)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def account_lock_with_readers(
    account_id: int,
) -> tuple[Account, dict[str, list[int]], list[ContactRow]]:
    """Lock the account row (as :func:`prorata.billing.locks.lock_account`) and read, in the same
    statement on PostgreSQL, the active webhook endpoints subscribed to each event type
    (``{type: [endpoint id, …]}``, as :func:`prorata.webhooks.events.subscribers`) and the
    account's billing contacts (:data:`ContactRow`, by user id, inactive users included: the
    caller filters them as :func:`prorata.billing.services.billing_contacts` does). Elsewhere
    :func:`account_lock_with_readers_orm` (three statements; SQLite's ``IMMEDIATE`` transaction
    already holds the write lock). Inside ``transaction.atomic()``. Who may call:
    :func:`prorata.billing.services.lock_account_for_order`."""
    if connection.vendor != "postgresql":
        return account_lock_with_readers_orm(account_id)
    with prepared_cursor() as cursor:
        cursor.execute(_LOCK_WITH_READERS_SQL, [account_id])
        row = cursor.fetchone()
    if row is None:
        raise Account.DoesNotExist(f"Account {account_id} does not exist.")
    account = model_from_row(Account, row[:_ACCOUNT_END])
    endpoints, contacts = _json(row[_ACCOUNT_END]) or [], _json(row[_ACCOUNT_END + 1]) or []
    subscribed: dict[str, list[int]] = {}
    for endpoint_id, types in endpoints:
        for kind in _json(types) or ():
            subscribed.setdefault(kind, []).append(int(endpoint_id))
    return account, subscribed, [
        (int(user_id), email, first, last, language, bool(active))
        for user_id, email, first, last, language, active in contacts]


def account_lock_with_readers_orm(
    account_id: int,
) -> tuple[Account, dict[str, list[int]], list[ContactRow]]:
    """:func:`account_lock_with_readers` through the ORM, in three statements (SQLite's road and
    the parity test's reference)."""
    # As prorata.billing.locks.lock_account and prorata.webhooks.events.subscribers read them
    # (the service layer, which this module does not import).
    account = Account.objects.select_for_update().get(pk=account_id)
    subscribed: dict[str, list[int]] = {}
    for endpoint_id, types in (WebhookEndpoint.objects.filter(is_active=True)
                               .order_by("id").values_list("id", "event_types")):
        for kind in types or ():
            subscribed.setdefault(kind, []).append(endpoint_id)
    contacts = list(Membership.objects.filter(account_id=account_id, is_billing_contact=True)
                    .order_by("user_id").values_list(
                        "user_id", "user__email", "user__first_name", "user__last_name",
                        "user__language", "user__is_active"))
    return account, subscribed, contacts
