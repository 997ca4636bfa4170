"""Staff roles as groups with their console permissions, and an append-only audit log.

The audit log refuses UPDATE in the database on every backend, and DELETE on PostgreSQL. SQLite keeps
no DELETE trigger because Django empties tables with DELETE between transactional tests there; the
model and the console refuse deletes on every backend.
"""

from django.db import migrations

STAFF_PERMISSIONS = {
    "support_agent": [
        ("accounts", "view_account"), ("accounts", "view_membership"), ("accounts", "view_user"),
        ("accounts", "view_auditentry"),
        ("catalog", "view_product"), ("catalog", "view_plan"), ("catalog", "view_price"),
        ("catalog", "view_billingcycle"),
    ],
    "corporate_advisor": [
        ("accounts", "view_account"), ("accounts", "change_account"),
        ("accounts", "view_membership"), ("accounts", "view_user"),
        ("accounts", "view_auditentry"),
        ("catalog", "view_product"), ("catalog", "view_plan"), ("catalog", "view_price"),
        ("catalog", "view_billingcycle"),
    ],
    "operator": [
        ("accounts", "view_auditentry"),
        ("catalog", "view_product"), ("catalog", "add_product"), ("catalog", "change_product"),
        ("catalog", "view_plan"), ("catalog", "add_plan"), ("catalog", "change_plan"),
        ("catalog", "view_price"), ("catalog", "add_price"), ("catalog", "change_price"),
        ("catalog", "view_billingcycle"), ("catalog", "add_billingcycle"),
        ("catalog", "change_billingcycle"),
    ],
}

PG_FORWARD = """
CREATE OR REPLACE FUNCTION prorata_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'The audit log is append-only: entries cannot be changed or deleted.';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER accounts_auditentry_append_only
    BEFORE UPDATE OR DELETE ON accounts_auditentry
    FOR EACH ROW EXECUTE FUNCTION prorata_audit_append_only();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS accounts_auditentry_append_only ON accounts_auditentry;
DROP FUNCTION IF EXISTS prorata_audit_append_only();
"""
SQLITE_FORWARD = """
CREATE TRIGGER accounts_auditentry_no_update BEFORE UPDATE ON accounts_auditentry
BEGIN
    SELECT RAISE(ABORT, 'The audit log is append-only: entries cannot be changed.');
END;
"""
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS accounts_auditentry_no_update;"


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codes in STAFF_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in codes:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=STAFF_PERMISSIONS).delete()


def add_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def drop_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("catalog", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_groups, remove_groups),
        migrations.RunPython(add_triggers, drop_triggers),
    ]
