"""Orders and licenses (issue 13): fewer licenses than assigned asks who loses theirs, and frees
them only when the order is placed, in its transaction; an order that added licenses says how
many are unassigned, on the confirmation page and in the e-mail."""

from __future__ import annotations

import pytest
from django.core import mail

from prorata.accounts.models import AuditEntry
from prorata.licenses.errors import LicensesToFree
from prorata.licenses.models import LicenseAssignment, LicenseRelease
from prorata.licenses.services import license_assign, license_release_choose
from prorata.notifications.outbox import outbox_deliver
from prorata.subscriptions.models import Order
from prorata.subscriptions.selectors import checkout_quote
from prorata.subscriptions.services import cart_add
from tests.app.licenses.support import acme
from tests.app.subscriptions.support import buy
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clock, demo_catalog):
    world = acme(clock)
    for user in (world.carol, world.bob):
        license_assign(actor=world.alice, account=world.account,
                       subscription_id=world.subscription.pk,
                       member_id=world.membership(user).pk)
    return world


def holders(world) -> list[str]:
    return sorted(LicenseAssignment.objects.filter(subscription=world.subscription)
                  .values_list("member__user__email", flat=True))


def test_the_modify_page_asks_who_loses_a_license(world):
    client = world.client(world.alice)
    url = f"/billing/{world.account.pk}/subscriptions/webinar/modify/"
    page = page_text(client.get(f"{url}?quantity=1"))
    assert "2 members hold a license" in page and "carol@acme.example" in page
    refused = client.post(url, {"plan": "standard", "cycle": "annual", "quantity": "1"})
    assert refused.status_code == 200
    assert "choose 1 member(s) who lose their license" in page_text(refused)
    assert not world.account.cart_items.exists()
    chosen = client.post(url, {"plan": "standard", "cycle": "annual", "quantity": "1",
                               "free_member": [world.membership(world.carol).pk]})
    assert chosen.status_code == 302
    checkout = page_text(client.get(f"/billing/{world.account.pk}/checkout/"))
    assert "Members who lose their license when the order is placed: carol@acme.example" \
        in checkout
    assert holders(world) == ["bob@acme.example", "carol@acme.example"]  # not yet


def test_placing_the_order_frees_the_chosen_license_in_its_transaction(world):
    license_release_choose(actor=world.alice, account=world.account, product_code="webinar",
                           quantity=1, member_ids=[world.membership(world.carol).pk])
    result = buy(world.account, world.alice, "standard", "annual", 1)
    assert holders(world) == ["bob@acme.example"]
    entry = AuditEntry.objects.get(action="license.unassign")
    assert entry.after == {"reason": f"order:{result.order.pk}"}
    assert LicenseRelease.objects.get().order == result.order
    page = page_text(world.client(world.alice).get(
        f"/billing/{world.account.pk}/orders/{result.order.pk}/"))
    assert "Licenses freed by this order: carol@acme.example" in page
    outbox_deliver()
    assert [m for m in mail.outbox if m.to == ["carol@acme.example"]
            and "taken back" in m.subject]


def test_without_a_choice_the_order_is_refused_and_nothing_is_written(world):
    cart_add(account=world.account, user=world.alice, product_code="webinar",
             plan_code="standard", cycle_code="annual", quantity=1)
    orders = Order.objects.count()
    with pytest.raises(LicensesToFree) as refused:
        buy(world.account, world.alice, "standard", "annual", 1)
    assert refused.value.params == {"licenses": 1, "assigned": 2, "to_free": 1}
    assert Order.objects.count() == orders
    assert holders(world) == ["bob@acme.example", "carol@acme.example"]
    quote = checkout_quote(account=world.account, user=world.alice)
    response = world.client(world.alice).post(f"/billing/{world.account.pk}/checkout/", {
        "idempotency_key": "k-1", "expected": ",".join(quote.fingerprints),
        "payment_method": ""})
    assert "choose 1 member(s) who lose their license" in page_text(response)


def test_choosing_someone_without_a_license_is_not_a_choice(world):
    with pytest.raises(LicensesToFree):
        license_release_choose(actor=world.alice, account=world.account,
                               product_code="webinar", quantity=1,
                               member_ids=[world.membership(world.alice).pk, "junk"])
    assert not LicenseRelease.objects.exists()


def test_after_adding_licenses_the_confirmation_says_how_many_are_unassigned(world):
    result = buy(world.account, world.alice, "standard", "annual", 4)
    page = page_text(world.client(world.alice).get(
        f"/billing/{world.account.pk}/orders/{result.order.pk}/"))
    assert "2 licenses are not assigned yet." in page and "Assign licenses" in page
    outbox_deliver()
    receipt = [m for m in mail.outbox if m.to == ["alice@acme.example"]][-1]
    assert "2 licenses are not assigned yet." in receipt.body
    assert f"/billing/{world.account.pk}/licenses/" in receipt.body


def test_in_french_too(world):
    world.alice.language = "fr"
    world.alice.save()
    result = buy(world.account, world.alice, "standard", "annual", 3)
    page = page_text(world.client(world.alice).get(
        f"/billing/{world.account.pk}/orders/{result.order.pk}/", HTTP_ACCEPT_LANGUAGE="fr"))
    assert "1 licence n'est pas encore attribuée." in page
