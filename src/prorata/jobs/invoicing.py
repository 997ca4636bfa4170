"""The billing run's invoicing step, set-based: due subscriptions renewed a chunk at a time.

Chunks of due subscriptions are claimed with their accounts (:mod:`prorata.jobs.claim`), priced in
Python by the one engine (``price_order(kind=RENEWAL)``, the account's credit applied first), and
written in one transaction per chunk with bulk inserts (``COPY`` on PostgreSQL, ``executemany`` on
SQLite, :mod:`prorata.common.bulk`): the invoice with its gapless number and snapshot, its line,
its ledger entry, the balance, the :class:`~prorata.jobs.models.Renewal` row (unique per
subscription period: the exactly-once rule), the pending card payment, and the subscription's next
period (the Renewal row is also the subscription's history entry for that period: no second row
repeats it). A chunk that fails is redone one renewal per transaction, so one bad subscription
never blocks the rest.

Who may call: :func:`~prorata.jobs.billing_run.bill_run` and the run's worker processes
(:mod:`prorata.jobs.workers`).
"""

from __future__ import annotations

import gc
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from prorata.accounts.models import BillingMode
from prorata.billing.locks import lock_counters
from prorata.billing.models import (
    AccountBalance,
    Document,
    DocumentLine,
    LedgerEntry,
    LedgerKind,
    Payment,
)
from prorata.billing.renewals import Card, renewal_record
from prorata.billing.services import billing_contacts, document_events, seller_details
from prorata.billing.writer import (
    DOCUMENT_COLUMNS,
    LINE_COLUMNS,
    PAYMENT_COLUMNS,
    RENEWAL_COLUMNS,
    RenewalRows,
    buyer_of,
    document_entry_amount,
    document_snapshot,
    document_year,
    ledger_memo,
    receipt_context_for_renewal,
    receipt_messages,
    renewal_build,
    renewal_order,
)
from prorata.catalog.models import BillingCycle, Plan
from prorata.catalog.selectors import catalog_snapshot
from prorata.common import faults
from prorata.common.bulk import as_json, insert_rows, pg_array, reserve_ids, sqlite_value
from prorata.common.db import JOB_ATTEMPTS, WriterPacer, prepared_cursor, retry_transient
from prorata.jobs.claim import Claim, Due, claim_due
from prorata.jobs.models import Renewal
from prorata.notifications.outbox import outbox_save_many
from prorata.subscriptions.models import Subscription
from prorata.webhooks.events import WebhookBatch
from prorata_core.catalog import Catalog
from prorata_core.errors import ProrataError
from prorata_core.money import Money
from prorata_core.numbering import INVOICE_SERIES, format_number
from prorata_core.orders import Configuration
from prorata_core.periods import Period
from prorata_core.tax import TaxDecision, tax_decision

if TYPE_CHECKING:
    from prorata.jobs.billing_run import RunStats

logger = logging.getLogger(__name__)


def renew_due(
    *, at: datetime, chunk_size: int, partition: tuple[int, int] | None, stats: RunStats,
    claim: Claim, keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Renew, chunk after chunk, every subscription due at ``at`` (of ``partition``), as long as
    ``keep_going()`` says so before each chunk; ``claim`` says where the claims stand and which
    order they walk (:class:`~prorata.jobs.claim.Claim`), ``stats`` counts what was done."""
    catalog, codes = catalog_snapshot(), _Codes.load()
    pacer = WriterPacer()
    while keep_going():
        pacer.pause()
        if renew_chunk(at=at, catalog=catalog, codes=codes, chunk_size=chunk_size,
                       partition=partition, stats=stats, claim=claim):
            continue
        if not claim.restart():
            return


@retry_transient(attempts=JOB_ATTEMPTS)
def renew_chunk(
    *,
    at: datetime,
    catalog: Catalog,
    codes: _Codes,
    chunk_size: int,
    partition: tuple[int, int] | None,
    stats: RunStats,
    claim: Claim,
) -> int:
    """Claim and renew up to ``chunk_size`` due subscriptions in one transaction; return how many
    were claimed (0: nothing is due any more)."""
    with transaction.atomic():
        due = claim.take(at=at, limit=chunk_size, partition=partition, skip=stats.failed_ids)
        if not due:
            return 0
        faults.point("after_lock")
        # Written in id order (claimed oldest first, or in id order already): the chunk's rows
        # then reach each table and index (by subscription, by account) in ascending key order.
        due.sort(key=_by_id)
        try:
            with transaction.atomic():
                _renew(due, at=at, catalog=catalog, codes=codes)
            stats.renewed += len(due)
            stats.chunks += 1
            return len(due)
        except (IntegrityError, ProrataError, ValueError, KeyError) as error:
            logger.warning("billing run: chunk of %d failed (%s); one by one", len(due), error)
    # One renewal per transaction: the good ones land, the bad one is skipped for this run. Each
    # through the services' road (the same rows, saved through the ORM): speed does not matter
    # here, and one road fewer to keep in step.
    stats.fallbacks += 1
    for item in due:
        with transaction.atomic():
            again = claim_due(at=at, limit=1, partition=None, skip=[], only=item.id)
            if not again:
                continue  # renewed meanwhile by another run
            try:
                with transaction.atomic():
                    renewed = renewal_record(subscription_id=item.id, at=at, catalog=catalog)
                stats.renewed += renewed is not None
            except (IntegrityError, ProrataError, ValueError, KeyError) as error:
                logger.error("billing run: subscription %s not renewed: %s", item.id, error)
                stats.failed_ids.append(item.id)
    return len(due)


def _by_id(item: Due) -> int:
    return item.id


_BALANCES_AND_CARDS_SQL = """
SELECT b.account_id, b.currency, b.balance, NULL, NULL, NULL
  FROM billing_accountbalance b WHERE b.account_id {ids}
UNION ALL
SELECT m.account_id, NULL, NULL, m.id, m.brand, m.last4
  FROM payments_paymentmethod m
 WHERE m.account_id {ids} AND m.is_default AND m.removed_at IS NULL
"""


def _balances_and_cards(
    account_ids: list[int],
) -> tuple[dict[tuple[int, str], int], dict[int, Card]]:
    """The accounts' stored balances by (account, currency), and their default cards, in one
    query (read after the claim locked the accounts, so nothing changes them meanwhile)."""
    params: list[Any]
    if connection.vendor == "postgresql":
        ids = pg_array(account_ids)
        sql, params = _BALANCES_AND_CARDS_SQL.format(ids="= ANY(%s::bigint[])"), [ids, ids]
    else:
        marks = f"IN ({', '.join(['%s'] * len(account_ids))})"
        sql, params = _BALANCES_AND_CARDS_SQL.format(ids=marks), [*account_ids, *account_ids]
    balances: dict[tuple[int, str], int] = {}
    cards: dict[int, Card] = {}
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        for account_id, currency, balance, card_id, brand, last4 in cursor.fetchall():
            if card_id is None:
                balances[(account_id, currency)] = balance
            else:
                cards[account_id] = Card(card_id, brand, last4)
    return balances, cards


@dataclass(frozen=True, slots=True)
class _Codes:
    """Catalog codes by primary key, read once per run (the engine works with codes)."""

    plans: dict[int, str]
    cycles: dict[int, str]

    @classmethod
    def load(cls) -> _Codes:
        return cls(dict(Plan.objects.values_list("id", "code")),
                   dict(BillingCycle.objects.values_list("id", "code")))


_LEDGER_COLUMNS = ("account_id", "currency", "at", "kind", "amount", "document_id", "memo")


def _renew(due: list[Due], *, at: datetime, catalog: Catalog, codes: _Codes) -> None:
    """:func:`_renew_rows` with the cyclic garbage collector paused: a chunk's rows are
    thousands of small tuples that live until the chunk is written, so the collector would
    otherwise run again and again over them and the whole heap for nothing (none of them forms
    a cycle; reference counting frees them). Measured on 4,000 renewals: the rows' building
    75 → 52 µs per renewal."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        _renew_rows(due, at=at, catalog=catalog, codes=codes)
    finally:
        if enabled:
            gc.enable()


def _renew_rows(due: list[Due], *, at: datetime, catalog: Catalog, codes: _Codes) -> None:
    """Price and write the renewals of ``due`` (claimed and locked by the caller), set-based.

    Their rows are :mod:`prorata.billing.writer`'s (:func:`~prorata.billing.writer.renewal_build`,
    the same as :func:`~prorata.billing.renewals.renewal_record` saves through the ORM); only how
    they reach the database differs. The rows that name an invoice are written first (the foreign
    keys are checked at commit), the invoices themselves last: only then is the shared counter
    locked, so the invoices are written once, already numbered, and concurrent runs wait on the
    counter only for that last step.
    """
    balances, cards = _balances_and_cards(sorted({item.account_id for item in due}))
    seller_country = settings.PRORATA_SELLER_COUNTRY
    taxes: dict[tuple[str, str], TaxDecision] = {}
    configs: dict[tuple[int, int, int, int, str], Configuration] = {}
    built: list[tuple[Due, RenewalRows]] = []
    year = document_year(at)  # every invoice of the chunk is issued at ``at``
    for item in due:
        tax_key = (item.country, item.vat_number)
        tax = taxes.get(tax_key)
        if tax is None:
            tax = taxes[tax_key] = tax_decision(
                seller_country=seller_country, customer_country=item.country,
                customer_vat_number=item.vat_number or None, at=at,
            )
        # One engine configuration per plan, cycle, quantity and price in a chunk (a cache:
        # the values are those renewal_order would build).
        config_key = (item.plan_id, item.cycle_id, item.quantity, item.unit_amount, item.currency)
        config = configs.get(config_key)
        if config is None:
            config = configs[config_key] = Configuration(
                catalog.plan(codes.plans[item.plan_id]), catalog.cycle(codes.cycles[item.cycle_id]),
                item.quantity, Money(item.unit_amount, item.currency))
        balance_key = (item.account_id, item.currency)
        order = renewal_order(
            catalog=catalog, plan_code=config.plan.code, cycle_code=config.cycle.code,
            quantity=item.quantity, unit_amount=item.unit_amount, currency=item.currency,
            period=Period(item.period_start, item.period_end), anchor=item.anchor,
            invoiced_amount=item.invoiced_amount, tax=tax,
            credit=balances.get(balance_key, 0), at=at, configuration=config)
        balances[balance_key] = balances.get(balance_key, 0) - order.totals.total.amount
        card = cards.get(item.account_id)
        built.append((item, renewal_build(
            order=order, subscription_id=item.id, account_id=item.account_id,
            corporate=item.billing_mode == BillingMode.CORPORATE,
            payment_terms_days=item.payment_terms_days, card_id=card.pk if card else None,
            card_label=card.label if card else "", at=at, year=year)))

    document_ids = reserve_ids(Document._meta.db_table, len(built))
    rows = _ChunkRows.build(built, document_ids)
    # SQLite holds its one write lock from BEGIN, so the counter costs nothing there; but it
    # checks a deferred foreign key by scanning the referring tables whenever the referred row is
    # inserted after them. So: the invoices first on SQLite, last on PostgreSQL (below).
    invoices_last = connection.vendor == "postgresql"
    if not invoices_last:
        numbers = _number_documents(len(document_ids), at=at)
        faults.point("after_number")
        insert_rows(Document._meta.db_table, DOCUMENT_COLUMNS, rows.documents(numbers))
        faults.point("after_invoice")
    insert_rows(DocumentLine._meta.db_table, LINE_COLUMNS, rows.lines)
    # The unique constraint on (subscription, period_start) refuses a period twice: exactly once.
    insert_rows(Renewal._meta.db_table, RENEWAL_COLUMNS, rows.renewals)
    insert_rows(Payment._meta.db_table, PAYMENT_COLUMNS, rows.payments)
    faults.point("after_payment_row")
    _advance_subscriptions(rows.updates)
    _move_balances(rows.deltas)
    if invoices_last:
        # Gapless numbers last: the counter row is shared by every run and checkout, so it is
        # locked (after the accounts and subscriptions, locks.py) only for the numbering and the
        # rows that carry the numbers, just before the commit; workers run side by side until
        # then. (Foreign keys are checked at commit: the lines may name invoices not yet written.)
        numbers = _number_documents(len(document_ids), at=at)
        faults.point("after_number")
        insert_rows(Document._meta.db_table, DOCUMENT_COLUMNS, rows.documents(numbers))
        faults.point("after_invoice")
    insert_rows(LedgerEntry._meta.db_table, _LEDGER_COLUMNS, rows.ledger(numbers))
    if rows.settled:
        _receipts_for_credit_paid(rows.settled, numbers=rows.numbers_of(numbers), at=at,
                                  catalog=catalog)
    _webhook_events(built, document_ids=document_ids, numbers=numbers)


def _webhook_events(built: list[tuple[Due, RenewalRows]], *, document_ids: list[int],
                    numbers: list[tuple[int, str]]) -> None:
    """The chunk's webhook events (``invoice.created``, and ``invoice.paid`` for those the
    credit paid), as :func:`~prorata.billing.services.document_events` builds them for the ORM
    road, written in two bulk statements. The invoices are new: their keys are fresh."""
    webhooks = WebhookBatch()
    if not (webhooks.wants("invoice.created") or webhooks.wants("invoice.paid")):
        return
    for (_item, renewal), document_id, (_sequence, number) in zip(
            built, document_ids, numbers, strict=True):
        document_events(webhooks, document_id=document_id, number=number,
                        head=renewal.document.head, lines=renewal.document.lines)
    webhooks.save(fresh=True)


@dataclass(slots=True)
class _ChunkRows:
    """A chunk's rows, as :mod:`prorata.billing.writer` built them, in the column orders of its
    ``*_COLUMNS``, before any lock on the counter.

    The invoices and ledger entries wait for their numbers: :meth:`documents` and :meth:`ledger`
    complete them. A snapshot is serialised here as JSON text without its number, which
    :meth:`documents` puts first once assigned (what
    :func:`~prorata.billing.writer.snapshot_with_number` does to the dict).
    """

    document_heads: list[tuple[Any, ...]] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    lines: list[tuple[Any, ...]] = field(default_factory=list)
    renewals: list[tuple[Any, ...]] = field(default_factory=list)
    payments: list[tuple[Any, ...]] = field(default_factory=list)
    updates: list[tuple[datetime, datetime, int, int, int]] = field(default_factory=list)
    deltas: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    settled: list[tuple[Due, RenewalRows, int]] = field(default_factory=list)
    document_ids: list[int] = field(default_factory=list)

    @classmethod
    def build(cls, built: list[tuple[Due, RenewalRows]], document_ids: list[int]) -> _ChunkRows:
        rows = cls(document_ids=document_ids)
        seller = seller_details()
        buyers: dict[int, dict[str, str]] = {}
        invoice_ledger = LedgerKind.INVOICE.value
        for (item, renewal), document_id in zip(built, document_ids, strict=True):
            document, head = renewal.document, renewal.document.head
            buyer = buyers.get(item.account_id)
            if buyer is None:
                buyer = buyers[item.account_id] = buyer_of(
                    name=item.name, address=item.billing_address, country=item.country,
                    vat_number=item.vat_number, email=item.billing_email)
            rows.snapshots.append(as_json(document_snapshot(
                document, seller=seller, buyer=buyer, refers_to_number=None)))
            rows.document_heads.append(head)
            rows.lines.extend((document_id, *line) for line in document.lines)
            rows.entries.append((head.account_id, head.currency, head.issued_at, invoice_ledger,
                                 document_entry_amount(head), document_id))
            rows.deltas[(head.account_id, head.currency)] += document_entry_amount(head)
            if renewal.payment is not None:
                rows.payments.append((document_id, *renewal.payment))
            if renewal.settled:
                rows.settled.append((item, renewal, document_id))
            rows.renewals.append((document_id, *renewal.renewal))
            rows.updates.append((renewal.order.period.start, renewal.order.period.end,
                                 renewal.invoiced_amount, document_id, item.id))
        return rows

    def documents(self, numbers: list[tuple[int, str]]) -> list[tuple[Any, ...]]:
        """The invoices' rows with their (sequence, number), in the order they were built."""
        return [
            (document_id, sequence, number, *head, f'{{"number":"{number}",{snapshot[1:]}')
            for document_id, head, snapshot, (sequence, number) in zip(
                self.document_ids, self.document_heads, self.snapshots, numbers, strict=True)
        ]

    def ledger(self, numbers: list[tuple[int, str]]) -> list[tuple[Any, ...]]:
        """One invoice entry per renewal, its memo naming the invoice's number."""
        invoice_ledger = LedgerKind.INVOICE.value
        return [(*entry, ledger_memo(invoice_ledger, number=number))
                for entry, (_sequence, number) in zip(self.entries, numbers, strict=True)]

    def numbers_of(self, numbers: list[tuple[int, str]]) -> dict[int, str]:
        return {pk: number for pk, (_, number) in zip(self.document_ids, numbers, strict=True)}


def _number_documents(count: int, *, at: datetime) -> list[tuple[int, str]]:
    """Take ``count`` gapless (sequence, number) pairs of this year's invoice series (the year in
    the seller's time zone, as the documents' own), in order.

    Locks the counter row until the caller's transaction ends: call last, just before commit."""
    year = document_year(at)
    counter = lock_counters([(INVOICE_SERIES, year)])[(INVOICE_SERIES, year)]
    first = counter.last + 1
    counter.last += count
    counter.save(update_fields=["last"])
    return [(sequence, format_number(INVOICE_SERIES, year, sequence))
            for sequence in range(first, first + count)]


def _advance_subscriptions(updates: list[tuple[datetime, datetime, int, int, int]]) -> None:
    """Move each subscription to its new period (rows: start, end, invoiced, invoice id, id)."""
    table = connection.ops.quote_name(Subscription._meta.db_table)
    with prepared_cursor() as cursor:
        if connection.vendor == "postgresql":
            starts, ends, invoiced, invoices, ids = (pg_array(column) for column in zip(
                *updates, strict=True))
            cursor.execute(
                f"UPDATE {table} AS s SET period_start = v.ps, period_end = v.pe, "  # noqa: S608
                "invoiced_amount = v.inv, invoice_id = v.doc, version = s.version + 1 "
                "FROM unnest(%s::timestamptz[], %s::timestamptz[], %s::bigint[], %s::bigint[], "
                "%s::bigint[]) AS v(ps, pe, inv, doc, id) WHERE s.id = v.id",
                [starts, ends, invoiced, invoices, ids],
            )
            return
        cursor.executemany(
            f"UPDATE {table} SET period_start = %s, period_end = %s, invoiced_amount = %s, "  # noqa: S608
            "invoice_id = %s, version = version + 1 WHERE id = %s",
            [(sqlite_value(start), sqlite_value(end), inv, doc, pk) for start, end, inv, doc, pk in updates],
        )


def _move_balances(deltas: dict[tuple[int, str], int]) -> None:
    """Add each account's movement to its stored balance (created on its first entry)."""
    table = connection.ops.quote_name(AccountBalance._meta.db_table)
    with prepared_cursor() as cursor:
        if connection.vendor == "postgresql":
            accounts, currencies, amounts = (pg_array(column) for column in zip(
                *((account, currency, delta) for (account, currency), delta in deltas.items()),
                strict=True))
            cursor.execute(
                f"INSERT INTO {table} (account_id, currency, balance) "  # noqa: S608
                "SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::bigint[]) "
                "ON CONFLICT (account_id, currency) DO UPDATE "
                f"SET balance = {table}.balance + excluded.balance",
                [accounts, currencies, amounts],
            )
            return
        cursor.executemany(
            f"INSERT INTO {table} (account_id, currency, balance) VALUES (%s, %s, %s) "  # noqa: S608
            "ON CONFLICT (account_id, currency) DO UPDATE "
            f"SET balance = {table}.balance + excluded.balance",
            [(account_id, currency, delta) for (account_id, currency), delta in deltas.items()],
        )


def _receipts_for_credit_paid(
    settled: list[tuple[Due, RenewalRows, int]], *, numbers: dict[int, str], at: datetime,
    catalog: Catalog,
) -> None:
    """Queue receipts for the renewals the account's credit paid in full (no charge step): the
    rows :func:`~prorata.billing.writer.receipt_messages` builds (the outbox's checks included),
    saved in one statement."""
    contacts = billing_contacts({item.account_id for item, _, _ in settled})
    messages = []
    for item, renewal, document_id in settled:
        head = renewal.document.head
        context = receipt_context_for_renewal(
            number=numbers[document_id], head=head, lines=renewal.document.lines,
            catalog=catalog, period=renewal.order.period)
        messages.extend(receipt_messages(
            recipients=contacts.get(item.account_id, []), account_id=item.account_id,
            document_kind=head.kind,
            document_id=document_id, context=context, at=at))
    outbox_save_many(messages)
