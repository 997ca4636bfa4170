"""``prorata grant_app_role [ROLE]``: give the application's PostgreSQL role what it needs, no more.

Run as the owner of the tables (``prorata`` connects as ``PRORATA_MIGRATE_DATABASE_URL`` for it and
runs it after every ``prorata migrate``). ``ROLE`` defaults to the user of ``DATABASE_URL``, the
application's. Idempotent: run it again after a migration, or to repair the grants; it creates the
role (LOGIN, no password: set one with ``ALTER ROLE``) only when it does not exist.

What the role gets, in the schema the tables are in:

- ``SELECT, INSERT, UPDATE, DELETE`` on every table, ``USAGE, SELECT`` on every sequence (ids), and
  the same by default on the tables and sequences the owner creates later (``ALTER DEFAULT
  PRIVILEGES``: the next migrations);
- on the ledger and the audit log only ``SELECT, INSERT`` (append-only, beside their triggers), on
  Django's migration history only ``SELECT``;
- never ``TRUNCATE``, ``REFERENCES``, ``TRIGGER``, nor ownership: it cannot empty a table, disable or
  drop a trigger, or alter a table (:mod:`prorata.common.books`).

It refuses a role that is the current (owner) role, a superuser, or the owner of any table there:
such a role passes every privilege and trigger switch, so granting to it would protect nothing.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

#: Tables the application may only read and append to.
APPEND_ONLY = ("billing_ledgerentry", "accounts_auditentry")
#: Tables the application may only read.
READ_ONLY = ("django_migrations",)


def grant_app_role(role: str) -> list[str]:
    """Grant ``role`` the application's privileges (module doc) as the connection's (owner) role,
    in one transaction; returns the statements run. PostgreSQL only; the caller owns the tables."""
    if connection.vendor != "postgresql":
        raise CommandError("Database roles are a PostgreSQL feature: nothing to grant on "
                           f"{connection.vendor}.")
    qn = connection.ops.quote_name
    done: list[str] = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema(), current_database()")
        owner, schema, database = cursor.fetchone()
        if role == owner:
            raise CommandError(
                f"{role!r} is the role running this command, the tables' owner: the application "
                "must connect as another role (DATABASE_URL's user), migrations as this one "
                "(PRORATA_MIGRATE_DATABASE_URL).")
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
        row = cursor.fetchone()
        if row is None:
            cursor.execute("SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = %s",
                           [owner])
            if not cursor.fetchone()[0]:
                raise CommandError(
                    f"The role {role!r} does not exist and {owner!r} may not create roles: create "
                    f"it (sudo -u postgres createuser {role}), then run prorata grant_app_role.")
            statements = [f"CREATE ROLE {qn(role)} LOGIN"]
        elif row[0]:
            raise CommandError(f"{role!r} is a superuser: it passes every privilege and trigger; "
                               "the application needs an ordinary role.")
        else:
            statements = []
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s AND tableowner = %s",
                       [schema, role])
        owned = sorted(name for (name,) in cursor.fetchall())
        if owned:
            raise CommandError(
                f"{role!r} owns {', '.join(owned)}: an owner can truncate, alter and disable "
                f"triggers. Give them to {owner!r} first: REASSIGN OWNED BY {role} TO {owner}.")
        to, s = qn(role), qn(schema)
        statements += [
            f"GRANT CONNECT ON DATABASE {qn(database)} TO {to}",
            f"GRANT USAGE ON SCHEMA {s} TO {to}",
            # From nothing, so that a privilege taken away below stays away on a second run.
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {to}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {to}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {to}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {qn(owner)} IN SCHEMA {s} "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {to}",
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {qn(owner)} IN SCHEMA {s} "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {to}",
        ]
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema])
        present = {name for (name,) in cursor.fetchall()}
        statements += [f"REVOKE UPDATE, DELETE ON {qn(t)} FROM {to}"
                       for t in APPEND_ONLY if t in present]
        statements += [f"REVOKE INSERT, UPDATE, DELETE ON {qn(t)} FROM {to}"
                       for t in READ_ONLY if t in present]
        for statement in statements:
            cursor.execute(statement)
            done.append(statement)
    return done


class Command(BaseCommand):
    help = ("Grant the application's PostgreSQL role (DATABASE_URL's user) read and write on the "
            "tables, append-only on the ledger and the audit log, and nothing it could rewrite "
            "the books with. Run as the tables' owner.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", nargs="?", default="",
                            help="the role to grant to (default: the user of DATABASE_URL)")

    def handle(self, *args: Any, **options: Any) -> None:
        role = options["role"] or settings.PRORATA_APP_DATABASE_USER
        if not role:
            raise CommandError("No role given and DATABASE_URL names no user.")
        for statement in grant_app_role(role):
            self.stdout.write(statement)
