"""The billing run: every auto-renewing subscription whose period has ended is renewed exactly once.

Two steps (DESIGN §8, "charging is not invoicing"):

1. **Invoicing, set-based.** Chunks of due subscriptions are claimed with their accounts
   (``FOR UPDATE … SKIP LOCKED`` on PostgreSQL, so concurrent runs and checkouts never wait on each
   other in a cycle), priced in Python by the one engine (``price_order(kind=RENEWAL)``, the account's
   credit applied first), and written in one transaction per chunk with bulk inserts: the invoice
   with its gapless number and snapshot, its line, its ledger entry, the balance, the
   :class:`~prorata.jobs.models.Renewal` row (unique per subscription period: the exactly-once rule),
   the pending card payment, and the subscription's next period (the Renewal row is also the
   subscription's history entry for that period: no second row repeats it). A chunk that
   fails is redone one renewal per transaction, so one bad subscription never blocks the rest.
2. **Charging, one payment at a time, outside any transaction.** The gateway is called with the
   payment's idempotency key; its outcome is then recorded in a short transaction. A payment whose
   outcome is unknown (timeout, crash) stays pending and is driven again with the *same* key, which
   the gateway answers with the first outcome: a card is never charged twice for one attempt.
   A failed charge puts the subscription ``past_due`` and retries 1, 3 and 7 days after the first
   failure, with an e-mail each time; after the last failure the subscription expires.

Who may call: the ``prorata bill-run`` command, the periodic job, tests. Every instant is the
project clock's, read once per run.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Mod

from prorata.accounts.models import Account, BillingMode, Membership, User
from prorata.accounts.services import audit_record
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
from prorata.billing.services import (
    Movement,
    ledger_append,
    notify_billing_contacts,
    seller_details,
)
from prorata.catalog.models import BillingCycle, Plan
from prorata.catalog.selectors import catalog_snapshot
from prorata.common.bulk import as_json, insert_rows, pg_array, reserve_ids, sqlite_value
from prorata.common.clock import format_instant, now
from prorata.common.db import prepared_cursor
from prorata.common.locks import lock_account, lock_counters
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.context import money_json
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.payments.gateway import ChargeOutcome, get_gateway
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Subscription, SubscriptionEvent, SubscriptionStatus
from prorata_core.catalog import Catalog
from prorata_core.errors import ProrataError
from prorata_core.money import Money
from prorata_core.numbering import INVOICE_SERIES, format_number
from prorata_core.orders import Configuration, Order, OrderKind, Term, price_order
from prorata_core.periods import Period
from prorata_core.tax import TaxDecision, tax_decision

logger = logging.getLogger(__name__)

#: Days after the first failed charge on which it is tried again (DESIGN §3 "Renewal").
RETRY_DAYS = (1, 3, 7)
#: Subscriptions renewed per transaction. DESIGN §8 measured ~1,000; per-chunk costs (the claim,
#: the counter, the commit) made 4,000 faster here: a million renewals (oldest first) in 106.5 s
#: against 117.6 s (2,000: 112.6 s). A chunk holds its accounts about a second (two workers,
#: ~4,000/s each): a checkout on one of those accounts waits that long at most.
CHUNK_SIZE = 4000


@dataclass
class RunStats:
    """What a run did. ``failed_ids`` are subscriptions whose renewal raised, left for the next run."""

    renewed: int = 0
    chunks: int = 0
    fallbacks: int = 0
    charged: int = 0
    declined: int = 0
    unknown: int = 0
    expired: int = 0
    failed_ids: list[int] = field(default_factory=list)
    #: (period end, id) of the last subscription claimed: the next claim starts after it.
    cursor: tuple[datetime, int] | None = None
    #: Claims in id order rather than oldest period end first (:func:`_mostly_due`).
    by_id: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "renewed": self.renewed, "chunks": self.chunks, "fallbacks": self.fallbacks,
            "charged": self.charged, "declined": self.declined, "unknown": self.unknown,
            "expired": self.expired, "failed": len(self.failed_ids),
        }


def bill_run(
    *,
    chunk_size: int = CHUNK_SIZE,
    partition: tuple[int, int] | None = None,
    charge: bool = True,
    workers: int = 1,
) -> RunStats:
    """Renew every due subscription (of the accounts whose id % count == index, with ``partition``
    = (index, count)), then charge.

    ``workers`` > 1 renews in that many processes side by side (PostgreSQL only: their claims
    skip each other's locked rows; SQLite has one writer at a time). Safe to interrupt at any
    instant and to run twice at once: a renewal is committed whole or not at all, and a period is
    invoiced once (database constraint).
    """
    at = now()
    stats = RunStats()
    expire_ended(at=at, stats=stats, partition=partition)
    if partition is None or partition[0] == 0:
        flag_overdue_corporate_invoices(at=at)
    stats.by_id = _mostly_due(at=at)  # decided once for the run, its worker processes included
    if workers > 1 and connection.vendor == "postgresql":
        _renew_in_processes(at=at, chunk_size=chunk_size, partition=partition, workers=workers,
                            stats=stats)
    else:
        renew_due(at=at, chunk_size=chunk_size, partition=partition, stats=stats)
    if charge:
        charge_due(at=at, stats=stats, partition=partition)
    return stats


def renew_due(
    *, at: datetime, chunk_size: int, partition: tuple[int, int] | None, stats: RunStats,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Renew, chunk after chunk, every subscription due at ``at`` (of ``partition``), as long as
    ``keep_going()`` says so before each chunk.

    Each claim starts after the last one (``stats.cursor``): PostgreSQL keeps the renewed rows'
    old index entries until a vacuum, and a claim from the start would step over all of them, a
    little longer each chunk. When nothing is left after the cursor, one more pass starts from the
    beginning for the rows that were skipped while another transaction held them.

    With ``stats.by_id`` (:func:`bill_run` sets it when :func:`_mostly_due`), they are claimed in
    id order, not oldest first: accounts, cards, subscriptions and balances are then reached page after
    page, each page once, instead of at random and again after every checkpoint (a million
    renewals on Debian's default server: 161.7 s oldest first, 85.0 s in id order).
    """
    catalog, codes = catalog_snapshot(), _Codes.load()
    while keep_going():
        if renew_chunk(at=at, catalog=catalog, codes=codes, chunk_size=chunk_size,
                       partition=partition, stats=stats):
            continue
        if stats.cursor is None:
            return
        stats.cursor = None


def _renew_in_processes(
    *, at: datetime, chunk_size: int, partition: tuple[int, int] | None, workers: int,
    stats: RunStats,
) -> None:
    """Run :func:`renew_due` in ``workers`` fresh processes at the same instant and add up their
    counts. Pricing in Python and writing in PostgreSQL then use every core (one process is
    either computing or waiting for the database). Fresh (spawned) processes share nothing with
    this one but the environment: each opens its own connection."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from prorata.jobs.workers import die_with, renew_worker

    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                             initializer=die_with, initargs=(os.getpid(),)) as pool:
        futures = [pool.submit(renew_worker, at.isoformat(), chunk_size, partition, os.getpid(),
                               stats.by_id)
                   for _ in range(workers)]
        for future in futures:
            counts = future.result()
            stats.renewed += counts["renewed"]
            stats.chunks += counts["chunks"]
            stats.fallbacks += counts["fallbacks"]
            stats.failed_ids.extend(
                pk for pk in counts["failed_ids"] if pk not in stats.failed_ids)


# --- step 0: what ends without renewal -------------------------------------------------------


def expire_ended(
    *, at: datetime, stats: RunStats, partition: tuple[int, int] | None = None,
    batch: int = 500,
) -> None:
    """Expire the subscriptions whose period has ended without renewal: a cancelled renewal (S2)
    and a free trial at its end (S16). Each gets a history event and an e-mail saying how to
    come back (Subscribe now); the card then offers Subscribe now."""
    ending = Subscription.objects.filter(period_end__lte=at).filter(
        Q(status=SubscriptionStatus.TRIALING)
        | Q(status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE], auto_renew=False)
    )
    if partition is not None:
        index, count = partition
        ending = ending.annotate(_part=Mod("account_id", count)).filter(_part=index)
    while True:
        with transaction.atomic():
            rows = list(
                (ending.select_for_update(skip_locked=True, of=("self",))
                 if connection.features.has_select_for_update_skip_locked else ending)
                .select_related("product", "account").order_by("period_end", "id")[:batch]
            )
            if not rows:
                return
            for subscription in rows:
                trial = subscription.status == SubscriptionStatus.TRIALING
                before = {"status": subscription.status}
                Subscription.objects.filter(pk=subscription.pk).update(
                    status=SubscriptionStatus.EXPIRED, version=F("version") + 1
                )
                SubscriptionEvent.objects.create(
                    subscription=subscription, at=at, kind=SubscriptionEvent.Kind.EXPIRED,
                    before=before, after={"status": SubscriptionStatus.EXPIRED.value,
                                          "trial": trial},
                )
                notify_billing_contacts(
                    account=subscription.account, template="subscription_expired",
                    dedupe_key=f"expired:{subscription.pk}:{format_instant(subscription.period_end)}",
                    context={"product": subscription.product.name, "trial": trial,
                             "period_end": format_instant(subscription.period_end),
                             "url": f"/billing/{subscription.account_id}/"},
                )
            stats.expired += len(rows)


def flag_overdue_corporate_invoices(*, at: datetime) -> int:
    """Tell each corporate account's advisor, once, about an invoice past its due date (S14): the
    subscription is not expired for a late bank transfer. Returns how many were flagged now."""
    from prorata.notifications.outbox import outbox_enqueue

    overdue = (
        Document.objects.filter(
            kind=DocumentKind.INVOICE, status=DocumentStatus.OPEN, due_at__lt=at,
            account__billing_mode=BillingMode.CORPORATE, account__advisor__isnull=False,
        )
        .select_related("account__advisor")
        .order_by("due_at", "id")
    )
    flagged = 0
    for invoice in overdue:
        advisor = invoice.account.advisor
        key = f"overdue:invoice:{invoice.pk}"
        with transaction.atomic():
            if OutboxMessage.objects.filter(dedupe_key=key).exists():
                continue
            outbox_enqueue(
                to=advisor.email, template="invoice_overdue", language=advisor.language or "en",
                dedupe_key=key,
                context={"number": invoice.number, "account": invoice.account.name,
                         "amount_due": money_json(invoice.amount_due, invoice.currency),
                         "due_at": format_instant(invoice.due_at),
                         "name": advisor.get_full_name() or advisor.email,
                         "url": f"/console/billing/document/{invoice.pk}/transfer/"},
            )
            audit_record(actor=None, action="invoice.overdue_flagged", account=invoice.account,
                         obj=invoice, after={"number": invoice.number,
                                             "due_at": format_instant(invoice.due_at)})
            flagged += 1
    return flagged


# --- step 1: invoicing ------------------------------------------------------------------------


class _Due(NamedTuple):
    """A claimed subscription and its account: what pricing and writing need (one claim row)."""

    id: int
    plan_id: int
    cycle_id: int
    quantity: int
    currency: str
    unit_amount: int
    anchor: datetime
    period_start: datetime
    period_end: datetime
    invoiced_amount: int
    account_id: int
    name: str
    country: str
    billing_address: str
    vat_number: str
    billing_mode: str
    payment_terms_days: int
    language: str


_CLAIM_SQL = """
SELECT s.id, s.plan_id, s.cycle_id, s.quantity, s.currency, s.unit_amount, {instants},
       s.invoiced_amount, a.id, a.name, a.country,
       a.billing_address, a.vat_number, a.billing_mode, a.payment_terms_days, a.language
  FROM subscriptions_subscription s JOIN accounts_account a ON a.id = s.account_id
 WHERE s.status = %s AND s.auto_renew AND s.period_end <= %s {filters}
 ORDER BY {order}
 LIMIT %s {lock}
"""

#: In id order, the claim must walk the primary key and filter on the period end, never fetch
#: every due row by period end and sort them (once per chunk: quadratic over a run).
_BY_ID_PLANNER_SQL = "SELECT set_config('enable_sort', 'off', true)"

#: Claims go in id order when at least this share of the subscriptions is due (see renew_due): a
#: walk of the primary key reads every subscription's page, which pays when most are renewed.
MOSTLY_DUE = 0.05


def _mostly_due(*, at: datetime) -> bool:
    """Whether at least :data:`MOSTLY_DUE` of the subscriptions are due at ``at`` (counted up
    to that share only: an index range, not the whole table)."""
    table = connection.ops.quote_name(Subscription._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        share = max(int(cursor.fetchone()[0] * MOSTLY_DUE), 1)
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE status = %s AND auto_renew "  # noqa: S608
            "AND period_end <= %s LIMIT %s) AS due",
            [SubscriptionStatus.ACTIVE.value, sqlite_value(at), share])
        return bool(cursor.fetchone()[0] >= share)


#: For the rest of the chunk's transaction: a chunk's arrays are bound as literals, so the planner
#: sees thousands of keys and would hash-join them against a whole table (a scan per chunk,
#: quadratic over a run) or start parallel workers; one index lookup per key is what a chunk needs.
_CHUNK_PLANNER_SQL = (
    "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),"
    " set_config('max_parallel_workers_per_gather', '0', true)"
)


def _claim(
    *, at: datetime, limit: int, partition: tuple[int, int] | None, skip: list[int],
    only: int | None = None, after: tuple[datetime, int] | None = None, by_id: bool = False,
) -> list[_Due]:
    """Due subscriptions with their accounts, oldest period end first (``by_id``: in id order),
    locked together (PostgreSQL: rows another transaction holds are skipped, never waited for, so
    the run and a checkout never wait on each other in a cycle; SQLite: the transaction already
    holds the write lock)."""
    sqlite = connection.vendor == "sqlite"
    filters, params = [], [SubscriptionStatus.ACTIVE.value, sqlite_value(at) if sqlite else at]
    if only is not None:
        filters.append("AND s.id = %s")
        params.append(only)
    if after is not None and by_id:
        filters.append("AND s.id > %s")
        params.append(after[1])
    elif after is not None:
        filters.append("AND (s.period_end, s.id) > (%s, %s)")
        params.extend((sqlite_value(after[0]) if sqlite else after[0], after[1]))
    if partition is not None:
        # By account, as the charge step: a partition charges the payments it invoiced.
        filters.append("AND s.account_id %% %s = %s")
        params.extend(partition[::-1])
    if skip:
        filters.append(f"AND s.id NOT IN ({', '.join(['%s'] * len(skip))})")
        params.extend(skip)
    params.append(limit)
    lock = (
        "FOR UPDATE OF s, a SKIP LOCKED"
        if connection.features.has_select_for_update_skip_locked else ""
    )
    # PostgreSQL: instants as integer microseconds since the epoch, turned into datetimes here
    # three times faster than the driver's time-zone-aware parsing.
    instants = ("s.anchor, s.period_start, s.period_end" if sqlite else
                ", ".join(f"(extract(epoch FROM s.{column}) * 1000000)::bigint"
                          for column in ("anchor", "period_start", "period_end")))
    with prepared_cursor() as cursor:
        if not sqlite:
            cursor.execute(_CHUNK_PLANNER_SQL)
            if by_id:
                cursor.execute(_BY_ID_PLANNER_SQL)
        cursor.execute(_CLAIM_SQL.format(instants=instants, filters=" ".join(filters), lock=lock,
                                         order="s.id" if by_id else "s.period_end, s.id"),
                       params)
        rows = cursor.fetchall()
    if sqlite:  # raw SQL skips Django's converters: SQLite gives naive UTC instants
        return [_Due(*row[:6], *(_aware(value) for value in row[6:9]), *row[9:]) for row in rows]
    return [_Due(*row[:6], *(_EPOCH + timedelta(microseconds=value) for value in row[6:9]),
                 *row[9:]) for row in rows]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _by_id(item: _Due) -> int:
    return item.id


def _aware(value: datetime | str) -> datetime:
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant


def renew_chunk(
    *,
    at: datetime,
    catalog: Catalog,
    codes: _Codes,
    chunk_size: int,
    partition: tuple[int, int] | None,
    stats: RunStats,
) -> int:
    """Claim and renew up to ``chunk_size`` due subscriptions in one transaction; return how many
    were claimed (0: nothing is due any more)."""
    with transaction.atomic():
        due = _claim(at=at, limit=chunk_size, partition=partition, skip=stats.failed_ids,
                     after=stats.cursor, by_id=stats.by_id)
        if not due:
            return 0
        stats.cursor = (due[-1].period_end, due[-1].id)
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
            again = _claim(at=at, limit=1, partition=None, skip=[], only=item.id)
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


class _Card(NamedTuple):
    pk: int
    brand: str
    last4: str


def _default_cards(account_ids: set[int]) -> dict[int, _Card]:
    """Each account's default card (id, brand, last four digits), if it has one."""
    return {
        account_id: _Card(pk, brand, last4)
        for account_id, pk, brand, last4 in PaymentMethod.objects.filter(
            account_id__in=account_ids, is_default=True, removed_at__isnull=True
        ).values_list("account_id", "id", "brand", "last4")
    }


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
) -> tuple[dict[tuple[int, str], int], dict[int, _Card]]:
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
    cards: dict[int, _Card] = {}
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        for account_id, currency, balance, card_id, brand, last4 in cursor.fetchall():
            if card_id is None:
                balances[(account_id, currency)] = balance
            else:
                cards[account_id] = _Card(card_id, brand, last4)
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


def _renew(due: list[_Due], *, at: datetime, catalog: Catalog, codes: _Codes) -> None:
    """Price and write the renewals of ``due`` (claimed and locked by the caller), set-based.

    The rows that name an invoice are written first (the foreign keys are checked at commit), the
    invoices themselves last: only then is the shared counter locked, so the invoices are written
    once, already numbered, and concurrent runs wait on the counter only for that last step.
    """
    balances, cards = _balances_and_cards(sorted({item.account_id for item in due}))
    seller_country = settings.PRORATA_SELLER_COUNTRY
    taxes: dict[tuple[str, str], TaxDecision] = {}
    configs: dict[tuple[int, int, int, int, str], Configuration] = {}
    priced: list[tuple[_Due, Order]] = []
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
    settled: list[tuple[_Due, Order, int]] = field(default_factory=list)

    @classmethod
    def build(
        cls, priced: list[tuple[_Due, Order]], document_ids: list[int], *, at: datetime,
        cards: dict[int, _Card],
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
                    due_amount, pending, "", _payment_key(item.id, start, 1), 1, "", "", at,
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


def _payment_key(subscription_id: int, period_start: datetime, attempt: int) -> str:
    return f"renewal:{subscription_id}:{format_instant(period_start)}:{attempt}"


def _receipts_for_credit_paid(settled: list[tuple[_Due, Order, int, str]], *, at: datetime) -> None:
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


# --- step 2: charging -------------------------------------------------------------------------


def charge_due(*, at: datetime, stats: RunStats, partition: tuple[int, int] | None = None) -> None:
    """Start the dunning retries that are due, then drive every pending renewal payment through
    the gateway, one at a time, outside any transaction."""
    _start_retries(at=at, partition=partition)
    pending = Payment.objects.filter(
        status=PaymentStatus.PENDING, idempotency_key__startswith="renewal:"
    )
    if partition is not None:
        index, count = partition
        pending = pending.annotate(_part=Mod("account_id", count)).filter(_part=index)
    gateway = get_gateway()
    for payment in pending.select_related("payment_method", "invoice").order_by("id").iterator():
        if payment.payment_method is None or payment.payment_method.removed_at is not None:
            _record_failure(payment.pk, at=at, code="no_payment_method",
                            message="There is no card on file: add one to pay.", stats=stats)
            continue
        result = gateway.charge(
            token=payment.payment_method.token, amount=Money(payment.amount, payment.currency),
            idempotency_key=payment.idempotency_key,
            description=f"Invoice {payment.invoice.number}",
        )
        if result.outcome is ChargeOutcome.SUCCEEDED:
            _record_success(payment.pk, reference=result.reference, at=at, stats=stats)
        elif result.outcome is ChargeOutcome.UNKNOWN:
            stats.unknown += 1  # left pending: the next run asks again with the same key
        else:
            _record_failure(payment.pk, at=at, code=result.outcome.value, message=result.message,
                            stats=stats)


def _start_retries(*, at: datetime, partition: tuple[int, int] | None) -> None:
    """A new payment attempt for every renewal whose retry is due, on the current default card."""
    due = Renewal.objects.filter(status=RenewalStatus.RETRYING, next_attempt_at__lte=at)
    if partition is not None:
        index, count = partition
        due = due.annotate(_part=Mod("account_id", count)).filter(_part=index)
    for renewal_id in due.values_list("id", flat=True):
        with transaction.atomic():
            renewal = Renewal.objects.select_related("invoice").get(pk=renewal_id)
            lock_account(renewal.account_id)
            renewal = Renewal.objects.select_related("invoice").get(pk=renewal_id)
            if renewal.status != RenewalStatus.RETRYING:
                continue
            card = _default_cards({renewal.account_id}).get(renewal.account_id)
            renewal.attempts += 1
            renewal.status = RenewalStatus.CHARGING
            renewal.save(update_fields=["attempts", "status"])
            Payment.objects.create(
                account_id=renewal.account_id, invoice=renewal.invoice,
                method=PaymentMethodKind.CARD, payment_method_id=card.pk if card else None,
                method_label=f"{card.brand} •••• {card.last4}" if card else "",
                currency=renewal.invoice.currency, amount=renewal.invoice.amount_due,
                status=PaymentStatus.PENDING,
                idempotency_key=_payment_key(renewal.subscription_id, renewal.period_start,
                                             renewal.attempts),
                attempt=renewal.attempts, created_at=at,
            )


def _renewal_of(payment: Payment) -> Renewal:
    return Renewal.objects.select_related("subscription").get(invoice_id=payment.invoice_id)


def _record_success(payment_id: int, *, reference: str, at: datetime, stats: RunStats) -> None:
    with transaction.atomic():
        payment = Payment.objects.get(pk=payment_id)
        account = lock_account(payment.account_id)
        payment = Payment.objects.select_related("invoice").get(pk=payment_id)
        if payment.status != PaymentStatus.PENDING:
            return  # recorded by another run
        payment.status, payment.reference, payment.completed_at = (
            PaymentStatus.SUCCEEDED, reference, at)
        payment.save(update_fields=["status", "reference", "completed_at"])
        invoice = payment.invoice
        invoice.amount_paid += payment.amount
        invoice.amount_due -= payment.amount
        if invoice.amount_due == 0:
            invoice.status, invoice.paid_at = DocumentStatus.PAID, at
        invoice.save(update_fields=["amount_paid", "amount_due", "status", "paid_at"])
        ledger_append(account=account, currency=payment.currency, at=at, movements=[
            Movement(LedgerKind.PAYMENT, payment.amount, document=invoice, payment=payment,
                     memo=f"Card payment for invoice {invoice.number}"),
        ])
        renewal = _renewal_of(payment)
        renewal.status, renewal.next_attempt_at = RenewalStatus.PAID, None
        renewal.save(update_fields=["status", "next_attempt_at"])
        Subscription.objects.filter(
            pk=renewal.subscription_id, status=SubscriptionStatus.PAST_DUE
        ).update(status=SubscriptionStatus.ACTIVE, version=F("version") + 1)
        notify_billing_contacts(
            account=account, template="receipt", dedupe_key=f"receipt:invoice:{invoice.pk}",
            attachments=[{"kind": "invoice", "id": invoice.pk}],
            context={"kind": "renewal", "document_number": invoice.number,
                     "amount_paid": money_json(invoice.amount_paid, invoice.currency),
                     "total": money_json(invoice.total, invoice.currency),
                     "credit_applied": money_json(invoice.credit_applied, invoice.currency),
                     "period_start": format_instant(renewal.period_start),
                     "period_end": format_instant(renewal.period_end),
                     "next_billing_date": format_instant(renewal.period_end)},
        )
    stats.charged += 1


def _record_failure(
    payment_id: int, *, at: datetime, code: str, message: str, stats: RunStats
) -> None:
    """Record a failed attempt: past_due and a retry on the dunning schedule, or, after the last
    retry, the subscription expires. An e-mail each time."""
    with transaction.atomic():
        payment = Payment.objects.get(pk=payment_id)
        account = lock_account(payment.account_id)
        payment = Payment.objects.select_related("invoice").get(pk=payment_id)
        if payment.status != PaymentStatus.PENDING:
            return
        payment.status, payment.failure_code, payment.message, payment.completed_at = (
            PaymentStatus.FAILED, code, message[:2000], at)
        payment.save(update_fields=["status", "failure_code", "message", "completed_at"])
        renewal = _renewal_of(payment)
        first_failed = renewal.first_failed_at or at
        retries_done = renewal.attempts - 1
        if retries_done < len(RETRY_DAYS):
            renewal.status = RenewalStatus.RETRYING
            renewal.first_failed_at = first_failed
            renewal.next_attempt_at = first_failed + timedelta(days=RETRY_DAYS[retries_done])
            new_status = SubscriptionStatus.PAST_DUE
        else:
            renewal.status, renewal.next_attempt_at = RenewalStatus.FAILED, None
            new_status = SubscriptionStatus.EXPIRED
            stats.expired += 1
        renewal.save(update_fields=["status", "first_failed_at", "next_attempt_at"])
        Subscription.objects.filter(pk=renewal.subscription_id).update(
            status=new_status, version=F("version") + 1
        )
        SubscriptionEvent.objects.create(
            subscription_id=renewal.subscription_id, at=at,
            kind=(SubscriptionEvent.Kind.EXPIRED if new_status == SubscriptionStatus.EXPIRED
                  else SubscriptionEvent.Kind.PAYMENT_FAILED),
            before={"invoice": payment.invoice.number, "attempt": renewal.attempts},
            after={"status": new_status.value, "reason": code},
        )
        context: dict[str, Any] = {
            "amount_due": money_json(payment.invoice.amount_due, payment.currency),
            "document_number": payment.invoice.number, "reason": message,
        }
        if renewal.next_attempt_at is not None:
            context["next_retry_at"] = format_instant(renewal.next_attempt_at)
        notify_billing_contacts(
            account=account, template="payment_failed", context=context,
            dedupe_key=f"payment_failed:{payment.pk}",
        )
    stats.declined += 1


# --- paying a past-due renewal from the billing center ---------------------------------------


class NothingToPay(ProrataError):
    code = "nothing_to_pay"
    http_status = 409


def renewal_pay_now(*, account: Account, user: User, invoice_id: int) -> str:
    """Pay the open invoice of a past-due renewal now, with the account's default card (a billing
    contact, from the billing center). Returns ``"paid"``, or ``"pending"`` when the bank's answer
    is unknown (the next run settles it with the same idempotency key).

    Success ends ``past_due`` (the same recording as the billing run's). A refused card raises
    :class:`~prorata.subscriptions.errors.PaymentFailed`, and the dunning schedule goes on as it
    was: a customer's own attempt does not bring the expiry closer.
    """
    from prorata.subscriptions.errors import PaymentFailed, PaymentMethodRequired

    at = now()
    with transaction.atomic():
        lock_account(account.pk)
        renewal = (Renewal.objects.select_related("invoice")
                   .filter(account_id=account.pk, invoice_id=invoice_id).first())
        if renewal is None:
            raise NothingToPay("There is no renewal invoice with this number on the account.",
                               invoice=invoice_id)
        if renewal.status != RenewalStatus.RETRYING or renewal.invoice.amount_due == 0:
            raise NothingToPay(f"Invoice {renewal.invoice.number} has nothing left to pay now.",
                               invoice=renewal.invoice.number)
        card = _default_cards({account.pk}).get(account.pk)
        if card is None:
            raise PaymentMethodRequired(
                "Add a card in Payment methods first: it becomes your default card.")
        renewal.attempts += 1
        renewal.status = RenewalStatus.CHARGING
        renewal.save(update_fields=["attempts", "status"])
        payment = Payment.objects.create(
            account_id=account.pk, invoice=renewal.invoice, method=PaymentMethodKind.CARD,
            payment_method_id=card.pk, method_label=f"{card.brand} •••• {card.last4}",
            currency=renewal.invoice.currency, amount=renewal.invoice.amount_due,
            status=PaymentStatus.PENDING,
            idempotency_key=_payment_key(renewal.subscription_id, renewal.period_start,
                                         renewal.attempts),
            attempt=renewal.attempts, created_at=at,
        )
        audit_record(actor=user, action="renewal.pay_now", account=account, obj=payment,
                     after={"invoice": renewal.invoice.number, "amount": payment.amount,
                            "currency": payment.currency})
    result = get_gateway().charge(
        token=PaymentMethod.objects.get(pk=card.pk).token,
        amount=Money(payment.amount, payment.currency), idempotency_key=payment.idempotency_key,
        description=f"Invoice {renewal.invoice.number}",
    )
    if result.outcome is ChargeOutcome.SUCCEEDED:
        _record_success(payment.pk, reference=result.reference, at=at, stats=RunStats())
        return "paid"
    if result.outcome is ChargeOutcome.UNKNOWN:
        return "pending"
    with transaction.atomic():
        lock_account(account.pk)
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.FAILED, failure_code=result.outcome.value,
            message=result.message[:2000], completed_at=at,
        )
        Renewal.objects.filter(pk=renewal.pk, status=RenewalStatus.CHARGING).update(
            status=RenewalStatus.RETRYING
        )
    raise PaymentFailed(result.message, code=result.outcome.value, invoice=renewal.invoice.number)
