from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_signin_failures_and_email_changes"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="billing_email",
            field=models.EmailField(blank=True, db_default="", default="", max_length=254, verbose_name="billing e-mail"),
        ),
        migrations.AddField(
            model_name="account",
            name="time_zone",
            field=models.CharField(blank=True, db_default="", default="", max_length=64, verbose_name="time zone"),
        ),
    ]
