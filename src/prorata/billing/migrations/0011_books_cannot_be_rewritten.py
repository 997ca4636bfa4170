"""The books cannot be rewritten, in the database (issue 18; :mod:`prorata.common.books`): an issued
invoice or credit note changes only its payment state and is never deleted, nor are its lines
changed; on SQLite the ledger and the audit log now refuse DELETE as well as UPDATE (PostgreSQL has
refused both since billing 0003 and accounts 0002)."""

from django.db import migrations

from prorata.common import books


def add_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        # params=None: the text goes as it is (its '%' are PL/pgSQL's, not placeholders).
        schema_editor.execute(books.PG_FORWARD, params=None)
    elif vendor == "sqlite":
        books.sqlite_create(schema_editor)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(books.PG_BACKWARD, params=None)
    elif vendor == "sqlite":
        # The ledger's and the audit log's UPDATE triggers belong to the older migrations.
        for name, _, _ in books.SQLITE_TRIGGERS:
            if name not in {"billing_ledgerentry_no_update", "accounts_auditentry_no_update"}:
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_account_time_zone_from_country"),
        ("billing", "0010_credit_application"),
    ]

    operations = [migrations.RunPython(add_triggers, drop_triggers)]
