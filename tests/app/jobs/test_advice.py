"""The billing run warns about a PostgreSQL server configured below a billing database's needs."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

from prorata.jobs import advice
from prorata.jobs.advice import server_advice

pytestmark = pytest.mark.django_db


def test_a_server_below_both_minimums_gets_one_line_each_saying_what_to_set(monkeypatch):
    monkeypatch.setattr(advice, "MIN_SHARED_BUFFERS", 1 << 50)
    monkeypatch.setattr(advice, "MIN_MAX_WAL_SIZE", 1 << 50)
    lines = server_advice()
    if connection.vendor != "postgresql":
        assert lines == []  # SQLite has no such settings
        return
    assert len(lines) == 2
    assert lines[0].startswith("PostgreSQL's shared_buffers is ") and "README" in lines[0]
    assert lines[1].startswith("PostgreSQL's max_wal_size is ") and "README" in lines[1]


def test_a_server_above_the_minimums_gets_no_advice(monkeypatch):
    monkeypatch.setattr(advice, "MIN_SHARED_BUFFERS", 0)
    monkeypatch.setattr(advice, "MIN_MAX_WAL_SIZE", 0)
    assert server_advice() == []


def test_bill_run_writes_the_advice_to_stderr_and_its_counts_to_stdout(monkeypatch, clock):
    monkeypatch.setattr(advice, "MIN_SHARED_BUFFERS", 1 << 50)
    out, err = io.StringIO(), io.StringIO()
    call_command("bill-run", "--no-charge", "--workers", "1", stdout=out, stderr=err)
    assert out.getvalue().startswith('{"renewed": 0')
    expected = 1 if connection.vendor == "postgresql" else 0
    assert err.getvalue().count("Warning: PostgreSQL's shared_buffers") == expected
