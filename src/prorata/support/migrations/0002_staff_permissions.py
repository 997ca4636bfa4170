"""Support agents and corporate advisors read and answer support requests in the console."""

from django.db import migrations

CODES = {
    "support_agent": ["view_supportrequest", "change_supportrequest"],
    "corporate_advisor": ["view_supportrequest", "change_supportrequest"],
}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codes in CODES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for codename in codes:
            group.permissions.add(
                Permission.objects.get(content_type__app_label="support", codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0001_initial"),
        ("accounts", "0002_staff_groups_and_append_only_audit"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
