"""The periodic jobs: what happens by itself, without anyone typing a command (issue 15).

Each job is a function without arguments that reads the project clock itself, does everything that
is due, and returns its counts (logged by the scheduler, counted in the metrics). Each is safe to run
twice at once and to interrupt at any instant: the work it calls claims rows with leases or
``SKIP LOCKED`` and writes each fact once (database constraints), so the two schedulers
(:mod:`prorata.jobs.schedule`) may overlap runs without harm.

Who may call: the schedulers, the commands of the same name, tests.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.sessions.models import Session

from prorata.common.clock import now, wall_now


def deliver_mail(*, batch_size: int = 100) -> dict[str, int]:
    """Queue the e-mails of the password-reset requests made since the last run
    (:mod:`prorata.accounts.resets`), then send every e-mail of the outbox that is due (batches of
    ``batch_size``, until a batch claims nothing). ``claimed - sent`` failed and will be retried
    (or were given up); ``resets`` counts the reset links queued."""
    from prorata.accounts.resets import SENT, password_resets_queue
    from prorata.notifications.outbox import outbox_deliver_batch

    resets = password_resets_queue(limit=batch_size)[SENT]
    claimed = sent = 0
    while True:
        batch = outbox_deliver_batch(limit=batch_size)
        if batch.claimed == 0:
            return {"resets": resets, "claimed": claimed, "sent": sent, "failed": claimed - sent}
        claimed += batch.claimed
        sent += batch.sent


def deliver_webhooks() -> dict[str, int]:
    """Send every due webhook delivery, each endpoint on its own thread (``sent``, ``failed``
    to be retried, ``gave_up`` after three days, ``released`` put back untried)."""
    from prorata.webhooks.delivery import webhooks_deliver

    return webhooks_deliver()


def billing_run() -> dict[str, int]:
    """The whole billing run at the clock's instant: endings, overdue flags, renewals, charges
    (dunning retries included), with ``PRORATA_BILL_RUN_WORKERS`` processes."""
    import os

    from prorata.common import metrics
    from prorata.jobs.billing_run import bill_run
    from prorata.jobs.progress import RunWatcher

    workers = settings.PRORATA_BILL_RUN_WORKERS or min(os.cpu_count() or 1, 4)
    with RunWatcher(at=now(), partition=None, show=None):
        counts = bill_run(workers=workers).as_dict()
    for outcome, count in counts.items():
        if count and outcome in {"renewed", "charged", "declined", "requires_action",
                                       "unknown", "expired", "failed"}:
            metrics.BILL_RUN_OUTCOMES.labels(outcome).inc(count)
    return counts


def dunning_retries() -> dict[str, int]:
    """The charge step alone: start the dunning retries that are due (1, 3 and 7 days after the first
    failure) and drive every pending renewal payment through the gateway. Run more often than the
    billing run so that a retry happens on its day, whatever the billing run's interval."""
    from prorata.jobs.billing_run import RunStats, charge_due

    stats = RunStats()
    charge_due(at=now(), stats=stats)
    return {"charged": stats.charged, "declined": stats.declined,
            "requires_action": stats.requires_action, "unknown": stats.unknown}


def overdue_flags() -> dict[str, int]:
    """Tell corporate accounts' advisors, once per invoice, about invoices past their due date."""
    from prorata.jobs.billing_run import flag_overdue_corporate_invoices

    return {"flagged": flag_overdue_corporate_invoices(at=now())}


def reconcile_payments() -> dict[str, int]:
    """Settle the card payments of orders whose outcome is unknown, or that stayed pending (a crash
    between the gateway call and its record), by asking the gateway with their idempotency keys:
    the subscriptions app's ``payments_reconcile_due`` (issue 12 item 8)."""
    from prorata.subscriptions.services import payments_reconcile_due

    return dict(payments_reconcile_due())


#: What :func:`prune` removes besides expired sessions: each returns how many rows it deleted.
#: An app whose records expire adds its pruner here (for example a table of idempotency keys).
PRUNERS: dict[str, Callable[[], int]] = {}


def prune() -> dict[str, int]:
    """Delete what has expired: sessions past their expiry (real time, as Django's session store
    reads them) and whatever the apps registered in :data:`PRUNERS`.

    Idempotency keys of orders are not deleted: a key is its order's own column, and a replay of an
    old key must find that order (and answer with its result) rather than place a second one.
    Sign-in failures purge themselves as new ones arrive (:mod:`prorata.accounts.throttle`)."""
    counts = {"sessions": Session.objects.filter(expire_date__lt=wall_now()).delete()[0]}
    for name, pruner in PRUNERS.items():
        counts[name] = pruner()
    return counts
