"""Database helpers shared by the services: the bounded retry of transient PostgreSQL failures.

PostgreSQL aborts a transaction with SQLSTATE ``40001`` (serialization failure) or ``40P01``
(deadlock detected) when two transactions cannot both commit as they are; the right answer is to run
the whole transaction again (DESIGN §8). :func:`retry_transient` does that a bounded number of times,
and when every attempt failed it raises :class:`~prorata.common.errors.Busy` (a 503 with a clear
message), never a bare 500. SQLite never raises these: its writers queue on the database lock.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, ParamSpec, TypeVar

from django.db import DatabaseError, connection
from django.db.backends.utils import CursorWrapper
from django.db.models import Model

from prorata.common.errors import Busy

#: SQLSTATE codes after which running the same transaction again is correct.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=Model)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or the driver error it wraps) is a serialization failure or a deadlock."""
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "sqlstate", None) in TRANSIENT_SQLSTATES:
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
