"""License and entitlement events: every road that changes an assignment emits them (assign,
unassign, a member removed, a reduction's release placed with its order), in its transaction."""

from __future__ import annotations

import pytest

from prorata.licenses.services import (
    license_assign,
    license_release_choose,
    license_unassign,
    member_remove,
)
from prorata.webhooks.models import WebhookEvent
from tests.app.licenses.support import acme
from tests.app.subscriptions.support import buy
from tests.app.webhooks.support import endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clock, demo_catalog):
    world = acme(clock)
    endpoint("https://hooks.example.com/prorata",
             ["license.assigned", "license.unassigned", "entitlement.changed"])
    return world


def events() -> list[tuple[str, str, bool | None, str | None]]:
    return [(event.type, event.data["email"], event.data.get("entitled"),
             event.data.get("reason")) for event in WebhookEvent.objects.order_by("id")]


def test_assign_unassign_and_member_removal_emit_license_and_entitlement_events(world):
    carol, bob = world.membership(world.carol), world.membership(world.bob)
    for member in (carol, bob):
        license_assign(actor=world.alice, account=world.account,
                       subscription_id=world.subscription.pk, member_id=member.pk)
    license_unassign(actor=world.alice, account=world.account,
                     subscription_id=world.subscription.pk, member_id=carol.pk)
    member_remove(actor=world.alice, account=world.account, member_id=bob.pk)
    carol_mail, bob_mail = "carol@acme.example", "bob@acme.example"
    assert events() == [
        ("license.assigned", carol_mail, None, None),
        ("entitlement.changed", carol_mail, True, "license_assigned"),
        ("license.assigned", bob_mail, None, None),
        ("entitlement.changed", bob_mail, True, "license_assigned"),
        ("license.unassigned", carol_mail, None, None),
        ("entitlement.changed", carol_mail, False, "unassigned"),
        ("license.unassigned", bob_mail, None, None),
        ("entitlement.changed", bob_mail, False, "member_removed"),
    ]
    assigned = WebhookEvent.objects.filter(type="license.assigned").first().data
    assert assigned["product"] == "webinar" and assigned["subscription_id"] == (
        world.subscription.pk) and assigned["account_id"] == world.account.pk


def test_a_reduction_placed_with_its_order_emits_the_release(world):
    for user in (world.carol, world.bob):
        license_assign(actor=world.alice, account=world.account,
                       subscription_id=world.subscription.pk,
                       member_id=world.membership(user).pk)
    WebhookEvent.objects.all().delete()
    license_release_choose(actor=world.alice, account=world.account, product_code="webinar",
                           quantity=1, member_ids=[world.membership(world.carol).pk])
    assert events() == []  # chosen, not yet freed
    result = buy(world.account, world.alice, "standard", "annual", 1)
    assert events() == [
        ("license.unassigned", "carol@acme.example", None, None),
        ("entitlement.changed", "carol@acme.example", False, f"order:{result.order.pk}"),
    ]
