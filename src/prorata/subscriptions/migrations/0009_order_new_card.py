# The new card typed at checkout, kept with its order until it has paid (3-D Secure).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('subscriptions', '0008_support_agents_see_orders'),
    ]

    operations = [
        migrations.AddField(
            model_name='order',
            name='new_card',
            field=models.JSONField(blank=True, null=True),
        ),
    ]
