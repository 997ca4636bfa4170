"""The billing run in several worker processes (``bill_run(workers=N)``, ``bill-run --workers``):
the processes share the work, each period is invoiced once, and the numbers stay gapless.
PostgreSQL only: the workers are other processes, which need a database server."""

import pytest
from benchmarks.billing_run import RUN_AT, _load
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from prorata.billing.models import Document, DocumentKind, LedgerEntry
from prorata.common.clock import clock_set
from prorata.jobs.billing_run import bill_run
from prorata.jobs.models import Renewal
from prorata.subscriptions.models import Subscription
from tests.app.subscriptions.support import assert_books_balance


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="the workers are other processes: they need a database server")
def test_two_worker_processes_renew_each_period_once_with_gapless_numbers(monkeypatch):
    _load(400, connection.vendor, credit_share=0)
    database = settings.DATABASES["default"]
    # The spawned workers read the environment: point them at this test's database.
    monkeypatch.setenv("DATABASE_URL", f"postgres://{database['USER']}@"
                       f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/"
                       f"{database['NAME']}")
    monkeypatch.setenv("PRORATA_CLOCK", "movable")
    clock_set(instant=RUN_AT)

    stats = bill_run(chunk_size=15, charge=False, workers=2)

    assert (stats.renewed, stats.failed_ids) == (400, [])
    assert stats.chunks >= 400 // 15
    assert Renewal.objects.count() == 400
    assert Subscription.objects.filter(period_end__lte=RUN_AT).count() == 0
    sequences = sorted(Document.objects.filter(kind=DocumentKind.INVOICE)
                       .values_list("sequence", flat=True))
    assert sequences == list(range(1, 401))
    assert LedgerEntry.objects.filter(kind="invoice").count() == 400
    assert_books_balance()


@pytest.mark.django_db
def test_the_command_refuses_a_worker_count_below_one():
    with pytest.raises(CommandError, match="--workers takes a count of at least 1, not 0"):
        call_command("bill-run", "--workers", "0")
    assert Renewal.objects.count() == 0
