"""``bill-run``'s progress (issue 15): a bar on a terminal, a JSON summary, ``--quiet`` for cron,
and the same progress in the metrics; the reconciliation job's hook."""

from __future__ import annotations

import io
import json

import pytest
from benchmarks.billing_run import _load
from django.core.management import call_command
from django.db import connection

from prorata.common import metrics
from prorata.common.clock import now
from prorata.jobs import periodic
from prorata.jobs.progress import RunWatcher, charging_line, progress_line
from tests.app.jobs.support import assert_each_period_once


def test_the_progress_line_shows_counts_share_rate_and_time_left():
    assert progress_line(done=61_200, total=100_000, seconds=15.0) == (
        "Renewing ███████████████░░░░░░░░░ 61,200/100,000 (61%) 4,080/s ETA 0:10")
    assert progress_line(done=0, total=10, seconds=0.0) == (
        "Renewing ░░░░░░░░░░░░░░░░░░░░░░░░ 0/10 (0%)")  # no rate yet
    assert progress_line(done=0, total=0, seconds=1.0).endswith("0/0 (100%)")
    assert progress_line(done=12, total=10, seconds=1.0).startswith(  # other runs' renewals too
        "Renewing ████████████████████████ 12/12 (100%)")
    assert charging_line(pending=1) == "Charging: 1 card payment to go"
    assert charging_line(pending=1204) == "Charging: 1,204 card payments to go"


@pytest.mark.django_db
def test_bill_run_prints_one_json_summary_and_nothing_with_quiet():
    _load(12, connection.vendor, credit_share=0)
    out, err = io.StringIO(), io.StringIO()
    call_command("bill-run", "--no-charge", stdout=out, stderr=err)
    assert json.loads(out.getvalue())["renewed"] == 12
    assert err.getvalue() == ""  # not a terminal: no progress bar
    assert_each_period_once(12)
    out = io.StringIO()
    call_command("bill-run", "--quiet", stdout=out, stderr=err)
    assert out.getvalue() == "" and err.getvalue() == ""


@pytest.mark.django_db
def test_the_watcher_counts_what_is_due_and_sets_the_gauges():
    _load(7, connection.vendor, credit_share=0)
    shown: list[str] = []
    from benchmarks.billing_run import RUN_AT

    watcher = RunWatcher(at=RUN_AT, partition=None, show=shown.append)
    assert watcher.due == 7
    assert RunWatcher(at=RUN_AT, partition=(0, 2), show=None).due <= 7
    with watcher:
        assert metrics.BILL_RUN_DUE._value.get() == 7
    assert metrics.BILL_RUN_DUE._value.get() == 0  # no run: nothing due in the gauges


@pytest.mark.django_db
def test_reconciliation_uses_the_subscriptions_job_when_it_exists(monkeypatch, clock):
    from prorata.subscriptions import services

    counts = periodic.reconcile_payments()  # the real job: nothing to settle
    assert counts and not any(counts.values())
    monkeypatch.setattr(services, "payments_reconcile_due",
                        lambda: {"looked_at": 2, "applied": 1}, raising=False)
    assert periodic.reconcile_payments() == {"looked_at": 2, "applied": 1}
    assert now() == clock.now()
