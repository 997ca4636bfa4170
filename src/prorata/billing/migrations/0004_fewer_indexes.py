"""Drop the foreign-key indexes that a composite index starting with the same column already
serves (fewer indexes to maintain per renewal in the billing run).

On SQLite, altering ``billing_ledgerentry`` rebuilds the table, which drops its append-only trigger
(0003): it is created again here, after the rebuild.
"""

import django.db.models.deletion
from django.db import migrations, models


SQLITE_LEDGER_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS billing_ledgerentry_no_update BEFORE UPDATE ON billing_ledgerentry
BEGIN
    SELECT RAISE(ABORT, 'The ledger is append-only: entries cannot be changed.');
END;
"""


def restore_sqlite_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(SQLITE_LEDGER_TRIGGER)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_signin_failures_and_email_changes'),
        ('billing', '0003_ledger_append_only'),
    ]

    operations = [
        migrations.AlterField(
            model_name='document',
            name='account',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='documents', to='accounts.account'),
        ),
        migrations.AlterField(
            model_name='documentline',
            name='document',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='lines', to='billing.document'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='account',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='ledger_entries', to='accounts.account'),
        ),
        migrations.RunPython(restore_sqlite_trigger, migrations.RunPython.noop),
    ]
