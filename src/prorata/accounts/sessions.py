"""The session store (``SESSION_ENGINE``): Django's database sessions, same table and same signed
data, with the read that every signed-in request starts with done by one hand-written query
through :func:`~prorata.common.db.prepared_cursor` (the ORM spent 0.35 ms compiling it, five
times the query's own CPU, and PostgreSQL planned it on every request)."""

from __future__ import annotations

from functools import cache

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import connection

from prorata.common.clock import wall_now
from prorata.common.db import concrete_columns, model_from_row, prepared_cursor


@cache
def _session_sql(model: type[AbstractBaseSession]) -> str:
    columns = ", ".join(concrete_columns(model))
    return (f"SELECT {columns} FROM {model._meta.db_table} "  # noqa: S608
            "WHERE session_key = %s AND expire_date > %s")


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self) -> AbstractBaseSession | None:
        """The unexpired session of this key, or None (and the key forgotten), as Django's
        (expiry in real time, like Django's own, not the project clock's)."""
        model = self.model
        expires_after = connection.ops.adapt_datetimefield_value(wall_now())
        with prepared_cursor() as cursor:
            cursor.execute(_session_sql(model), [self.session_key, expires_after])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return model_from_row(model, row)
