"""Accounts made before the time-zone setting (issue 16) — the demo's among them — get their
country's main zone, as sign-up and account creation now give one (an account with a zone keeps it).
Reversing leaves the zones in place: an empty zone would only fall back to the same country's."""

from django.db import migrations


def zones_from_countries(apps, schema_editor):
    from prorata.accounts.countries import default_time_zone

    Account = apps.get_model("accounts", "Account")
    for country in (Account.objects.filter(time_zone="").values_list("country", flat=True)
                    .distinct()):
        Account.objects.filter(time_zone="", country=country).update(
            time_zone=default_time_zone(country))


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0004_account_billing_email_time_zone"),
    ]

    operations = [
        migrations.RunPython(zones_from_countries, migrations.RunPython.noop, elidable=True),
    ]
