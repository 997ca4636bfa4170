"""Set-based writes for the billing run: many rows in one statement, without model instances.

DESIGN §8: the billing run's speed is decided by how rows reach the database. On PostgreSQL rows
go through ``COPY … FROM STDIN`` (psycopg 3); on SQLite through one ``executemany``. Values are
plain Python values: aware UTC datetimes, ints, strings, bools, and :func:`as_json` text for JSON
columns.
Callers are services that already hold the locks they need, inside ``transaction.atomic()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from django.db import connection


def reserve_ids(table: str, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``, so that rows referring to each other can be
    written in one pass. PostgreSQL: from the table's sequence (gaps are harmless for ids).
    SQLite: above the current maximum — safe because the caller's transaction holds the database's
    only write lock from its start (``transaction_mode = IMMEDIATE`` in the settings)."""
    if count <= 0:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return [row[0] for row in cursor.fetchall()]
        # Table and column names come from models' metadata, quoted; values are parameters.
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")  # noqa: S608
        first = cursor.fetchone()[0] + 1
        return list(range(first, first + count))


def sqlite_value(value: Any) -> Any:
    """``value`` as a SQLite parameter in raw SQL (instants in Django's stored text form)."""
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def pg_array(values: Sequence[int | str | datetime]) -> str:
    """``values`` as the text of a PostgreSQL array, to bind as one parameter cast to its type
    (``%s::bigint[]``). psycopg's own list adapter walks every element in Python at several
    microseconds each; this is one ``join``. Elements: ints, aware datetimes, strings."""
    parts = []
    for value in values:
        if isinstance(value, str):
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif isinstance(value, datetime):
            if value.utcoffset() is None:
                raise ValueError(f"{value!r} has no time zone: PostgreSQL would read local time.")
            parts.append(value.isoformat())
        else:
            parts.append(str(int(value)))
    return "{" + ",".join(parts) + "}"


def as_json(value: Any) -> str:
    """A JSON column's value for :func:`insert_rows` (both backends take JSON text): compact,
    UTF-8 kept as is, keys that are not strings written as strings (as :func:`json.dumps`)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def insert_rows(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``."""
    if not rows:
        return
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {connection.ops.quote_name(table)} ({names}) "
                                    "FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {connection.ops.quote_name(table)} ({names}) VALUES ({marks})",  # noqa: S608
            [[sqlite_value(value) for value in row] for row in rows],
        )
