"""Operators create, see and revoke the operator API keys in the console (issue 17)."""

from django.db import migrations

CODES = ["view_operatorkey", "add_operatorkey", "change_operatorkey"]


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
            Permission.objects.get(content_type__app_label="api", codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0002_operator_keys"),
        ("accounts", "0002_staff_groups_and_append_only_audit"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
