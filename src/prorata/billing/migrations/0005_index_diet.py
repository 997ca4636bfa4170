"""Fewer indexes to maintain per renewal: partial indexes on the foreign keys that are mostly empty,
unique constraints instead of ``unique=True`` on text columns (which added a second, pattern-ops
index on PostgreSQL), no index on the card a payment used (never looked up by it).

On SQLite, altering ``billing_ledgerentry`` rebuilds the table, which drops its append-only trigger
(0003): it is created again here, after the rebuild.
"""


from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models


# The rebuild drops the ledger's SQLite trigger exactly as in 0004: the same restore.
restore_sqlite_trigger = import_module(
    "prorata.billing.migrations.0004_fewer_indexes").restore_sqlite_trigger


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_signin_failures_and_email_changes'),
        ('billing', '0004_fewer_indexes'),
        ('payments', '0001_initial'),
        ('subscriptions', '0004_fewer_indexes'),
    ]

    operations = [
        migrations.AlterField(
            model_name='document',
            name='number',
            field=models.CharField(blank=True, max_length=32, null=True, verbose_name='number'),
        ),
        migrations.AlterField(
            model_name='document',
            name='order',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='documents', to='subscriptions.order'),
        ),
        migrations.AlterField(
            model_name='document',
            name='refers_to',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='credit_notes', to='billing.document', verbose_name='corrects invoice'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='payment',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='ledger_entries', to='billing.payment'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='refund',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='ledger_entries', to='billing.refund'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='idempotency_key',
            field=models.CharField(max_length=255),
        ),
        migrations.AlterField(
            model_name='payment',
            name='order',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='payments', to='subscriptions.order'),
        ),
        migrations.AlterField(
            model_name='payment',
            name='payment_method',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='payments.paymentmethod'),
        ),
        migrations.AddIndex(
            model_name='document',
            index=models.Index(condition=models.Q(('order__isnull', False)), fields=['order'], name='document_order'),
        ),
        migrations.AddIndex(
            model_name='document',
            index=models.Index(condition=models.Q(('refers_to__isnull', False)), fields=['refers_to'], name='document_refers_to'),
        ),
        migrations.AddIndex(
            model_name='ledgerentry',
            index=models.Index(condition=models.Q(('payment__isnull', False)), fields=['payment'], name='ledger_payment'),
        ),
        migrations.AddIndex(
            model_name='ledgerentry',
            index=models.Index(condition=models.Q(('refund__isnull', False)), fields=['refund'], name='ledger_refund'),
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(condition=models.Q(('order__isnull', False)), fields=['order'], name='payment_order'),
        ),
        migrations.AddConstraint(
            model_name='document',
            constraint=models.UniqueConstraint(fields=('number',), name='document_number_unique'),
        ),
        migrations.AddConstraint(
            model_name='payment',
            constraint=models.UniqueConstraint(fields=('idempotency_key',), name='payment_idempotency_key_unique'),
        ),
        migrations.RunPython(restore_sqlite_trigger, migrations.RunPython.noop),
    ]
