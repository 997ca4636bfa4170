"""A void invoice has nothing due: the end of dunning closes an unpaid renewal invoice with the
credit note that voids it (ADR 0004), and the invoice's amount due becomes 0."""

from importlib import import_module

import django.db.models.expressions
from django.db import migrations, models

# SQLite rebuilds the document table for a changed CHECK; the ledger's trigger is put back as in
# 0004 (IF NOT EXISTS: a no-op where the rebuild kept it).
restore_sqlite_trigger = import_module(
    "prorata.billing.migrations.0004_fewer_indexes").restore_sqlite_trigger


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0006_balance_account_no_own_index'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='document',
            name='document_invoice_amount_due',
        ),
        migrations.AddConstraint(
            model_name='document',
            constraint=models.CheckConstraint(condition=models.Q(('kind', 'credit_note'), models.Q(('amount_due', 0), ('status', 'void')), ('amount_due', django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('total'), '-', models.F('credit_applied')), '-', models.F('amount_paid'))), _connector='OR'), name='document_invoice_amount_due'),
        ),
        migrations.RunPython(restore_sqlite_trigger, migrations.RunPython.noop),
    ]
