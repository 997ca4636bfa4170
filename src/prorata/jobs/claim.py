"""The billing run's claim: which due subscriptions a chunk takes, locked with their accounts.

A claim takes up to N subscriptions that are ``active``, auto-renewing and due at the run's
instant, with their accounts, in one query (``FOR UPDATE … SKIP LOCKED`` on PostgreSQL, so
concurrent runs and checkouts never wait on each other in a cycle; SQLite's transaction already
holds the write lock). :class:`Claim` is where a run's claims stand (the cursor after the last
one) and which order they walk (oldest period end first, or in id order when most subscriptions
are due); the run's counters (:class:`~prorata.jobs.billing_run.RunStats`) hold neither.

Who may call: the invoicing step (:mod:`prorata.jobs.invoicing`) and :func:`bill_run`, inside
the chunk's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.db import connection

from prorata.common.bulk import sqlite_value
from prorata.common.db import instant_from_db, prepared_cursor
from prorata.subscriptions.models import Subscription, SubscriptionStatus


class Due(NamedTuple):
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
    billing_email: str


_CLAIM_SQL = """
SELECT s.id, s.plan_id, s.cycle_id, s.quantity, s.currency, s.unit_amount, {instants},
       s.invoiced_amount, a.id, a.name, a.country,
       a.billing_address, a.vat_number, a.billing_mode, a.payment_terms_days, a.language,
       a.billing_email
  FROM subscriptions_subscription s JOIN accounts_account a ON a.id = s.account_id
 WHERE s.status = %s AND s.auto_renew AND s.period_end <= %s {filters}
 ORDER BY {order}
 LIMIT %s {lock}
"""

#: In id order, the claim must walk the primary key and filter on the period end, never fetch
#: every due row by period end and sort them (once per chunk: quadratic over a run).
_BY_ID_PLANNER_SQL = "SELECT set_config('enable_sort', 'off', true)"

#: Claims go in id order when at least this share of the subscriptions is due (see
#: :class:`Claim`): a walk of the primary key reads every subscription's page, which pays when
#: most are renewed.
MOSTLY_DUE = 0.05

#: For the rest of the chunk's transaction: a chunk's arrays are bound as literals, so the planner
#: sees thousands of keys and would hash-join them against a whole table (a scan per chunk,
#: quadratic over a run) or start parallel workers; one index lookup per key is what a chunk needs.
_CHUNK_PLANNER_SQL = (
    "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true),"
    " set_config('max_parallel_workers_per_gather', '0', true)"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def mostly_due(*, at: datetime) -> bool:
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


@dataclass(slots=True)
class Claim:
    """Where a run's claims stand and which order they walk.

    Each claim starts after the last one (``cursor``): PostgreSQL keeps the renewed rows' old
    index entries until a vacuum, and a claim from the start would step over all of them, a
    little longer each chunk. When nothing is left after the cursor, :meth:`restart` starts one
    more pass from the beginning for the rows that were skipped while another transaction held
    them.

    With ``by_id`` (:meth:`for_run` sets it when :func:`mostly_due`), subscriptions are claimed
    in id order, not oldest first: accounts, cards, subscriptions and balances are then reached
    page after page, each page once, instead of at random and again after every checkpoint
    (measured in benchmarks/README.md, "Billing run", and ADR 0004).
    """

    by_id: bool = False
    #: (period end, id) of the last subscription claimed: the next claim starts after it.
    cursor: tuple[datetime, int] | None = None

    @classmethod
    def for_run(cls, *, at: datetime) -> Claim:
        """The claim of a run at ``at``: its order decided once, worker processes included."""
        return cls(by_id=mostly_due(at=at))

    def take(
        self, *, at: datetime, limit: int, partition: tuple[int, int] | None, skip: list[int],
    ) -> list[Due]:
        """Claim up to ``limit`` due subscriptions after the cursor (of ``partition``, none of
        ``skip``) and move the cursor past them. Call inside the chunk's transaction."""
        due = claim_due(at=at, limit=limit, partition=partition, skip=skip, after=self.cursor,
                        by_id=self.by_id)
        if due:
            self.cursor = (due[-1].period_end, due[-1].id)
        return due

    def restart(self) -> bool:
        """Start again from the beginning; False when this pass already started there."""
        if self.cursor is None:
            return False
        self.cursor = None
        return True


def claim_due(
    *, at: datetime, limit: int, partition: tuple[int, int] | None, skip: list[int],
    only: int | None = None, after: tuple[datetime, int] | None = None, by_id: bool = False,
) -> list[Due]:
    """Due subscriptions with their accounts, oldest period end first (``by_id``: in id order),
    locked together (PostgreSQL: rows another transaction holds are skipped, never waited for, so
    the run and a checkout never wait on each other in a cycle; SQLite: the transaction already
    holds the write lock). ``only``: that one subscription, if it is still due."""
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
        return [Due(*row[:6], *(_aware(value) for value in row[6:9]), *row[9:]) for row in rows]
    return [Due(*row[:6], *(_EPOCH + timedelta(microseconds=value) for value in row[6:9]),
                *row[9:]) for row in rows]


def _aware(value: datetime | str) -> datetime:
    return instant_from_db(value)
