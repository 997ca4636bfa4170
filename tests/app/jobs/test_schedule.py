"""One schedule for every periodic job (issue 15): the table, when a job is due, the worker that
runs it without a broker, Celery beat's copy of it, and the jobs themselves."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import transaction

from prorata.common import metrics, requestlog
from prorata.common.requestlog import ContextFilter
from prorata.jobs import celery as jobs_celery
from prorata.jobs import periodic, schedule
from prorata.jobs.schedule import JobTimer, PeriodicJob, Worker, periodic_jobs, run_job
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.notifications.outbox import outbox_enqueue

T0 = datetime(2026, 3, 11, tzinfo=UTC)
EVERY_JOB = {"deliver-mail", "bill-run", "dunning", "overdue", "reconcile-payments", "prune",
             "deliver-webhooks"}


def job(every: float = 60, follows_clock: bool = False) -> PeriodicJob:
    return PeriodicJob("test", every, lambda: {"done": 1}, follows_clock=follows_clock)


def test_the_schedule_names_every_periodic_job_once_with_its_default_interval():
    jobs = {job.name: job for job in periodic_jobs()}
    assert set(jobs) == EVERY_JOB
    assert jobs["deliver-mail"].every == 5  # e-mails within seconds
    assert jobs["bill-run"].every == 3600
    assert {name for name, job in jobs.items() if job.follows_clock} == {
        "bill-run", "dunning", "overdue"}


def test_celery_beat_sends_every_job_of_the_same_schedule():
    beat = jobs_celery.app.conf.beat_schedule
    sent = {entry["args"][0] for entry in beat.values() if entry["task"] == "prorata.periodic_job"}
    assert sent | {"bill-run"} == EVERY_JOB
    for entry in beat.values():
        assert entry["task"] in jobs_celery.app.tasks
        assert entry["options"]["expires"] == entry["schedule"]  # no pile-up while workers are down
    assert beat["prorata-deliver-mail"]["schedule"] == 5


def test_a_new_timer_is_due_at_once_then_after_its_interval():
    timer = JobTimer(job(every=60))
    assert timer.due(at=1000.0)
    timer.started(at=1000.0)
    assert not timer.due(at=1059.9)
    assert timer.wait(at=1030.0) == 30.0
    assert timer.due(at=1060.0)


def test_a_job_that_follows_the_clock_runs_again_as_soon_as_the_clock_moves(settings):
    settings.PRORATA_CLOCK = "movable"
    timer = JobTimer(job(every=3600, follows_clock=True))
    timer.started(at=0.0, instant=T0)
    assert not timer.due(at=10.0, instant=T0)
    assert timer.due(at=10.0, instant=T0 + timedelta(days=31))
    assert timer.wait(at=10.0) == schedule.CLOCK_POLL  # it keeps looking


def test_a_job_that_does_not_follow_the_clock_ignores_its_moves():
    timer = JobTimer(job(every=3600))
    timer.started(at=0.0, instant=T0)
    assert not timer.due(at=10.0, instant=T0 + timedelta(days=31))


class Records(logging.Handler):
    """The records that reach a handler of the project's configuration (with its context filter)."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def job_log():
    handler = Records()
    logger = logging.getLogger("prorata")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def test_a_failing_job_is_logged_with_its_job_id_and_does_not_raise(job_log):
    def broken() -> dict[str, int]:
        logging.getLogger("prorata.billing").warning("about to fail")
        raise RuntimeError("the database went away")

    outcomes = []
    schedule.OUTCOME_LISTENERS.append(outcomes.append)
    try:
        outcome = run_job(PeriodicJob("broken", 60, broken))
    finally:
        schedule.OUTCOME_LISTENERS.remove(outcomes.append)
    assert not outcome.ok and outcomes == [outcome]
    # Every record the job writes carries its name and id, its own and those of the code it calls.
    assert [(r.name, r.job, r.job_id) for r in job_log] == [
        ("prorata.billing", "broken", outcome.job_id), ("prorata.jobs", "broken", outcome.job_id)]
    assert str(job_log[1].exc_info[1]) == "the database went away"
    assert requestlog.job.get() is None  # not left behind for what runs next on the thread


def test_a_job_run_is_counted_in_the_metrics():
    before = metrics.JOB_COUNTS.labels("counted", "sent")._value.get()
    outcome = run_job(PeriodicJob("counted", 60, lambda: {"sent": 3, "failed": 0}))
    assert outcome.ok and outcome.counts == {"sent": 3, "failed": 0}
    assert metrics.JOB_COUNTS.labels("counted", "sent")._value.get() == before + 3
    assert metrics.JOB_RUNS.labels("counted", "ok")._value.get() >= 1


def test_the_worker_runs_each_job_on_its_own_thread_until_stopped():
    ran: list[str] = []
    both_ran = threading.Barrier(2)
    worker: Worker

    def job_function(name: str):
        def run() -> dict[str, int]:
            ran.append(name)
            both_ran.wait(timeout=30)  # both threads are in a run at once: not one after the other
            worker.stop()
            return {"ran": 1}
        return run

    worker = Worker((PeriodicJob("a", 3600, job_function("a")),
                     PeriodicJob("b", 3600, job_function("b"))))
    worker.run()  # returns once stopped
    assert sorted(ran) == ["a", "b"]


def _queue_receipt(key: str) -> None:
    with transaction.atomic():
        outbox_enqueue(to="alice@bistro.example", template="receipt", language="en",
                       dedupe_key=key, context={"kind": "purchase", "document_number": "2026-1",
                                                "amount_paid": {"amount": 100, "currency": "EUR"}})


@pytest.mark.django_db
def test_worker_once_delivers_the_queued_mail(clock):
    _queue_receipt("receipt:test:1")
    call_command("worker", "--once", "--only", "deliver-mail")
    assert [m.subject for m in mail.outbox] == ["Thank you for your purchase: receipt 2026-1"]
    assert OutboxMessage.objects.get().status == OutboxStatus.SENT


@pytest.mark.django_db
def test_worker_names_the_jobs_when_asked_for_an_unknown_one():
    with pytest.raises(CommandError, match=r"No periodic job is called 'mail'.*deliver-mail"):
        call_command("worker", "--only", "mail")


@pytest.mark.django_db
def test_worker_refuses_to_be_a_second_scheduler_beside_celery_beat(monkeypatch):
    monkeypatch.setenv("PRORATA_BROKER_URL", "redis://127.0.0.1:6379/7")
    with pytest.raises(CommandError, match="Celery beat schedules the jobs"):
        call_command("worker")


@pytest.mark.django_db
def test_every_job_runs_on_an_empty_database(clock):
    for each in periodic_jobs():
        outcome = run_job(each)
        assert outcome.ok, each.name
        assert not any(outcome.counts.values()), (each.name, outcome.counts)


@pytest.mark.django_db
def test_prune_deletes_expired_sessions_only(monkeypatch):
    real_now = datetime.now(UTC)
    monkeypatch.setattr(periodic, "wall_now", lambda: real_now)
    Session.objects.create(session_key="old", session_data="x",
                           expire_date=real_now - timedelta(seconds=1))
    Session.objects.create(session_key="live", session_data="x",
                           expire_date=real_now + timedelta(days=1))
    assert periodic.prune() == {"sessions": 1}
    assert list(Session.objects.values_list("session_key", flat=True)) == ["live"]


def test_a_bad_interval_is_refused_with_the_variable_named(monkeypatch):
    from prorata.settings.base import _seconds

    monkeypatch.setenv("PRORATA_MAIL_EVERY", "soon")
    with pytest.raises(ValueError, match="PRORATA_MAIL_EVERY must be a number of seconds"):
        _seconds("PRORATA_MAIL_EVERY", 5)
    monkeypatch.setenv("PRORATA_MAIL_EVERY", "0")
    with pytest.raises(ValueError, match="above 0"):
        _seconds("PRORATA_MAIL_EVERY", 5)
    monkeypatch.setenv("PRORATA_MAIL_EVERY", "2.5")
    assert _seconds("PRORATA_MAIL_EVERY", 5) == 2.5
