"""Set-based writes for the billing run: many rows in one statement, without model instances.

DESIGN §8: the billing run's speed is decided by how rows reach the database. On PostgreSQL rows
go through ``COPY … FROM STDIN`` (psycopg 3); on SQLite through one ``executemany``. Values are
plain Python values: aware UTC datetimes, ints, strings, bools, and :func:`as_json` text for JSON
columns.
Callers are services that already hold the locks they need, inside ``transaction.atomic()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from django.db import connection
from psycopg.adapt import Dumper
from psycopg.pq import Format

from prorata.common.db import prepared_cursor

#: PostgreSQL's ``jsonb`` type (a built-in: its oid is fixed).
JSONB_OID = 3802


def reserve_ids(table: str, count: int) -> list[int]:
    """``count`` fresh primary keys for ``table``, so that rows referring to each other can be
    written in one pass. PostgreSQL: from the table's sequence (gaps are harmless for ids).
    SQLite: above the current maximum — safe because the caller's transaction holds the database's
    only write lock from its start (``transaction_mode = IMMEDIATE`` in the settings)."""
    if count <= 0:
        return []
    with prepared_cursor() as cursor:
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
            if value.tzinfo is not UTC and value.utcoffset() is None:
                raise ValueError(f"{value!r} has no time zone: PostgreSQL would read local time.")
            parts.append(value.isoformat())
        else:
            parts.append(str(int(value)))
    return "{" + ",".join(parts) + "}"


def as_json(value: Any) -> str:
    """A JSON column's value for :func:`insert_rows` (both backends take JSON text): compact,
    UTF-8 kept as is, keys that are not strings written as strings (as :func:`json.dumps`)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


class _JsonTextDumper(Dumper):
    """JSON already serialised (:func:`as_json`) into a ``jsonb`` column of a binary ``COPY``:
    the format's version byte, then the text as it is (psycopg's own jsonb dumper would
    serialise the string again, as a JSON string)."""

    format = Format.BINARY
    oid = JSONB_OID

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + obj.encode()


#: (table, columns) → the columns' type oids, for binary COPY. Read once per process: the
#: built-in types' oids never change, and a column changes type only with a migration, after
#: which processes restart.
_column_types: dict[tuple[str, tuple[str, ...]], list[int]] = {}


def _types_of(cursor: Any, table: str, columns: Sequence[str]) -> list[int]:
    key = (table, tuple(columns))
    types = _column_types.get(key)
    if types is None:
        cursor.execute(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attnum > 0 AND NOT attisdropped", [table])
        by_name = dict(cursor.fetchall())
        types = _column_types[key] = [int(by_name[column]) for column in columns]
    return types


def insert_rows(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``.

    PostgreSQL: a binary ``COPY`` (values go out as the columns' own binary form: half the
    client's time of text ``COPY``, and the server parses no text), so an int must fit its
    column's integer type exactly."""
    if not rows:
        return
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor
            types = _types_of(raw, table, columns)
            raw.adapters.register_dumper(None, _JsonTextDumper)
            with raw.copy(f"COPY {connection.ops.quote_name(table)} ({names}) "
                          "FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {connection.ops.quote_name(table)} ({names}) VALUES ({marks})",  # noqa: S608
            [[sqlite_value(value) for value in row] for row in rows],
        )
