"""Django's PostgreSQL backend, with a persistent connection's health checked without a query, and
a server-binding cursor for the hand-written queries.

With ``CONN_HEALTH_CHECKS``, Django checks a persistent connection before a request's first query
by running ``SELECT 1``: one more round trip per request. When PostgreSQL ends a session (a
restart, ``pg_terminate_backend``, an idle timeout) it says so on the socket before closing it, so
the socket of an idle connection that is still usable has nothing to read. This backend looks at
the socket without waiting: only when something is there (the server's farewell, end of file, or a
harmless notice) or the driver already knows the connection is broken does it run Django's
``SELECT 1`` check; a connection that fails it is closed and the request opens a new one, exactly
as before. Django's other uses of the check are unchanged: after a database error the connection
is still checked with ``SELECT 1`` before it is reused.

:meth:`DatabaseWrapper.prepared_cursor` is a cursor whose parameters are bound by the server, so
that PostgreSQL prepares each of its statements once per connection (after ``prepare_threshold``
uses, ``OPTIONS`` in the settings) instead of parsing and planning it on every request. Django's
own cursors are unchanged (client-side binding; psycopg never prepares their statements).

Both override Django's internals (``close_if_health_check_failed`` with the ``health_check_*``
attributes it reads; ``_prepare_cursor`` and ``ServerBindingCursor``), kept for their measured
gain (``benchmarks/README.md``, "Hand-written queries"): no setting gives the same. Django 5.1's
connection pool skips the check, but psycopg's pool then hands out a connection the server ended
unless given a ``check``, which is the same round trip; ``OPTIONS["server_side_binding"]`` binds
every ORM query on the server too, a change to all of them that was not measured. The test
``tests/app/common/test_postgresql_backend.py`` fails when Django's version or the source of an
overridden method changes, so that these are looked at again.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from psycopg import pq


class DatabaseWrapper(PostgresDatabaseWrapper):
    def prepared_cursor(self) -> CursorWrapper:
        """Like :meth:`cursor`, but its statements are bound on the server, and prepared once
        they have been used a few times on this connection. For hand-written queries of the hot
        paths only: a prepared statement stays on the server as long as the connection."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            return self._prepare_cursor(ServerBindingCursor(self.connection))

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and self._idle_and_quiet()
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _idle_and_quiet(self) -> bool:
        """Whether the connection is open, outside a transaction, and the server has sent
        nothing since its last answer (a poll with no timeout: no round trip)."""
        connection = self.connection
        if connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != pq.TransactionStatus.IDLE:
            return False
        if not hasattr(select, "poll"):  # pragma: no cover - not on Linux or macOS
            return False
        poller = select.poll()
        try:
            poller.register(connection.fileno(), select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False
