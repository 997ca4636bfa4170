# A renewal whose bank asks for an authentication (3-D Secure) waits for its next dunning attempt
# like a refused one: the retry index covers both.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0004_renewal_account_copy'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='renewal',
            name='renewal_retry_due',
        ),
        migrations.AlterField(
            model_name='renewal',
            name='status',
            field=models.CharField(choices=[('charging', 'charging'), ('paid', 'paid'), ('invoiced', 'invoiced, payment terms'), ('retrying', 'payment failed, retrying'), ('requires_action', 'payment requires authentication'), ('failed', 'payment failed')], max_length=16, verbose_name='status'),
        ),
        migrations.AddIndex(
            model_name='renewal',
            index=models.Index(condition=models.Q(('status__in', ['retrying', 'requires_action'])), fields=['next_attempt_at', 'id'], name='renewal_retry_due'),
        ),
    ]
