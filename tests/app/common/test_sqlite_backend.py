"""The SQLite backend queues one process's writers on a lock (prorata.common.sqlite): a
transaction waits for the lock, not in SQLite's busy handler; the lock is given back however the
transaction ends; waiting too long is a transient ``database is locked`` error."""

from __future__ import annotations

import hashlib
import inspect
import threading
import time

import django
import pytest

from prorata.common import sqlite
from prorata.common.db import is_transient
from prorata.common.sqlite.base import DatabaseWrapper, writer_lock

# The database blocker of pytest-django guards every connection, these files' too.
pytestmark = pytest.mark.django_db

#: What the overrides were written against: Django's version and the source of the methods they
#: replace or rely on. When either changes, read Django's new ones, adapt the overrides (or drop
#: them), then update these values.
DJANGO_VERSION = "5.2.19"
OVERRIDDEN_SOURCE_SHA256 = {
    "sqlite3.DatabaseWrapper._start_transaction_under_autocommit":
        "7315cfc61c1dde12afa3e1dd77790b874b07c8261f505760fcd5f169d1aae763",
    "sqlite3.DatabaseWrapper._set_autocommit":
        "951168e64a4baa0dce7ce409d6706757ee5795fbe6f3f1bfdf1ef5923c171e34",
    "BaseDatabaseWrapper._close":
        "d1a3f0e9a11cd0842ea402c2f180e6d1f116753ccc15064e1daef66faa531e7a",
    "BaseDatabaseWrapper.set_autocommit":
        "4e91610fe9d81813d2ac3772d3439724315b1f8034c320d7c698803337ff6245",
}


def test_the_overrides_are_looked_at_again_when_django_changes() -> None:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.sqlite3 import base

    def digest(function: object) -> str:
        return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()  # type: ignore[arg-type]

    assert django.__version__ == DJANGO_VERSION
    assert {
        "sqlite3.DatabaseWrapper._start_transaction_under_autocommit":
            digest(base.DatabaseWrapper._start_transaction_under_autocommit),
        "sqlite3.DatabaseWrapper._set_autocommit": digest(base.DatabaseWrapper._set_autocommit),
        "BaseDatabaseWrapper._close": digest(BaseDatabaseWrapper._close),
        "BaseDatabaseWrapper.set_autocommit": digest(BaseDatabaseWrapper.set_autocommit),
    } == OVERRIDDEN_SOURCE_SHA256


def wrapper(path: str) -> DatabaseWrapper:
    """A connection of the project's SQLite backend to the file ``path``, as the settings make it."""
    return DatabaseWrapper({
        "NAME": path, "ENGINE": "prorata.common.sqlite", "USER": "", "PASSWORD": "", "HOST": "",
        "PORT": "", "ATOMIC_REQUESTS": False, "AUTOCOMMIT": True, "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False, "TIME_ZONE": None, "TEST": {},
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000;",
                    "transaction_mode": "IMMEDIATE"},
    }, alias=f"test-{time.monotonic_ns()}")


@pytest.fixture
def path(tmp_path) -> str:
    name = str(tmp_path / "db.sqlite3")
    setup = wrapper(name)
    with setup.cursor() as cursor:
        cursor.execute("CREATE TABLE t (n INTEGER)")
    setup.close()
    return name


def test_the_settings_select_it() -> None:
    from django.conf import settings

    assert sqlite.__name__ == "prorata.common.sqlite"
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite"):
        assert settings.DATABASES["default"]["ENGINE"] == "prorata.common.sqlite"


def test_a_second_writer_waits_for_the_first_then_writes(path) -> None:
    first = wrapper(path)
    order: list[str] = []
    began = threading.Event()

    def other() -> None:
        second = wrapper(path)  # a connection belongs to its thread
        began.wait()
        with _atomic(second):
            order.append("second writes")
            second.cursor().execute("INSERT INTO t VALUES (2)")
        second.close()

    thread = threading.Thread(target=other)
    thread.start()
    with _atomic(first):
        first.cursor().execute("INSERT INTO t VALUES (1)")
        began.set()
        time.sleep(0.2)  # the other thread is waiting on the lock meanwhile
        assert writer_lock(path).locked()
        order.append("first commits")
    thread.join(5)
    assert order == ["first commits", "second writes"]
    assert not writer_lock(path).locked()
    assert sorted(row[0] for row in first.cursor().execute("SELECT n FROM t")) == [1, 2]
    first.close()


def test_the_lock_is_given_back_after_a_rollback_and_on_close(path) -> None:
    connection = wrapper(path)
    with pytest.raises(RuntimeError), _atomic(connection):
        connection.cursor().execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("rolled back")
    assert not writer_lock(path).locked()
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    assert writer_lock(path).locked()
    connection.close()  # mid-transaction: the connection goes, and the lock with it
    assert not writer_lock(path).locked()


def test_waiting_too_long_is_a_transient_busy_error(path, monkeypatch) -> None:
    monkeypatch.setattr("prorata.common.sqlite.base.WRITER_WAIT_S", 0.05)
    holder, waiter = wrapper(path), wrapper(path)
    with _atomic(holder):
        holder.cursor().execute("INSERT INTO t VALUES (1)")
        with pytest.raises(django.db.utils.OperationalError) as raised, _atomic(waiter):
            pass
        assert is_transient(raised.value)
    assert not writer_lock(path).locked()
    holder.close()
    waiter.close()


def test_an_in_memory_database_takes_no_lock() -> None:
    connection = wrapper(":memory:")
    with _atomic(connection):
        connection.cursor().execute("CREATE TABLE m (n INTEGER)")
        assert not writer_lock(":memory:").locked()
    connection.close()


class _atomic:
    """``transaction.atomic`` on a connection made here (not in django.db.connections)."""

    def __init__(self, connection: DatabaseWrapper) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            self.connection.commit()
        else:
            self.connection.rollback()
        self.connection.set_autocommit(True)


def test_a_waiting_writer_holds_no_sqlite_mutex(path) -> None:
    """What stalled the load test: while one thread waits to write, another thread (the writer,
    whose garbage collector frees the waiting connection's cursors) must be able to use the
    waiting connection at once. In SQLite's busy handler the waiting connection's mutex is held
    for the whole busy timeout (5 s); waiting on the process's lock, it is free."""
    holder = wrapper(path)
    waiting: dict[str, DatabaseWrapper] = {}
    ready, done = threading.Event(), threading.Event()

    def wait_to_write() -> None:
        waiting["connection"] = connection = wrapper(path)
        connection.ensure_connection()
        ready.set()
        with _atomic(connection):  # waits for the holder's transaction
            connection.cursor().execute("INSERT INTO t VALUES (2)")
        connection.close()

    with _atomic(holder):
        holder.cursor().execute("INSERT INTO t VALUES (1)")
        thread = threading.Thread(target=wait_to_write)
        thread.start()
        ready.wait(5)
        time.sleep(0.2)  # the other thread is now waiting to begin

        def use_the_waiting_connection() -> None:
            waiting["connection"].connection.execute("SELECT 1").fetchall()
            done.set()

        user = threading.Thread(target=use_the_waiting_connection, daemon=True)
        user.start()
        assert done.wait(2), "the waiting connection's mutex is held while it waits"
    thread.join(10)
    assert sorted(row[0] for row in holder.cursor().execute("SELECT n FROM t")) == [1, 2]
    holder.close()
