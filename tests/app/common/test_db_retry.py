"""SQLite's "database is locked" is retried like PostgreSQL's serialization failures, and a batch
job leaves SQLite's single write lock free for others between its transactions (issue 12, item 8)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from django.db import OperationalError

from prorata.common import db
from prorata.common.db import (
    SQLITE_GAP_S,
    SQLITE_HOLD_S,
    WriterPacer,
    is_transient,
    retry_transient,
)
from prorata.common.errors import Busy


def _open_pair(path: Path) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    """Two connections to one WAL database file; the first holds the write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE IF NOT EXISTS t (x)")
    holder.execute("BEGIN IMMEDIATE")
    return holder, sqlite3.connect(path, isolation_level=None, timeout=0)


def _as_django(error: sqlite3.Error) -> OperationalError:
    """What Django raises for a driver error: its own class, the driver's error as the cause."""
    wrapped = OperationalError(*error.args)
    wrapped.__cause__ = error
    return wrapped


class _OutsideTransactions:
    in_atomic_block = False


def test_a_real_lock_error_is_transient_and_others_are_not(tmp_path):
    holder, waiter = _open_pair(tmp_path / "locked.sqlite3")
    with pytest.raises(sqlite3.OperationalError, match="database is locked") as locked:
        waiter.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="no such table") as missing:
        waiter.execute("SELECT * FROM missing")
    holder.rollback()
    assert is_transient(_as_django(locked.value))
    assert not is_transient(_as_django(missing.value))
    assert not is_transient(OperationalError("database is locked"))  # the code decides, not words


def test_extended_lock_codes_count_by_their_primary_code():
    busy_timeout, locked_sharedcache, readonly = sqlite3.OperationalError(), \
        sqlite3.OperationalError(), sqlite3.OperationalError()
    busy_timeout.sqlite_errorcode = 773  # SQLITE_BUSY_TIMEOUT = SQLITE_BUSY | (3 << 8)
    locked_sharedcache.sqlite_errorcode = 262  # SQLITE_LOCKED_SHAREDCACHE
    readonly.sqlite_errorcode = 8  # SQLITE_READONLY
    assert is_transient(_as_django(busy_timeout)) and is_transient(_as_django(locked_sharedcache))
    assert not is_transient(_as_django(readonly))


def test_a_transaction_that_found_the_database_locked_runs_again(tmp_path, monkeypatch):
    """The writer holds the lock for the first two attempts, then commits: the third succeeds."""
    monkeypatch.setattr("prorata.common.db.time.sleep", lambda seconds: None)
    monkeypatch.setattr("prorata.common.db.connection", _OutsideTransactions())
    holder, waiter = _open_pair(tmp_path / "busy.sqlite3")
    attempts = []

    @retry_transient(attempts=3)
    def write() -> str:
        attempts.append(1)
        if len(attempts) == 3:
            holder.commit()
        try:
            waiter.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise _as_django(error) from error
        waiter.execute("INSERT INTO t VALUES (1)")
        waiter.execute("COMMIT")
        return "written"

    assert write() == "written" and len(attempts) == 3
    assert waiter.execute("SELECT count(*) FROM t").fetchone() == (1,)

    holder.execute("BEGIN IMMEDIATE")
    attempts.clear()

    @retry_transient(attempts=2)
    def never() -> None:
        attempts.append(1)
        try:
            waiter.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise _as_django(error) from error

    with pytest.raises(Busy) as busy:
        never()
    assert len(attempts) == 2 and busy.value.http_status == 503
    holder.rollback()


class _Clock:
    def __init__(self) -> None:
        self.at = 100.0
        self.slept: list[float] = []
        self.during_sleep = lambda: None

    def monotonic(self) -> float:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.during_sleep()
        self.at += seconds


class _SQLite:
    vendor = "sqlite"

    def __init__(self, name: Path, *, in_atomic_block: bool = False) -> None:
        self.settings_dict = {"NAME": str(name)}
        self.in_atomic_block = in_atomic_block


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr(db, "time", fake)
    return fake


def test_a_job_leaves_the_lock_free_after_a_while_and_after_every_transaction_while_others_write(
    tmp_path, monkeypatch, clock
):
    wal = tmp_path / "db.sqlite3-wal"
    wal.write_bytes(b"x")
    monkeypatch.setattr(db, "connection", _SQLite(tmp_path / "db.sqlite3"))
    pacer = WriterPacer()
    clock.at += SQLITE_HOLD_S / 2
    pacer.pause()
    assert clock.slept == []  # a short run of work: no gap yet
    clock.at += SQLITE_HOLD_S
    pacer.pause()
    assert clock.slept == [SQLITE_GAP_S]  # nobody wrote in the gap: back to working
    clock.at += 0.01
    pacer.pause()
    assert clock.slept == [SQLITE_GAP_S]

    clock.at += SQLITE_HOLD_S
    clock.during_sleep = lambda: wal.write_bytes(b"x" * 4096)  # a checkout commits in the gap
    pacer.pause()
    clock.at += 0.01
    pacer.pause()  # someone is waiting: a gap after this transaction too
    assert clock.slept == [SQLITE_GAP_S] * 3
    clock.during_sleep = lambda: None
    clock.at += 0.01
    pacer.pause()  # that gap was not taken: the next comes after a while again
    clock.at += 0.01
    pacer.pause()
    assert clock.slept == [SQLITE_GAP_S] * 4


def test_the_pacer_does_nothing_inside_a_transaction_nor_on_postgresql(tmp_path, monkeypatch,
                                                                       clock):
    monkeypatch.setattr(db, "connection", _SQLite(tmp_path / "db.sqlite3", in_atomic_block=True))
    pacer = WriterPacer()
    clock.at += 10 * SQLITE_HOLD_S
    pacer.pause()
    postgresql = _SQLite(tmp_path / "db.sqlite3")
    postgresql.vendor = "postgresql"
    monkeypatch.setattr(db, "connection", postgresql)
    pacer.pause()
    assert clock.slept == []
