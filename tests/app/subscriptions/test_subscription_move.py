"""A saved subscription's transition and its history entry in one statement
(``subscriptions.queries.subscription_move``, PostgreSQL) against the ORM form it replaces: the
same rows, and nothing written when the stored status or version moved."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from prorata.catalog.models import Plan
from prorata.subscriptions.models import Subscription, SubscriptionEvent
from prorata.subscriptions.queries import subscription_move, subscription_move_orm
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, save_card

pytestmark = pytest.mark.django_db

ROW = ("status", "version", "plan_id", "quantity", "period_end", "auto_renew")


def moved(subscription, move, *, current="active", read_version=None, plan=None):
    read = subscription.version if read_version is None else read_version
    subscription.status, subscription.version = "past_due", read + 1
    entry = SubscriptionEvent(subscription=subscription, at=utc(2026, 2, 1), kind="changed",
                              before={"status": "active", "quantity": 2},
                              after={"status": "past_due", "quantity": 5}, order=None,
                              actor=None)
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        done = move(subscription=subscription, current=current, read_version=read,
                    fields={"quantity": 5, "plan": plan, "period_end": utc(2027, 2, 1),
                            "auto_renew": False}, entry=entry)
    return done, entry, len(captured.captured_queries)


@pytest.mark.parametrize("move", [subscription_move, subscription_move_orm], ids=["sql", "orm"])
def test_the_subscription_moves_and_its_entry_is_written(acme, clock, move):
    account, alice = acme
    save_card(account, alice)
    subscription = Subscription.objects.get(pk=buy(account, alice, "standard", "annual", 2)
                                            .invoice.lines.first().subscription_id)
    plan = Plan.objects.exclude(pk=subscription.plan_id).filter(
        product_id=subscription.product_id).first()
    version = subscription.version
    done, entry, statements = moved(subscription, move, plan=plan)
    assert done and entry.pk is not None
    stored = Subscription.objects.get(pk=subscription.pk)
    assert tuple(getattr(stored, name) for name in ROW) == (
        "past_due", version + 1, plan.pk, 5, utc(2027, 2, 1), False)
    saved = SubscriptionEvent.objects.get(pk=entry.pk)
    assert (saved.subscription_id, saved.at, saved.kind, saved.before, saved.after,
            saved.order_id, saved.actor_id) == (
        subscription.pk, utc(2026, 2, 1), "changed", {"status": "active", "quantity": 2},
        {"status": "past_due", "quantity": 5}, None, None)
    one = move is subscription_move and connection.vendor == "postgresql"
    assert statements == (1 if one else 2)


@pytest.mark.parametrize("move", [subscription_move, subscription_move_orm], ids=["sql", "orm"])
@pytest.mark.parametrize("stale", [{"current": "trialing"}, {"read_version": 99}],
                         ids=["status", "version"])
def test_a_stale_read_writes_nothing(acme, clock, move, stale):
    account, alice = acme
    save_card(account, alice)
    subscription = Subscription.objects.get(pk=buy(account, alice, "standard", "annual", 2)
                                            .invoice.lines.first().subscription_id)
    before = tuple(getattr(subscription, name) for name in ROW)
    entries = SubscriptionEvent.objects.count()
    done, entry, _statements = moved(subscription, move, plan=subscription.plan, **stale)
    assert not done and entry.pk is None
    stored = Subscription.objects.get(pk=subscription.pk)
    assert tuple(getattr(stored, name) for name in ROW) == before
    assert SubscriptionEvent.objects.count() == entries
