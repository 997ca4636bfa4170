"""The billing run in several worker processes (``bill_run(workers=N)``, ``bill-run --workers``):
the processes share the work, each period is invoiced once, and the numbers stay gapless.
PostgreSQL only: the workers are other processes, which need a database server."""

import pytest
from benchmarks.billing_run import RUN_AT, _load
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from prorata.common.clock import clock_set
from prorata.jobs.billing_run import bill_run
from prorata.jobs.models import Renewal
from tests.app.jobs.support import assert_each_period_once, test_database_url


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="the workers are other processes: they need a database server")
def test_two_worker_processes_renew_each_period_once_with_gapless_numbers(monkeypatch):
    _load(400, connection.vendor, credit_share=0)
    # The spawned workers read the environment: point them at this test's database.
    monkeypatch.setenv("DATABASE_URL", test_database_url())
    monkeypatch.setenv("PRORATA_CLOCK", "movable")
    clock_set(instant=RUN_AT)

    stats = bill_run(chunk_size=15, charge=False, workers=2)

    assert (stats.renewed, stats.failed_ids) == (400, [])
    assert stats.chunks >= 400 // 15
    assert_each_period_once(400)


@pytest.mark.django_db
def test_the_command_refuses_a_worker_count_below_one():
    with pytest.raises(CommandError, match="--workers takes a count of at least 1, not 0"):
        call_command("bill-run", "--workers", "0")
    assert Renewal.objects.count() == 0
