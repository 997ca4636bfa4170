"""Operators register webhook endpoints and browse and replay deliveries in the console."""

from django.db import migrations

CODES = ["view_webhookendpoint", "add_webhookendpoint", "change_webhookendpoint",
         "view_webhookdelivery", "change_webhookdelivery", "view_webhookevent"]


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="operator")
    for codename in CODES:
        group.permissions.add(
            Permission.objects.get(content_type__app_label="webhooks", codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_endpoints_events_deliveries"),
        ("accounts", "0002_staff_groups_and_append_only_audit"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
