"""Acting as the application's database role, and, for the checker's own tests, as the owner who
may switch the books' guards off inside a savepoint (:mod:`prorata.common.books`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from prorata.common import books
from prorata.common.management.commands.grant_app_role import grant_app_role

#: The application's role in the tests (cluster-wide, like every role: created, granted and
#: dropped inside the test's transaction, so it leaves nothing behind).
APP_ROLE = "prorata_app_test"


@contextmanager
def as_app_role() -> Iterator[None]:
    """On PostgreSQL, run the block as ``APP_ROLE`` with exactly what ``grant_app_role`` gives it
    (``SET SESSION AUTHORIZATION``: the session's user becomes the role, privileges and ownership
    are checked against it, and it cannot ``SET ROLE`` back to the owner; on the test's own
    connection and transaction, so the block sees the test's rows). The test's connection is the owner's (a
    superuser: it created the tables). On SQLite, where there are no roles, the block runs as it is."""
    if connection.vendor != "postgresql":
        yield
        return
    grant_app_role(APP_ROLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SET SESSION AUTHORIZATION {APP_ROLE}")
        try:
            yield
        finally:
            # After a refused statement outside a savepoint the transaction is aborted and the
            # change goes with it; otherwise it is undone here.
            if not connection.needs_rollback:
                cursor.execute("RESET SESSION AUTHORIZATION")


@contextmanager
def books_unguarded() -> Iterator[None]:
    """Switch the books' triggers off, as the superuser the tests connect as, for a block that must run inside a savepoint
    that is rolled back (transactional DDL on both backends: the triggers are back after it). For
    the invariants checker's tests, which corrupt the books on purpose to see it fail."""
    if not connection.in_atomic_block:
        raise RuntimeError("books_unguarded() switches the guards off only inside a savepoint")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Triggers off for this savepoint (a superuser's switch, which the application's
            # role is refused; rolling back to the savepoint undoes it). Not ALTER TABLE …
            # DISABLE TRIGGER: the test's rows have deferred foreign-key checks pending, and
            # PostgreSQL alters no table with pending trigger events.
            cursor.execute("SET LOCAL session_replication_role = replica")
        else:
            for name, _, _ in books.SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
    yield
