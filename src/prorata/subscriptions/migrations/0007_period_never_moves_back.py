"""A subscription's billing period never moves back (issue 12, item 8): a new period starts at or
after the start of the one it replaces, so an order priced against an earlier period can never be
applied over a later one (which would bill the same month twice, with overlapping periods).

A renewal starts where the current period ends; a change starts at the change instant, inside the
current period (whose unused part it credits); a reactivation starts later still. Only an order
applied blind after the billing run renewed the subscription would start earlier, and the database
refuses it. The ``WHEN`` clause keeps the check out of the billing run's way: the function is only
called for a row that breaks the rule."""

from django.db import migrations

MESSAGE = (
    "A subscription period cannot move back: the new period must start at or after the start "
    "of the current one."
)
PG_FORWARD = f"""
CREATE OR REPLACE FUNCTION prorata_subscription_period_forward() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER subscriptions_subscription_period_forward
    BEFORE UPDATE OF period_start ON subscriptions_subscription
    FOR EACH ROW WHEN (NEW.period_start < OLD.period_start)
    EXECUTE FUNCTION prorata_subscription_period_forward();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS subscriptions_subscription_period_forward ON subscriptions_subscription;
DROP FUNCTION IF EXISTS prorata_subscription_period_forward();
"""
SQLITE_FORWARD = f"""
CREATE TRIGGER subscriptions_subscription_period_forward
BEFORE UPDATE OF period_start ON subscriptions_subscription
WHEN NEW.period_start < OLD.period_start
BEGIN
    SELECT RAISE(ABORT, '{MESSAGE}');
END;
"""
SQLITE_BACKWARD = "DROP TRIGGER IF EXISTS subscriptions_subscription_period_forward;"


def add_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_FORWARD)


def drop_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0006_event_renewal_paid")]

    operations = [migrations.RunPython(add_trigger, drop_trigger)]
