"""The PostgreSQL backend checks a persistent connection's health without a round trip, and still
replaces a connection that the server ended (prorata.common.postgresql)."""

from __future__ import annotations

import select
import time

import pytest
from django.db import connection

from prorata.common.db import prepared_cursor
from prorata.common.postgresql.base import PREPARE_THRESHOLD

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backend"),
]


def _next_request() -> None:
    # What Django does when a request starts (signal request_started).
    connection.close_if_unusable_or_obsolete()


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _from_another_session(sql: str, params: list[object]) -> None:
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        other.close()


def _wait_readable(timeout: float = 5.0) -> None:
    poller = select.poll()
    poller.register(connection.connection.fileno(), select.POLLIN)
    deadline = time.monotonic() + timeout
    while not poller.poll(50):
        assert time.monotonic() < deadline, "the server sent nothing"


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each run of Django's own check (``SELECT 1``), with its answer."""
    runs: list[bool] = []
    real = connection.is_usable

    def counted() -> bool:
        runs.append(real())
        return runs[-1]

    monkeypatch.setattr(connection, "is_usable", counted)
    return runs


def test_a_quiet_connection_is_reused_without_a_check_query(checks: list[bool]) -> None:
    pid = _backend_pid()
    _next_request()
    assert _backend_pid() == pid
    assert checks == []


def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it(
    checks: list[bool],
) -> None:
    pid = _backend_pid()
    _from_another_session("SELECT pg_terminate_backend(%s)", [pid])
    _wait_readable()
    _next_request()
    assert _backend_pid() != pid  # no error: a new connection
    assert checks == [False]


def test_something_harmless_on_the_socket_is_checked_and_the_connection_kept(
    checks: list[bool],
) -> None:
    with connection.cursor() as cursor:
        cursor.execute("LISTEN prorata_health_test")
    pid = _backend_pid()
    _from_another_session("NOTIFY prorata_health_test", [])
    _wait_readable()
    _next_request()
    assert _backend_pid() == pid
    assert checks == [True]
    with connection.cursor() as cursor:
        cursor.execute("UNLISTEN *")


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_hot_paths_cursor_has_its_statements_prepared_and_django_s_cursors_do_not() -> None:
    for _ in range(PREPARE_THRESHOLD + 1):
        with prepared_cursor() as cursor:
            cursor.execute("SELECT count(*) FROM accounts_account WHERE id = %s", [1])
            assert cursor.fetchone() == (0,)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM accounts_user WHERE id = %s", [1])
    statements = _prepared_statements()
    assert [s for s in statements if "accounts_account" in s] == [
        "SELECT count(*) FROM accounts_account WHERE id = $1"]
    assert not [s for s in statements if "accounts_user" in s]
