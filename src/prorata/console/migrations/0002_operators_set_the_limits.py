"""Operators set the staff limits (refund approval threshold, credit caps) in the console."""

from django.db import migrations

CODES = ["view_stafflimits", "add_stafflimits", "change_stafflimits"]


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
            Permission.objects.get(content_type__app_label="console", codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_staff_money_actions"),
        ("accounts", "0002_staff_groups_and_append_only_audit"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
