"""The billing run's set-based helpers: array text that PostgreSQL reads back exactly, and JSON
text that says what the standard library would."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from benchmarks.billing_run import _load
from django.db import connection

from prorata.billing.models import DocumentCounter
from prorata.common.bulk import as_json, insert_rows, pg_array
from prorata.subscriptions.models import Subscription, SubscriptionEvent

AWKWARD = ["EUR", 'quote " inside', "back\\slash", "comma, {brace}", "", "NULL", "été ✓"]


def test_as_json_is_compact_keeps_utf8_and_matches_the_standard_library():
    value = {"name": "Café Été", "lines": [{"amount": 238000, "ratio": "1/1"}], "due": None,
             3: "a key that is not a string"}
    text = as_json(value)
    assert text == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(text)["name"] == "Café Été"


def test_pg_array_refuses_a_naive_instant():
    with pytest.raises(ValueError, match="no time zone"):
        pg_array([datetime(2026, 1, 1)])  # the mistake under test


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's array syntax")
def test_pg_array_reads_back_exactly_in_postgresql():
    instants = [datetime(2026, 2, 28, 23, 59, 59, 123456, tzinfo=UTC),
                datetime(2026, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))]
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[], %s::bigint[], %s::timestamptz[]",
                       [pg_array(AWKWARD), pg_array([0, -7, 2**62]), pg_array(instants)])
        texts, numbers, read_instants = cursor.fetchone()
    assert texts == AWKWARD
    assert numbers == [0, -7, 2**62]
    assert read_instants == instants



@pytest.mark.django_db
def test_insert_rows_writes_each_column_type_back_exactly():
    """Binary COPY on PostgreSQL (executemany on SQLite): a smallint, an integer, text with a tab,
    a newline and a backslash, an instant, a NULL and JSON text already serialised all read back
    as they were written."""
    _load(1, connection.vendor, credit_share=0)
    subscription = Subscription.objects.get()
    at = datetime(2026, 2, 28, 23, 59, 59, 123456, tzinfo=UTC)
    after = {"name": 'Café "Été"\tback\\slash\nline ✓', "amount": 2**40, "none": None}
    insert_rows(SubscriptionEvent._meta.db_table, ("subscription_id", "at", "kind", "before", "after"),
                [(subscription.pk, at, "changed", None, as_json(after))])
    insert_rows(DocumentCounter._meta.db_table, ("series", "year", "last"),
                [("T\t\\", 2026, 2**31 - 1)])
    event = SubscriptionEvent.objects.get(subscription=subscription)
    assert (event.at, event.kind, event.before, event.after) == (at, "changed", None, after)
    counter = DocumentCounter.objects.get(series="T\t\\")
    assert (counter.year, counter.last) == (2026, 2**31 - 1)
