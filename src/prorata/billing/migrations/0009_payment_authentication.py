# The reconciliation job's index also holds the payments a customer is authenticating.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0008_payment_requires_action'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='payment',
            name='payment_unsettled',
        ),
        migrations.AddIndex(
            model_name='payment',
            index=models.Index(condition=models.Q(('status__in', ['pending', 'unknown']), models.Q(('completed_at__isnull', True), ('status', 'requires_action')), _connector='OR'), fields=['created_at', 'id'], name='payment_unsettled'),
        ),
    ]
