"""The PostgreSQL backend checks a persistent connection's health without a round trip, and still
replaces a connection that the server ended (prorata.common.postgresql)."""

from __future__ import annotations

import select
import time

import pytest
from django.db import connection

from prorata.accounts.models import Account
from prorata.common.db import prepared_cursor

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backend"),
]


@pytest.fixture(autouse=True)
def _young_connection() -> None:
    """Each test starts on a new connection: the test runner's worker keeps one for its lifetime
    (the test client does not close it between requests), and one older than CONN_MAX_AGE (600 s,
    reached in a long suite) is rightly replaced at the next request, which is not what these
    tests are about."""
    connection.close()


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


def test_statements_are_prepared_once_used_often_enough() -> None:
    connection.ensure_connection()
    threshold = connection.settings_dict["OPTIONS"]["prepare_threshold"]
    assert connection.connection.prepare_threshold == threshold == 5
    for _ in range(threshold + 1):
        with prepared_cursor() as cursor:
            cursor.execute("SELECT count(*) FROM accounts_account WHERE id = %s", [1])
            assert cursor.fetchone() == (0,)
        assert not Account.objects.filter(name="prepared?").exists()
    statements = _prepared_statements()
    assert [s for s in statements if "accounts_account" in s and "count(*)" in s] == [
        "SELECT count(*) FROM accounts_account WHERE id = $1"]
    # Django's own cursors bind in the client: the ORM's statements are never prepared.
    assert not [s for s in statements if '"accounts_account"."name"' in s]


#: What the overrides in prorata.common.postgresql.base were written against: Django's version and
#: the source of the internals they replace or call. When either changes, read Django's new
#: close_if_health_check_failed (and is_usable, health_check_*), _prepare_cursor and
#: ServerBindingCursor, adapt the overrides or drop them (is there a setting now?), re-measure
#: (benchmarks/queries.py), then update these values.
DJANGO_VERSION = "5.2.19"
OVERRIDDEN_SOURCE_SHA256 = {
    "BaseDatabaseWrapper.close_if_health_check_failed":
        "f72eb45356f4a9108c8299b1a616f582cb1b4de12848e0a2401363ec9c9eb2cd",
    "postgresql.DatabaseWrapper.close_if_health_check_failed":
        "c415cad7fbd895be1393878271133c2776c2a442841626531aa87402360ee981",
    "BaseDatabaseWrapper._prepare_cursor":
        "92079d0eed95d59d4d770845075e27b7f7e3034331b95aec778b7cfcdca64cb2",
    "postgresql.ServerBindingCursor":
        "867ab9c95c4165ea7a2a3dda184dd36386c9c6278f937d783bd5f1b27742b2d5",
}


def _sources() -> dict[str, str]:
    import hashlib
    import inspect

    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.postgresql.base import DatabaseWrapper, ServerBindingCursor

    return {
        "BaseDatabaseWrapper.close_if_health_check_failed": hashlib.sha256(inspect.getsource(
            BaseDatabaseWrapper.close_if_health_check_failed).encode()).hexdigest(),
        "postgresql.DatabaseWrapper.close_if_health_check_failed": hashlib.sha256(
            inspect.getsource(DatabaseWrapper.close_if_health_check_failed).encode()).hexdigest(),
        "BaseDatabaseWrapper._prepare_cursor": hashlib.sha256(inspect.getsource(
            BaseDatabaseWrapper._prepare_cursor).encode()).hexdigest(),
        "postgresql.ServerBindingCursor": hashlib.sha256(
            inspect.getsource(ServerBindingCursor).encode()).hexdigest(),
    }


def test_the_override_is_looked_at_again_when_django_changes() -> None:
    import django

    assert django.__version__ == DJANGO_VERSION
    assert _sources() == OVERRIDDEN_SOURCE_SHA256
