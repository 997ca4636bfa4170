"""The billing run: every auto-renewing subscription whose period has ended is renewed exactly once.

This module orchestrates; each job lives in its own module of :mod:`prorata.jobs`:

0. **Endings** (:mod:`prorata.jobs.endings`): cancelled renewals and free trials at their end
   expire; corporate invoices past their due date are flagged to the advisor.
1. **Invoicing, set-based** (:mod:`prorata.jobs.invoicing`): chunks of due subscriptions, taken
   by the claim (:mod:`prorata.jobs.claim`), priced by the one engine and written in one
   transaction per chunk. In several processes side by side on PostgreSQL (``workers``).
2. **Charging and dunning, one payment at a time, outside any transaction**
   (:mod:`prorata.jobs.charging`): the gateway called with each payment's idempotency key, a
   failure retried 1, 3 and 7 days after the first one, then the subscription expires.

Who may call: the ``prorata bill-run`` command, the periodic job (:mod:`prorata.jobs.celery`),
tests. Every instant is the project clock's, read once per run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection

from prorata.common.clock import now
from prorata.jobs.charging import charge_due
from prorata.jobs.claim import Claim
from prorata.jobs.endings import expire_ended, flag_overdue_corporate_invoices
from prorata.jobs.invoicing import renew_due

#: Subscriptions renewed per transaction. DESIGN §8 measured ~1,000; per-chunk costs (the claim,
#: the counter, the commit) made 4,000 faster (benchmarks/README.md, "Billing run"). A chunk holds
#: its accounts about a second: a checkout on one of those accounts waits that long at most.
CHUNK_SIZE = 4000
#: SQLite has one writer: a chunk holds every other write (checkouts included) until it commits,
#: and they give up after the busy timeout (5 s). At SQLite's ~5,700 renewals/s (benchmarks), 500
#: hold the lock about 0.1 s, inside the timeout even on a machine many times as busy; 4,000
#: did not stay inside it beside 50 checkouts (tests/app/jobs/test_sqlite_under_load.py).
SQLITE_CHUNK_SIZE = 500

logger = logging.getLogger("prorata.jobs")


@dataclass
class RunStats:
    """What a run did (counters only). ``failed_ids`` are subscriptions whose renewal raised, left
    for the next run."""

    renewed: int = 0
    chunks: int = 0
    fallbacks: int = 0
    charged: int = 0
    declined: int = 0
    #: Attempts not charged because the bank asks the customer to authenticate them (3-D Secure).
    requires_action: int = 0
    unknown: int = 0
    expired: int = 0
    #: Worker processes that died during the run (their chunks were renewed by the run itself).
    workers_lost: int = 0
    failed_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "renewed": self.renewed, "chunks": self.chunks, "fallbacks": self.fallbacks,
            "charged": self.charged, "declined": self.declined,
            "requires_action": self.requires_action, "unknown": self.unknown,
            "expired": self.expired, "workers_lost": self.workers_lost,
            "failed": len(self.failed_ids),
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
    if connection.vendor == "sqlite":
        chunk_size = min(chunk_size, SQLITE_CHUNK_SIZE)
    expire_ended(at=at, stats=stats, partition=partition)
    if partition is None or partition[0] == 0:
        flag_overdue_corporate_invoices(at=at)
    claim = Claim.for_run(at=at)  # its order decided once for the run, worker processes included
    if workers > 1 and connection.vendor == "postgresql":
        _renew_in_processes(at=at, chunk_size=chunk_size, partition=partition, workers=workers,
                            stats=stats, by_id=claim.by_id)
    else:
        renew_due(at=at, chunk_size=chunk_size, partition=partition, stats=stats, claim=claim)
    if charge:
        charge_due(at=at, stats=stats, partition=partition)
    return stats


def _renew_in_processes(
    *, at: datetime, chunk_size: int, partition: tuple[int, int] | None, workers: int,
    stats: RunStats, by_id: bool,
) -> None:
    """Run :func:`~prorata.jobs.invoicing.renew_due` in ``workers`` fresh processes at the same
    instant and add up their counts. Pricing in Python and writing in PostgreSQL then use every
    core (one process is either computing or waiting for the database). Fresh (spawned)
    processes share nothing with this one but the environment: each opens its own connection
    and its own claim, walking in the order ``by_id`` decided here.

    Each worker is a process of its own, not a pool's: a worker that dies (killed, out of
    memory) loses only its chunk in flight, which PostgreSQL rolls back with its connection,
    while the others go on; this process then claims what is left itself, so the run still
    renews everything due and goes on to its charge step (a pool would have ended every worker
    with ``BrokenProcessPool`` and the run with them). ``stats.workers_lost`` counts them; the
    chunks a lost worker had committed are renewed but not in ``stats.renewed``."""
    from multiprocessing import get_context

    from prorata.jobs.workers import worker_main

    context = get_context("spawn")
    started = []
    for _ in range(workers):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=worker_main, args=(
            send, at.isoformat(), chunk_size, partition, os.getpid(), by_id), daemon=True)
        process.start()
        send.close()  # the worker holds the other end: its death is an end of file here
        started.append((process, receive))
    for process, receive in started:
        try:
            counts = receive.recv()
        except EOFError:
            counts = None
        process.join()
        if counts is None or process.exitcode != 0:
            stats.workers_lost += 1
            logger.warning("A billing-run worker process ended with exit code %s: its chunk in "
                           "flight is renewed again by the run", process.exitcode)
            continue
        stats.renewed += counts["renewed"]
        stats.chunks += counts["chunks"]
        stats.fallbacks += counts["fallbacks"]
        stats.failed_ids.extend(pk for pk in counts["failed_ids"] if pk not in stats.failed_ids)
    if stats.workers_lost:
        renew_due(at=at, chunk_size=chunk_size, partition=partition, stats=stats,
                  claim=Claim(by_id=by_id))
