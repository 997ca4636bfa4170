"""The billing run across processes or machines, with Celery (issue 5 "scale-out").

With ``PRORATA_BROKER_URL`` set (Redis ``redis://127.0.0.1:6379/0`` or RabbitMQ
``amqp://guest:guest@127.0.0.1:5672//``), ``prorata bill-run --partitions N`` sends N tasks, one per
partition (accounts whose id % N is the partition's index), to the workers started with
``celery -A prorata.jobs.celery worker``, and waits for their counts. Without a broker the same
partitions run here, one after the other. Either way each partition is the same
:func:`~prorata.jobs.billing_run.bill_run`: claims are ``SKIP LOCKED`` and each period is invoiced once
(database constraint), so partitions may even overlap or be retried without harm.

Results travel back through the broker's own result channel (``rpc://``), so nothing but the broker
is needed. Tasks take numbers, not objects (STYLE rule 8).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, group

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")

app = Celery("prorata")
app.conf.update(
    broker_url=os.environ.get("PRORATA_BROKER_URL") or "memory://",
    result_backend=os.environ.get("PRORATA_RESULT_BACKEND", "rpc://"),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # A partition is long: one at a time per worker process, acknowledged when done so that a
    # worker killed mid-way leaves its partition to be redelivered (the run is safe to redo).
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    broker_connection_retry_on_startup=True,
    # One queue per deployment (tests use their own, so that nothing else consumes their tasks).
    task_default_queue=os.environ.get("PRORATA_CELERY_QUEUE", "prorata"),
)


@app.task(name="prorata.bill_partition")
def bill_partition(index: int, count: int, chunk_size: int, charge: bool) -> dict[str, Any]:
    """Run the billing run for partition ``index`` of ``count``; return its counts."""
    import django

    django.setup()
    from prorata.jobs.billing_run import bill_run

    return bill_run(chunk_size=chunk_size, partition=(index, count), charge=charge).as_dict()


def _beat_schedule() -> dict[str, dict[str, Any]]:
    """Every periodic job of :func:`prorata.jobs.schedule.periodic_jobs`, sent by
    ``celery -A prorata.jobs.celery beat`` at its interval (``PRORATA_*_EVERY``). The billing run is
    sent as :func:`bill_run_scheduled`, which splits it into ``PRORATA_BILL_RUN_PARTITIONS``
    partition tasks; the others as :func:`periodic_job`. A task not started within its interval
    expires (workers down): the next one does the same work, so they never pile up."""
    from django.conf import settings

    schedule: dict[str, dict[str, Any]] = {}
    for name, every in settings.PRORATA_JOB_EVERY.items():
        if name == "bill-run":
            schedule["prorata-billing-run"] = {
                "task": "prorata.bill_run_scheduled", "schedule": every,
                "options": {"expires": every},
            }
        else:
            schedule[f"prorata-{name}"] = {
                "task": "prorata.periodic_job", "schedule": every, "args": (name,),
                "options": {"expires": every},
            }
    return schedule


app.conf.beat_schedule = _beat_schedule()


@app.task(name="prorata.periodic_job")
def periodic_job(name: str) -> dict[str, Any]:
    """Run the periodic job called ``name`` once on this worker; its counts, and ``ok``."""
    import django

    django.setup()
    from prorata.jobs.schedule import job_named, run_job

    outcome = run_job(job_named(name))
    return {"ok": outcome.ok, **outcome.counts}


@app.task(name="prorata.bill_run_scheduled")
def bill_run_scheduled() -> int:
    """Queue one :func:`bill_partition` task per partition, charging included, and return how
    many. It does not wait for them (a task waiting on tasks can starve a small pool); a run that
    overlaps the previous one is harmless (``SKIP LOCKED`` claims, one invoice per period)."""
    import django

    django.setup()
    from prorata.jobs.billing_run import CHUNK_SIZE

    count = max(int(os.environ.get("PRORATA_BILL_RUN_PARTITIONS", "1")), 1)
    group(bill_partition.s(index, count, CHUNK_SIZE, True) for index in range(count)).apply_async()
    return count


def broker_configured() -> bool:
    """Whether a broker is configured (:func:`prorata.jobs.schedule.broker_configured`)."""
    return bool(os.environ.get("PRORATA_BROKER_URL"))


def bill_run_partitioned(
    *, partitions: int, chunk_size: int, charge: bool, timeout: float = 3600
) -> dict[str, Any]:
    """Run every partition — on the Celery workers when a broker is configured, else here — and
    return the summed counts plus ``"where"``: ``"celery"`` or ``"in-process"``."""
    if broker_configured():
        results = [
            bill_partition.delay(index, partitions, chunk_size, charge)
            for index in range(partitions)
        ]
        counts = [result.get(timeout=timeout) for result in results]
        where = "celery"
    else:
        from prorata.jobs.billing_run import bill_run

        counts = [
            bill_run(chunk_size=chunk_size, partition=(index, partitions), charge=charge).as_dict()
            for index in range(partitions)
        ]
        where = "in-process"
    summed: dict[str, Any] = {key: sum(count[key] for count in counts) for key in counts[0]}
    return {**summed, "partitions": partitions, "where": where}
