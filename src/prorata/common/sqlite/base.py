"""Django's SQLite backend, with the writers of one process queued on a lock instead of SQLite's
busy handler.

SQLite has one writer; with ``transaction_mode`` ``IMMEDIATE`` (the settings) each transaction
takes the write lock at ``BEGIN`` and the others wait in SQLite's busy handler, which polls,
sleeping up to 100 ms between polls, *while holding its connection's mutex*. Two things follow
when many threads of one process write (a gthread server, a billing run beside web requests):

- **Stalls.** The cyclic garbage collector may free, in the thread that holds the write lock, a
  cursor that belongs to another thread's connection; freeing it takes that connection's mutex,
  which its thread holds while it waits for the very write lock the collecting thread holds (and
  the collecting thread keeps the GIL). Both wait until the busy timeout ends the poll: five
  seconds per such cursor. Seen in ``tests/app/jobs/test_sqlite_under_load.py``: a run beside 50
  checkouts that took more than fifteen minutes, every thread asleep.
- **No order.** Pollers are served by luck: under load some checkouts lose every poll for the
  whole busy timeout, several times in a row, and answer 503.

So a transaction of this process first waits for the process's writer lock of that database file
(a :class:`threading.Lock`: its waiters sleep without polling and hold no SQLite mutex), then
begins; the lock is released when the transaction ends (commit or rollback, then autocommit again)
or its connection closes. Writers in other processes still meet in SQLite's busy handler, as
before. Waiting longer than the busy timeout raises a ``database is locked`` error
(``SQLITE_BUSY``), which :func:`prorata.common.db.retry_transient` retries like SQLite's own. An
in-memory database (the test suite's) is private to its connection: no lock.

Overrides Django's ``_start_transaction_under_autocommit``, ``_set_autocommit`` and ``_close``
(sqlite3 backend of Django 5.2); ``tests/app/common/test_sqlite_backend.py`` fails when Django's
version or those methods' source changes, so that this is looked at again.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from django.db.backends.sqlite3 import base
from django.db.backends.sqlite3.operations import DatabaseOperations as SQLiteOperations
from django.db.utils import OperationalError

from prorata.common import books

#: Seconds a transaction waits for its process's writer lock, as long as the busy timeout of the
#: settings (``PRAGMA busy_timeout=5000``) lets SQLite wait for another process's.
WRITER_WAIT_S = 5.0

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def writer_lock(name: str) -> threading.Lock:
    """The one writer lock of this process for the database file ``name``."""
    with _locks_guard:
        return _locks.setdefault(str(name), threading.Lock())


class DatabaseOperations(SQLiteOperations):
    """Django's, with ``flush`` passing the books' DELETE triggers (prorata.common.books)."""

    def sql_flush(self, style: Any, tables: Any, *, reset_sequences: bool = False,
                  allow_cascade: bool = False) -> list[str]:
        return books.sqlite_flush_statements(list(tables), super().sql_flush(
            style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade))


class DatabaseWrapper(base.DatabaseWrapper):
    """SQLite, each write transaction queued on its process's writer lock first (module doc)."""

    ops_class = DatabaseOperations

    _writer: threading.Lock | None = None

    def _start_transaction_under_autocommit(self) -> None:
        if self.is_in_memory_db():
            super()._start_transaction_under_autocommit()
            return
        lock = writer_lock(self.settings_dict["NAME"])
        if not lock.acquire(timeout=WRITER_WAIT_S):
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = 5  # SQLITE_BUSY, as SQLite's own timeout says
            busy.sqlite_errorname = "SQLITE_BUSY"
            raise OperationalError("database is locked") from busy
        self._writer = lock
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer()
            raise

    def _set_autocommit(self, autocommit: bool) -> None:
        try:
            super()._set_autocommit(autocommit)
        finally:
            if autocommit:  # the transaction is over (committed or rolled back)
                self._release_writer()

    def _close(self) -> Any:
        try:
            return super()._close()
        finally:
            self._release_writer()

    def _release_writer(self) -> None:
        lock, self._writer = self._writer, None
        if lock is not None:
            lock.release()
