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

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from prorata.accounts.models import BillingMode, Membership
from prorata.billing.locks import lock_counters
from prorata.billing.models import (
    AccountBalance,
    Document,
    DocumentKind,
    DocumentLine,
    DocumentStatus,
    LedgerEntry,
    LedgerKind,
    Payment,
    PaymentMethodKind,
    PaymentStatus,
)
from prorata.billing.renewals import Card, renewal_payment_key
from prorata.billing.services import seller_details
from prorata.catalog.models import BillingCycle, Plan
from prorata.catalog.selectors import catalog_snapshot
from prorata.common.bulk import as_json, insert_rows, pg_array, reserve_ids, sqlite_value
from prorata.common.clock import format_instant
from prorata.common.db import prepared_cursor
from prorata.jobs.claim import Claim, Due, claim_due
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.context import money_json
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.subscriptions.models import Subscription
from prorata_core.catalog import Catalog
from prorata_core.errors import ProrataError
from prorata_core.money import Money
from prorata_core.numbering import INVOICE_SERIES, format_number
from prorata_core.orders import Configuration, Order, OrderKind, Term, price_order
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
    while keep_going():
        if renew_chunk(at=at, catalog=catalog, codes=codes, chunk_size=chunk_size,
                       partition=partition, stats=stats, claim=claim):
            continue
        if not claim.restart():
            return


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
    # One renewal per transaction: the good ones land, the bad one is skipped for this run.
    stats.fallbacks += 1
    for item in due:
        with transaction.atomic():
            again = claim_due(at=at, limit=1, partition=None, skip=[], only=item.id)
            if not again:
                continue  # renewed meanwhile by another run
            try:
                with transaction.atomic():
                    _renew(again, at=at, catalog=catalog, codes=codes)
                stats.renewed += 1
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


_DOCUMENT_COLUMNS = (
    "id", "kind", "series", "year", "sequence", "number", "account_id", "status", "issued_at",
    "due_at", "paid_at", "currency", "subtotal", "tax", "total", "credit_applied", "amount_paid",
    "amount_due", "tax_rule", "tax_mention", "snapshot",
)
_LINE_COLUMNS = (
    "document_id", "position", "kind", "description", "subscription_id", "plan_code",
    "cycle_code", "quantity", "period_start", "period_end", "unit_amount", "ratio_numerator",
    "ratio_denominator", "amount", "tax_rate_bp", "tax",
)
_LEDGER_COLUMNS = ("account_id", "currency", "at", "kind", "amount", "document_id", "memo")
_RENEWAL_COLUMNS = (
    "subscription_id", "account_id", "period_start", "period_end", "invoice_id", "status",
    "attempts", "created_at",
)
_PAYMENT_COLUMNS = (
    "account_id", "invoice_id", "method", "payment_method_id", "method_label", "currency",
    "amount", "status", "reference", "idempotency_key", "attempt", "failure_code", "message",
    "created_at",
)


def _renew(due: list[Due], *, at: datetime, catalog: Catalog, codes: _Codes) -> None:
    """Price and write the renewals of ``due`` (claimed and locked by the caller), set-based.

    The rows that name an invoice are written first (the foreign keys are checked at commit), the
    invoices themselves last: only then is the shared counter locked, so the invoices are written
    once, already numbered, and concurrent runs wait on the counter only for that last step.
    """
    balances, cards = _balances_and_cards(sorted({item.account_id for item in due}))
    seller_country = settings.PRORATA_SELLER_COUNTRY
    taxes: dict[tuple[str, str], TaxDecision] = {}
    configs: dict[tuple[int, int, int, int, str], Configuration] = {}
    priced: list[tuple[Due, Order]] = []
    for item in due:
        tax_key = (item.country, item.vat_number)
        tax = taxes.get(tax_key)
        if tax is None:
            tax = taxes[tax_key] = tax_decision(
                seller_country=seller_country, customer_country=item.country,
                customer_vat_number=item.vat_number or None, at=at,
            )
        config_key = (item.plan_id, item.cycle_id, item.quantity, item.unit_amount, item.currency)
        config = configs.get(config_key)
        if config is None:
            config = configs[config_key] = Configuration(
                catalog.plan(codes.plans[item.plan_id]), catalog.cycle(codes.cycles[item.cycle_id]),
                item.quantity, Money(item.unit_amount, item.currency))
        term = Term(config, Period(item.period_start, item.period_end), item.anchor,
                    Money(item.invoiced_amount, item.currency))
        balance_key = (item.account_id, item.currency)
        credit = max(balances.get(balance_key, 0), 0)
        order = price_order(kind=OrderKind.RENEWAL, at=at, target=config, tax=tax,
                            credit_balance=Money(credit, item.currency), current=term)
        balances[balance_key] = balances.get(balance_key, 0) - order.totals.total.amount
        priced.append((item, order))

    document_ids = reserve_ids(Document._meta.db_table, len(priced))
    rows = _RenewalRows.build(priced, document_ids, at=at, cards=cards)
    # SQLite holds its one write lock from BEGIN, so the counter costs nothing there; but it
    # checks a deferred foreign key by scanning the referring tables whenever the referred row is
    # inserted after them. So: the invoices first on SQLite, last on PostgreSQL (below).
    invoices_last = connection.vendor == "postgresql"
    if not invoices_last:
        numbers = _number_documents(len(document_ids), at=at)
        insert_rows(Document._meta.db_table, _DOCUMENT_COLUMNS, rows.documents(numbers))
    insert_rows(DocumentLine._meta.db_table, _LINE_COLUMNS, rows.lines)
    # The unique constraint on (subscription, period_start) refuses a period twice: exactly once.
    insert_rows(Renewal._meta.db_table, _RENEWAL_COLUMNS, rows.renewals)
    insert_rows(Payment._meta.db_table, _PAYMENT_COLUMNS, rows.payments)
    _advance_subscriptions(rows.updates)
    _move_balances(rows.deltas)
    if invoices_last:
        # Gapless numbers last: the counter row is shared by every run and checkout, so it is
        # locked (after the accounts and subscriptions, locks.py) only for the numbering and the
        # rows that carry the numbers, just before the commit; workers run side by side until
        # then. (Foreign keys are checked at commit: the lines may name invoices not yet written.)
        numbers = _number_documents(len(document_ids), at=at)
        insert_rows(Document._meta.db_table, _DOCUMENT_COLUMNS, rows.documents(numbers))
    insert_rows(LedgerEntry._meta.db_table, _LEDGER_COLUMNS, rows.ledger(numbers))
    if rows.settled:
        number_of = {pk: number for pk, (_, number) in zip(document_ids, numbers, strict=True)}
        _receipts_for_credit_paid(
            [(item, order, pk, number_of[pk]) for item, order, pk in rows.settled], at=at)


@dataclass(slots=True)
class _RenewalRows:
    """A chunk's rows, in the column orders above, built before any lock on the counter.

    The invoices and ledger entries wait for their numbers: :meth:`documents` and :meth:`ledger`
    complete them. A snapshot is stored as JSON text whose first member, ``number``, is filled in
    then (the seller and each buyer are serialised once per chunk, not once per invoice).
    """

    document_heads: list[tuple[Any, ...]] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    entries: list[tuple[Any, ...]] = field(default_factory=list)
    lines: list[tuple[Any, ...]] = field(default_factory=list)
    renewals: list[tuple[Any, ...]] = field(default_factory=list)
    payments: list[tuple[Any, ...]] = field(default_factory=list)
    updates: list[tuple[datetime, datetime, int, int, int]] = field(default_factory=list)
    deltas: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    settled: list[tuple[Due, Order, int]] = field(default_factory=list)

    @classmethod
    def build(
        cls, priced: list[tuple[Due, Order]], document_ids: list[int], *, at: datetime,
        cards: dict[int, Card],
    ) -> _RenewalRows:
        rows = cls()
        seller = as_json(seller_details())
        buyers: dict[int, str] = {}
        at_text = format_instant(at)
        instants: dict[datetime, str] = {}

        def text(instant: datetime) -> str:
            # Chunks share few distinct instants (period ends cluster): format each once.
            formatted = instants.get(instant)
            if formatted is None:
                formatted = instants[instant] = format_instant(instant)
            return formatted

        paid, open_ = DocumentStatus.PAID.value, DocumentStatus.OPEN.value
        invoice_kind, invoice_ledger = DocumentKind.INVOICE.value, LedgerKind.INVOICE.value
        card_kind, pending = PaymentMethodKind.CARD.value, PaymentStatus.PENDING.value
        for (item, order), document_id in zip(priced, document_ids, strict=True):
            line, totals = order.lines[0], order.totals
            corporate = item.billing_mode == BillingMode.CORPORATE
            due_amount, total = totals.amount_due.amount, totals.total.amount
            status = paid if due_amount == 0 else open_
            due_at = at + timedelta(days=item.payment_terms_days) if corporate else None
            buyer = buyers.get(item.account_id)
            if buyer is None:
                buyer = buyers[item.account_id] = as_json({
                    "name": item.name, "address": item.billing_address, "country": item.country,
                    "vat_number": item.vat_number,
                })
            start, end = order.period.start, order.period.end
            period_start, period_end = text(start), text(end)
            rest = as_json({
                "kind": invoice_kind, "issued_at": at_text,
                "due_at": format_instant(due_at) if due_at else None, "refers_to": None,
                "currency": order.currency,
                "lines": [{
                    "kind": line.kind.value, "description": line.description,
                    "period_start": period_start, "period_end": period_end,
                    "quantity": line.quantity, "unit_amount": line.unit_amount.amount,
                    "ratio": "1/1", "amount": line.amount.amount,
                    "tax_rate_bp": line.tax_rate_bp, "tax": line.tax.amount,
                }],
                "subtotal": totals.subtotal.amount, "tax": totals.tax.amount, "total": total,
                "credit_applied": totals.credit_applied.amount, "amount_paid": 0,
                "amount_due": due_amount, "tax_rule": order.tax.rule.value,
                "mention": order.tax.mention, "status": status,
            })
            rows.snapshots.append(f',"seller":{seller},"buyer":{buyer},{rest[1:]}')
            rows.document_heads.append((
                document_id, invoice_kind, INVOICE_SERIES, at.year, item.account_id, status,
                at, due_at, at if due_amount == 0 else None, order.currency,
                totals.subtotal.amount, totals.tax.amount, total, totals.credit_applied.amount,
                0, due_amount, order.tax.rule.value, order.tax.mention or "",
            ))
            rows.lines.append((
                document_id, 1, line.kind.value, line.description, item.id, line.plan_code,
                line.cycle_code, line.quantity, start, end, line.unit_amount.amount, 1, 1,
                line.amount.amount, line.tax_rate_bp, line.tax.amount,
            ))
            rows.entries.append((item.account_id, order.currency, at, invoice_ledger, -total,
                                 document_id))
            rows.deltas[(item.account_id, order.currency)] -= total
            if due_amount == 0:
                renewal_status = RenewalStatus.PAID
                rows.settled.append((item, order, document_id))
            elif corporate:
                renewal_status = RenewalStatus.INVOICED
            else:
                renewal_status = RenewalStatus.CHARGING
                card = cards.get(item.account_id)
                rows.payments.append((
                    item.account_id, document_id, card_kind, card.pk if card else None,
                    f"{card.brand} •••• {card.last4}" if card else "", order.currency,
                    due_amount, pending, "", renewal_payment_key(item.id, start, 1), 1, "", "", at,
                ))
            rows.renewals.append((item.id, item.account_id, start, end, document_id,
                                  renewal_status.value,
                                  1 if renewal_status == RenewalStatus.CHARGING else 0, at))
            rows.updates.append((start, end, line.amount.amount, document_id, item.id))
        return rows

    def documents(self, numbers: list[tuple[int, str]]) -> list[tuple[Any, ...]]:
        """The invoices' rows with their (sequence, number), in the order they were built."""
        return [
            (*head[:4], sequence, number, *head[4:], f'{{"number":"{number}"{snapshot}')
            for head, snapshot, (sequence, number) in zip(
                self.document_heads, self.snapshots, numbers, strict=True)
        ]

    def ledger(self, numbers: list[tuple[int, str]]) -> list[tuple[Any, ...]]:
        """One invoice entry per renewal, its memo naming the invoice's number."""
        return [(*entry, f"Invoice {number}")
                for entry, (_sequence, number) in zip(self.entries, numbers, strict=True)]


def _number_documents(count: int, *, at: datetime) -> list[tuple[int, str]]:
    """Take ``count`` gapless (sequence, number) pairs of this year's invoice series, in order.

    Locks the counter row until the caller's transaction ends: call last, just before commit."""
    counter = lock_counters([(INVOICE_SERIES, at.year)])[(INVOICE_SERIES, at.year)]
    first = counter.last + 1
    counter.last += count
    counter.save(update_fields=["last"])
    return [(sequence, format_number(INVOICE_SERIES, at.year, sequence))
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


def _receipts_for_credit_paid(settled: list[tuple[Due, Order, int, str]], *, at: datetime) -> None:
    """Queue receipts for the renewals the account's credit paid in full (no charge step)."""
    if not settled:
        return
    contacts: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for account_id, email, language in Membership.objects.filter(
        account_id__in={item.account_id for item, _, _, _ in settled}, is_billing_contact=True,
        user__is_active=True,
    ).values_list("account_id", "user__email", "user__language"):
        contacts[account_id].append((email, language))
    messages = [
        OutboxMessage(
            dedupe_key=f"receipt:invoice:{document_id}:{email}"[:200], to=email,
            template="receipt", language=language or item.language,
            context={"kind": "renewal", "document_number": number,
                     "amount_paid": money_json(0, order.currency),
                     "total": money_json(order.totals.total.amount, order.currency),
                     "credit_applied": money_json(order.totals.credit_applied.amount, order.currency),
                     "period_start": format_instant(order.period.start),
                     "period_end": format_instant(order.period.end),
                     "next_billing_date": format_instant(order.period.end)},
            attachments=[{"kind": "invoice", "id": document_id}],
            status=OutboxStatus.PENDING, next_attempt_at=at, created_at=at,
        )
        for item, order, document_id, number in settled
        for email, language in contacts[item.account_id]
    ]
    OutboxMessage.objects.bulk_create(messages, ignore_conflicts=True)
