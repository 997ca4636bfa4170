"""The one schedule of every periodic job, and the ``prorata worker`` loop that runs it.

:func:`periodic_jobs` is the table: each job's name, how often it starts, and its function
(:mod:`prorata.jobs.periodic`). Two schedulers read it, never both at once:

- with ``PRORATA_BROKER_URL`` set, Celery beat sends each job as a task to the Celery workers
  (:mod:`prorata.jobs.celery`);
- otherwise one ``prorata worker`` process runs it (:class:`Worker`): one thread per job, so that
  e-mails keep leaving every few seconds while a billing run takes minutes.

Intervals are real seconds (``time.monotonic``), not the project clock's: "deliver every 5 s" is
about the machine. With the movable clock (the demo), the jobs whose work depends on the business
date (billing run, dunning, overdue flags) also run as soon as the clock is moved, so that
``prorata clock advance 1month`` renews the demo's subscriptions without waiting for the hour.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connections

from prorata.common import metrics, requestlog
from prorata.common.clock import MOVABLE, clock_mode, now

logger = logging.getLogger("prorata.jobs")

#: How often a job that follows the movable clock checks whether it moved (seconds).
CLOCK_POLL = 2.0


@dataclass(frozen=True)
class PeriodicJob:
    """``function`` runs every ``every`` seconds (from the start of one run to the start of the
    next; a run longer than that is followed by the next at once, never overlapped by it)."""

    name: str
    every: float
    function: Callable[[], dict[str, int]]
    #: Also run when the movable clock has moved since the last run (the business date changed).
    follows_clock: bool = False


def periodic_jobs() -> tuple[PeriodicJob, ...]:
    """Every periodic job, with its interval from the settings (``PRORATA_*_EVERY``)."""
    from prorata.jobs import periodic

    every = settings.PRORATA_JOB_EVERY
    return (
        PeriodicJob("deliver-mail", every["deliver-mail"], periodic.deliver_mail),
        PeriodicJob("bill-run", every["bill-run"], periodic.billing_run, follows_clock=True),
        PeriodicJob("dunning", every["dunning"], periodic.dunning_retries, follows_clock=True),
        PeriodicJob("overdue", every["overdue"], periodic.overdue_flags, follows_clock=True),
        PeriodicJob("reconcile-payments", every["reconcile-payments"],
                    periodic.reconcile_payments),
        PeriodicJob("prune", every["prune"], periodic.prune),
        PeriodicJob("deliver-webhooks", every["deliver-webhooks"], periodic.deliver_webhooks),
    )


def broker_configured() -> bool:
    """Whether Celery (beat and workers, through ``PRORATA_BROKER_URL``) runs the schedule.
    (:mod:`prorata.jobs.celery` answers the same without importing Django's models.)"""
    return bool(os.environ.get("PRORATA_BROKER_URL"))


def job_named(name: str) -> PeriodicJob:
    """The job called ``name``; raises ``KeyError`` naming the known ones."""
    for job in periodic_jobs():
        if job.name == name:
            return job
    raise KeyError(f"No periodic job is called {name!r}; the jobs are "
                   f"{', '.join(job.name for job in periodic_jobs())}.")


@dataclass(frozen=True)
class JobOutcome:
    name: str
    job_id: str
    ok: bool
    counts: dict[str, int]
    seconds: float


#: Called with each outcome (the metrics count runs and durations; tests listen).
OUTCOME_LISTENERS: list[Callable[[JobOutcome], None]] = []


def run_job(job: PeriodicJob) -> JobOutcome:
    """Run ``job`` once, here: log its start and outcome with a job id (on every record it writes),
    count it in the metrics, never raise (a failed run is logged with its traceback and tried again
    at the next interval)."""
    job_id = uuid.uuid4().hex[:16]
    tokens = (requestlog.job.set(job.name), requestlog.job_id.set(job_id))
    started = time.monotonic()
    try:
        counts = job.function()
    except Exception:
        logger.exception("Job %s failed", job.name)
        outcome = JobOutcome(job.name, job_id, False, {}, time.monotonic() - started)
    else:
        outcome = JobOutcome(job.name, job_id, True, counts, time.monotonic() - started)
        level = logging.INFO if any(counts.values()) else logging.DEBUG
        logger.log(level, "Job %s done in %.3f s: %s", job.name, outcome.seconds, counts,
                   extra={"counts": counts, "seconds": round(outcome.seconds, 3)})
    finally:
        requestlog.job.reset(tokens[0])
        requestlog.job_id.reset(tokens[1])
    metrics.JOB_RUNS.labels(job.name, "ok" if outcome.ok else "failed").inc()
    metrics.JOB_SECONDS.labels(job.name).observe(outcome.seconds)
    for item, count in outcome.counts.items():
        if count:
            metrics.JOB_COUNTS.labels(job.name, item).inc(count)
    for listener in OUTCOME_LISTENERS:
        listener(outcome)
    return outcome


@dataclass
class JobTimer:
    """When ``job`` is due: bookkeeping only, with the instants given (so tests need no waiting).

    ``at`` is a monotonic reading in seconds; ``instant`` the project clock's when the job follows it.
    A new timer is due at once: a worker that starts runs every job first (each is cheap when
    nothing is due)."""

    job: PeriodicJob
    last_start: float | None = None
    last_instant: datetime | None = None

    def due(self, *, at: float, instant: datetime | None = None) -> bool:
        if self.last_start is None or at - self.last_start >= self.job.every:
            return True
        return self.job.follows_clock and instant is not None and instant != self.last_instant

    def started(self, *, at: float, instant: datetime | None = None) -> None:
        self.last_start, self.last_instant = at, instant

    def wait(self, *, at: float) -> float:
        """Seconds to sleep before asking :meth:`due` again."""
        if self.last_start is None:
            return 0.0
        left = max(self.job.every - (at - self.last_start), 0.0)
        return min(left, CLOCK_POLL) if self.job.follows_clock and _movable() else left


def _movable() -> bool:
    return clock_mode() == MOVABLE


@dataclass
class Worker:
    """``prorata worker``: every job of ``jobs`` on its own thread until :meth:`stop`."""

    jobs: tuple[PeriodicJob, ...]
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Run until :meth:`stop` is called (SIGTERM, SIGINT); a job running then is finished
        first (each is safe to interrupt, but finishing keeps the log and metrics whole)."""
        threads = [threading.Thread(target=self._loop, args=(job,), name=f"job-{job.name}",
                                    daemon=True) for job in self.jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def stop(self) -> None:
        self.stopping.set()

    def _loop(self, job: PeriodicJob) -> None:
        timer = JobTimer(job)
        while not self.stopping.is_set():
            instant = _clock_instant() if job.follows_clock and _movable() else None
            at = time.monotonic()
            if timer.due(at=at, instant=instant):
                timer.started(at=at, instant=instant)
                run_job(job)
                # This thread's connection: not kept open between runs an hour apart.
                connections.close_all()
            self.stopping.wait(timer.wait(at=time.monotonic()))


def _clock_instant() -> datetime | None:
    try:
        return now()
    except Exception:
        logger.exception("Reading the project clock failed")
        return None
