"""Two admins assigning the last free license at the same time, on PostgreSQL: one assignment,
one clear refusal (the account and subscription row locks serialise them).

SQLite needs no such test: its transactions take the database's write lock at BEGIN."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from prorata.licenses.errors import NoFreeLicense
from prorata.licenses.models import LicenseAssignment
from prorata.licenses.services import license_assign
from tests.app.licenses.support import acme
from tests.app.web.billing_support import member

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's"),
]


def test_two_admins_and_the_last_free_license(clock, demo_catalog):
    world = acme(clock)
    subscription = world.subscription
    license_assign(actor=world.alice, account=world.account, subscription_id=subscription.pk,
                   member_id=world.membership(world.carol).pk)  # 1 of 2: one left
    dave = member(world.world, "dave@acme.example", organizer=True)
    admins = [world.alice, world.bob]
    wanted = [world.membership(dave).pk, world.membership(world.bob).pk]
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def assign(actor, member_id) -> None:
        try:
            start.wait(timeout=30)
            license_assign(actor=actor, account=world.account,
                           subscription_id=subscription.pk, member_id=member_id)
            outcomes.append("assigned")
        except NoFreeLicense as refused:
            outcomes.append(f"refused {refused.params['used']}/{refused.params['bought']}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=assign, args=pair) for pair in zip(admins, wanted, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["assigned", "refused 2/2"]
    assert LicenseAssignment.objects.filter(subscription=subscription).count() == 2
