"""The ledger is append-only in the database too: UPDATE is refused on every backend, and DELETE on
PostgreSQL (SQLite keeps no DELETE trigger: Django empties tables with DELETE between transactional
tests there; the model refuses deletes on every backend). Same pattern as the audit log."""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION prorata_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'The ledger is append-only: entries cannot be changed or deleted.';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER billing_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON billing_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION prorata_ledger_append_only();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS billing_ledgerentry_append_only ON billing_ledgerentry;
DROP FUNCTION IF EXISTS prorata_ledger_append_only();
"""
SQLITE_FORWARD = """
CREATE TRIGGER billing_ledgerentry_no_update BEFORE UPDATE ON billing_ledgerentry
BEGIN
    SELECT RAISE(ABORT, 'The ledger is append-only: entries cannot be changed.');
END;
"""
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS billing_ledgerentry_no_update;"


def add_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_initial")]

    operations = [migrations.RunPython(add_triggers, drop_triggers)]
