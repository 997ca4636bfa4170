"""S5 as a property, through the real services: for any sequence of upgrades, license changes,
staff downgrades, renewals and expiries, no scheduled webinar's limit ever decreases, and none
is removed, moved or cancelled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prorata.jobs.billing_run import bill_run
from prorata.licenses.services import license_assign
from prorata.subscriptions.models import Subscription
from prorata.subscriptions.services import subscription_cancel_renewal
from prorata.webinars.models import Webinar
from prorata.webinars.selectors import webinar_limit
from prorata.webinars.services import webinar_schedule
from prorata_core.errors import ProrataError
from prorata_core.periods import utc
from tests.app.licenses.support import acme
from tests.app.subscriptions.support import buy, staff

pytestmark = pytest.mark.django_db

PLANS = ["lite", "standard", "pro"]
steps = st.lists(st.one_of(
    st.tuples(st.just("upgrade"), st.sampled_from(PLANS)),
    st.tuples(st.just("licenses"), st.integers(1, 5)),
    st.tuples(st.just("staff_downgrade"), st.sampled_from(PLANS)),
    st.tuples(st.just("advance"), st.integers(1, 120)),
    st.tuples(st.just("cancel_renewal"), st.just(0)),
), min_size=1, max_size=8)


def facts(webinar: Webinar) -> tuple:
    return (webinar.title, webinar.starts_at, webinar.duration_minutes, webinar.time_zone,
            webinar.cancelled_at, webinar.organizer_id)


class Rollback(Exception):
    pass


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=steps)
def test_no_subscription_change_shrinks_moves_or_removes_a_scheduled_webinar(
        clock, demo_catalog, steps):
    try:
        with transaction.atomic():
            run(clock, steps)
            raise Rollback
    except Rollback:
        pass


def run(clock, steps) -> None:
    world = acme(clock)  # Standard annual × 2 from 2026-01-01
    agent = staff(f"agent-{id(steps)}@prorata.example", "support_agent")
    subscription = world.subscription
    license_assign(actor=world.alice, account=world.account, subscription_id=subscription.pk,
                   member_id=world.membership(world.carol).pk)
    webinars = [webinar_schedule(organizer=world.carol, account=world.account, title=title,
                                 starts_at=utc(2026, 1, 1) + timedelta(days=days),
                                 duration_minutes=60, time_zone="UTC")
                for title, days in (("Soon", 30), ("Later", 400))]
    before = {w.pk: (facts(w), webinar_limit(w)) for w in webinars}
    for action, value in steps:
        current = Subscription.objects.select_related("plan", "cycle").get(pk=subscription.pk)
        try:
            if action == "upgrade":
                buy(world.account, world.alice, value, current.cycle.code, current.quantity)
            elif action == "licenses":
                buy(world.account, world.alice, current.plan.code, current.cycle.code, value)
            elif action == "staff_downgrade":
                buy(world.account, agent, value, current.cycle.code, current.quantity,
                    by_staff=True)
            elif action == "advance":
                clock.advance(timedelta(days=value))
                bill_run()
            else:
                subscription_cancel_renewal(account=world.account, user=world.alice,
                                            product_code="webinar")
        except ProrataError:
            pass  # refused (e.g. a downgrade online, or an expired subscription): no change
        for webinar in webinars:
            row = Webinar.objects.get(pk=webinar.pk)
            was_facts, was_limit = before[webinar.pk]
            assert facts(row) == was_facts, (action, value)
            limit = webinar_limit(row)
            assert limit >= was_limit, (action, value, limit, was_limit)
            before[webinar.pk] = (was_facts, limit)
