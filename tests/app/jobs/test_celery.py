"""The billing run split into partitions: Celery workers in another process with Redis or RabbitMQ
as the broker, and the same partitions in-process without a broker (issue 5 "scale-out")."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from benchmarks.billing_run import _load
from django.db import connection

from prorata.billing.models import Payment, PaymentStatus
from prorata.jobs import celery as jobs_celery
from tests.app.jobs.support import assert_each_period_once, test_database_url

ROOT = Path(__file__).resolve().parents[3]
BROKERS = {
    "redis": "redis://127.0.0.1:6379/7",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}


@pytest.mark.django_db
def test_without_a_broker_the_partitions_run_in_process(monkeypatch):
    monkeypatch.delenv("PRORATA_BROKER_URL", raising=False)
    _load(40, connection.vendor, credit_share=0)
    counts = jobs_celery.bill_run_partitioned(partitions=3, chunk_size=5, charge=False)
    assert (counts["renewed"], counts["partitions"], counts["where"]) == (40, 3, "in-process")
    assert_each_period_once(40)


def test_beat_sends_the_periodic_billing_run_hourly():
    entry = jobs_celery.app.conf.beat_schedule["prorata-billing-run"]
    assert entry["task"] in jobs_celery.app.tasks
    assert entry["schedule"] == 3600.0


@pytest.mark.django_db
def test_the_periodic_billing_run_queues_its_partitions_which_renew_and_charge(monkeypatch):
    monkeypatch.setenv("PRORATA_BILL_RUN_PARTITIONS", "3")
    # Tasks run here as they are queued: what the workers would do, in this test's transaction.
    monkeypatch.setitem(jobs_celery.app.conf, "task_always_eager", True)
    _load(30, connection.vendor, credit_share=0)

    assert jobs_celery.bill_run_scheduled() == 3

    assert_each_period_once(30)
    assert not Payment.objects.filter(status=PaymentStatus.PENDING).exists()  # charged too


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the workers are other processes: they need a database server",
)
@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_celery_workers_run_the_partitions(broker):
    _load(120, connection.vendor, credit_share=0)
    queue = f"prorata-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ, "PRORATA_BROKER_URL": BROKERS[broker], "PRORATA_CELERY_QUEUE": queue,
        "PRORATA_CLOCK": "movable", "DJANGO_SETTINGS_MODULE": "prorata.settings.base",
        "DATABASE_URL": test_database_url(),
    }
    worker = subprocess.Popen(  # noqa: S603 - our own worker, on loopback
        [sys.executable, "-m", "celery", "-A", "prorata.jobs.celery", "worker",
         "--concurrency", "2", "--pool", "prefork", "--loglevel", "WARNING", "-Q", queue,
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        # The command, as an operator runs it, in its own process: it sends one task per partition.
        output = subprocess.run(
            [sys.executable, "-m", "prorata.cli", "bill-run", "--partitions", "4",
             "--chunk-size", "10", "--no-charge"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=True,
        ).stdout
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
    counts = json.loads(output.strip().splitlines()[-1])
    assert (counts["renewed"], counts["partitions"], counts["where"]) == (120, 4, "celery")
    assert_each_period_once(120)
