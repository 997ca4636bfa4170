"""Database helpers shared by the services: the bounded retry of transient lock failures.

PostgreSQL aborts a transaction with SQLSTATE ``40001`` (serialization failure) or ``40P01``
(deadlock detected) when two transactions cannot both commit as they are; the right answer is to run
the whole transaction again (DESIGN §8). SQLite has one writer at a time: a transaction begins
``IMMEDIATE`` (settings), waits up to the busy timeout for the write lock, and fails with
``SQLITE_BUSY`` ("database is locked") when it did not get it — nothing was done, and trying again
is as right. Its waiters poll rather than queue, so under many writers one of them can lose every
poll until its timeout: a new attempt starts polling afresh. :func:`retry_transient` retries both
kinds a bounded number of times, and when every attempt failed it raises
:class:`~prorata.common.errors.Busy` (a 503 with a clear message), never a bare 500.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from django.db import DatabaseError, connection
from django.db.backends.utils import CursorWrapper
from django.db.models import Model

from prorata.common.errors import Busy

#: SQLSTATE codes after which running the same transaction again is correct.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})
#: SQLite's primary result codes for "another connection holds the lock": SQLITE_BUSY (the write
#: lock, after the busy timeout) and SQLITE_LOCKED (a conflict within a shared cache).
TRANSIENT_SQLITE_CODES = frozenset({5, 6})

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=Model)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or the driver error it wraps) is a serialization failure or a deadlock
    (PostgreSQL), or a lock held by another connection (SQLite; extended codes such as
    ``SQLITE_BUSY_TIMEOUT`` count by their primary code, the low byte)."""
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "sqlstate", None) in TRANSIENT_SQLSTATES:
            return True
        code = getattr(seen, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in TRANSIENT_SQLITE_CODES:
            return True
        seen = seen.__cause__
    return False


def retry_transient(
    function: Callable[P, R] | None = None, *, attempts: int = 4, backoff: float = 0.01
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Run the decorated transaction again after a serialization failure or a deadlock.

    Use it on a function whose body is one whole ``transaction.atomic()`` block: a retry re-runs it
    from the start. Inside an outer transaction nothing can be retried (the outer one is already
    aborted), so the error is passed up for the outermost retrying function to handle. Waits
    ``backoff × attempt`` seconds between attempts; raises :class:`Busy` after ``attempts`` failures.
    """

    def decorate(inner: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(inner)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            attempt = 1
            while True:
                try:
                    return inner(*args, **kwargs)
                except DatabaseError as error:
                    if not is_transient(error) or connection.in_atomic_block:
                        raise
                    if attempt >= attempts:
                        raise Busy(
                            "Too many changes are being made to this account at once; nothing "
                            "was saved. Try again in a moment.",
                            attempts=attempts,
                        ) from error
                time.sleep(backoff * attempt)
                attempt += 1

        return wrapper

    if function is not None:
        return decorate(function)
    return decorate


#: Attempts of a batch job's transaction (the billing run's): it yields to web traffic rather
#: than give up (on SQLite each attempt waits up to the busy timeout: 5 minutes in all).
JOB_ATTEMPTS = 60
#: SQLite: the longest a batch job holds the write lock, over several transactions, before
#: leaving it free for :data:`SQLITE_GAP_S` (well inside the 5 s busy timeout of the settings).
SQLITE_HOLD_S = 0.5
#: Long enough for every waiting writer to poll once: SQLite's busy handler sleeps up to 100 ms
#: between polls, while a job that commits and begins again at once would win every time.
SQLITE_GAP_S = 0.12


class WriterPacer:
    """Lets other writers in between a batch job's transactions on SQLite (a no-op elsewhere).

    SQLite has one writer and its waiters poll; a job that commits and begins again at once keeps
    the lock for as long as it runs, and a checkout waiting for it fails after the busy timeout.
    Call :meth:`pause` between two of the job's transactions (never inside one): after
    :data:`SQLITE_HOLD_S` of work it leaves the lock free for :data:`SQLITE_GAP_S`, and while
    others take it in those gaps, it pauses after every
    transaction, so that web traffic goes first and the job takes the rest (whether others
    wrote in a gap is read from the write-ahead log, not guessed from timings). Who may call: the
    billing run's loops (one pacer per loop)."""

    def __init__(self) -> None:
        self._since = time.monotonic()
        self._contended = False

    def pause(self) -> None:
        if connection.vendor != "sqlite" or connection.in_atomic_block:
            return
        if not self._contended and time.monotonic() - self._since < SQLITE_HOLD_S:
            return
        before = _wal_mark()
        time.sleep(SQLITE_GAP_S)
        # The job writes nothing during the gap: a change of the write-ahead log is another
        # connection's commit, so someone was waiting and took the gap (a read of the file's
        # size and time, not a query: it works beside the job's own open cursors).
        self._contended = _wal_mark() != before
        self._since = time.monotonic()


def _wal_mark() -> tuple[int, int] | None:
    """The size and modification time of the SQLite database's write-ahead log (``None``: none)."""
    try:
        status = os.stat(f"{connection.settings_dict['NAME']}-wal")
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def prepared_cursor() -> CursorWrapper:
    """A cursor for the hot paths' hand-written queries (the API token, an account with the
    caller's membership, the quote): on PostgreSQL, the server prepares each statement once per
    connection instead of planning it on every request
    (:meth:`prorata.common.postgresql.base.DatabaseWrapper.prepared_cursor`); elsewhere, the
    usual cursor. Write its SQL with ``%s`` placeholders as usual."""
    prepared = getattr(connection, "prepared_cursor", None)
    return prepared() if prepared is not None else connection.cursor()


def concrete_columns(model: type[Model], deferred: Collection[str] = ()) -> list[str]:
    """The model's concrete columns, in the order :func:`model_from_row` expects, without the
    fields named in ``deferred``."""
    return [field.column for field in model._meta.concrete_fields if field.name not in deferred]


_Reader = tuple[list[str], list[tuple[int, list[Any], Any]]]
_readers: dict[tuple[type[Model], frozenset[str]], _Reader] = {}


def _reader(model: type[Model], deferred: frozenset[str]) -> _Reader:
    """The model's loaded field names and, for the fields that need one, the backend's value
    converters: worked out once per model (a request reads the same models every time)."""
    cached = _readers.get((model, deferred))
    if cached is None:
        table = model._meta.db_table
        fields = [f for f in model._meta.concrete_fields if f.name not in deferred]
        converters = []
        for index, field in enumerate(fields):
            column = field.get_col(table)
            found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if found:
                converters.append((index, found, column))
        cached = _readers[model, deferred] = ([f.attname for f in fields], converters)
    return cached


def model_from_row(model: type[M], values: Sequence[object], deferred: Collection[str] = ()) -> M:
    """An instance of ``model`` from a raw row of its :func:`concrete_columns` (without
    ``deferred``, which are then loaded on access, as with ``QuerySet.defer``), converted as the
    ORM would (SQLite returns booleans as integers and, in raw SQL, naive instants).

    For the hot paths that read several models in one hand-written query (the API token and its
    user, an account and the caller's membership, a page of the ledger): compiling ORM queries
    there costs more than running them."""
    names, converters = _reader(model, frozenset(deferred))
    row = list(values)
    for index, found, column in converters:
        value = row[index]
        for converter in found:
            value = converter(value, column, connection)
        row[index] = value
    return model.from_db(connection.alias, names, row)


def instant_from_db(value: datetime | str) -> datetime:
    """A timestamp column read by a hand-written query, as the ORM would return it: aware, UTC
    (PostgreSQL's cursor gives aware datetimes; SQLite's, naive UTC text or datetimes). The one
    converter of the apps' ``queries`` modules."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def insert_parts(instance: Model) -> tuple[str, str, list[Any]]:
    """The columns, placeholders and values (prepared for the database, as the ORM's insert
    prepares them) of an unsaved ``instance`` whose primary key the database assigns: for a
    queries module that inserts it within a larger statement. ``(columns, placeholders, params)``,
    the first two comma-separated."""
    fields = [field for field in instance._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    return columns, ", ".join(["%s"] * len(fields)), [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


def update_parts(instance: Model, names: Sequence[str]) -> tuple[str, list[Any]]:
    """The ``SET`` list and its values (prepared as the ORM's ``save(update_fields=names)``
    prepares them) of the fields ``names`` of a saved ``instance``: for a queries module that
    updates it within a larger statement."""
    fields = [instance._meta.get_field(name) for name in names]
    sets = ", ".join(f"{connection.ops.quote_name(field.column)} = %s" for field in fields)
    return sets, [field.get_db_prep_save(field.pre_save(instance, False), connection)
                  for field in fields]
