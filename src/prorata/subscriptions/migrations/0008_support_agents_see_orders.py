"""Support agents see orders in the console (the list of orders whose payment is not settled)."""

from django.db import migrations


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; the group needs this one now.
    app_config = apps.get_app_config("subscriptions")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="support_agent").first()
    if group is not None:
        group.permissions.add(Permission.objects.get(
            content_type__app_label="subscriptions", codename="view_order"))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="support_agent").first()
    permission = Permission.objects.filter(content_type__app_label="subscriptions",
                                           codename="view_order").first()
    if group is not None and permission is not None:
        group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0007_period_never_moves_back"),
        ("accounts", "0002_staff_groups_and_append_only_audit"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
