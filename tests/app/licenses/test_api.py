"""Licenses over the API (issue 13): the pools, assigning and unassigning, and a reduction below
the assignments, which the API's checkout refuses until the members who lose a license are
chosen, and then frees in the order's transaction."""

from __future__ import annotations

import pytest

from prorata.accounts.models import AuditEntry
from prorata.licenses.models import LicenseAssignment, LicenseRelease
from prorata.subscriptions.models import Order
from tests.app.api.billing_support import BillingClient, item
from tests.app.api.conftest import token_for
from tests.app.licenses.support import acme

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clock, demo_catalog):
    return acme(clock)  # Standard annual × 2, nobody licensed


def api(user) -> BillingClient:
    return BillingClient(token_for(user))


def pools_url(world) -> str:
    return f"/api/v1/accounts/{world.account.pk}/licenses"


def assign(world, client, user):
    return client.post(f"{pools_url(world)}/{world.subscription.pk}/assignments",
                       {"member_id": world.membership(user).pk})


def test_an_admin_assigns_and_unassigns_over_the_api(world):
    client = api(world.bob)
    response = assign(world, client, world.carol)
    assert response.status_code == 200, response.content
    [pool] = response.json()
    assert (pool["bought"], pool["used"], pool["free"]) == (2, 1, 1)
    assert [h["email"] for h in pool["holders"]] == ["carol@acme.example"]
    assert AuditEntry.objects.filter(action="license.assign").count() == 1
    member = world.membership(world.carol).pk
    gone = client.delete(f"{pools_url(world)}/{world.subscription.pk}/assignments/{member}")
    assert gone.status_code == 200 and gone.json()[0]["used"] == 0
    again = client.delete(f"{pools_url(world)}/{world.subscription.pk}/assignments/{member}")
    assert again.status_code == 409 and again.json()["code"] == "not_licensed"


def test_assigning_past_the_pool_is_a_clear_refusal(world):
    client = api(world.alice)
    assert assign(world, client, world.carol).status_code == 200
    assert assign(world, client, world.bob).status_code == 200
    third = assign(world, client, world.alice)
    assert third.status_code == 409
    assert third.json()["code"] == "no_free_license"
    assert "add licenses" in third.json()["message"]
    assert LicenseAssignment.objects.count() == 2


@pytest.mark.parametrize("body", [{"member_id": True}, {"member_id": "3"}, {}, {"member_id": 0}])
def test_a_malformed_assignment_is_422_and_writes_nothing(world, body):
    response = api(world.alice).post(
        f"{pools_url(world)}/{world.subscription.pk}/assignments", body)
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"
    assert not LicenseAssignment.objects.exists()


def test_a_reduction_needs_the_members_chosen_then_frees_them_with_the_order(world):
    client = api(world.alice)
    assign(world, client, world.carol)
    assign(world, client, world.bob)
    quote = client.quote(world.account.pk, "standard", "annual", 1).json()
    body = {"items": [item("standard", "annual", 1)], "expected": [quote["fingerprint"]]}
    orders = Order.objects.count()
    refused = client.checkout(world.account.pk, body, key="reduce-1")
    assert refused.status_code == 409 and refused.json()["code"] == "licenses_to_free"
    assert refused.json()["params"] == {"licenses": 1, "assigned": 2, "to_free": 1}
    assert Order.objects.count() == orders and LicenseAssignment.objects.count() == 2

    url = f"/api/v1/accounts/{world.account.pk}/subscriptions/webinar/license-releases"
    too_few = client.put(url, {"quantity": 1, "member_ids": []})
    assert too_few.status_code == 409 and too_few.json()["code"] == "licenses_to_free"
    chosen = client.put(url, {"quantity": 1, "member_ids": [world.membership(world.carol).pk]})
    assert chosen.status_code == 200
    assert chosen.json()[0]["releasing"] == ["carol@acme.example"]
    assert LicenseAssignment.objects.count() == 2  # nothing freed before the order

    placed = client.checkout(world.account.pk, body, key="reduce-2")
    assert placed.status_code == 201, placed.content
    assert list(LicenseAssignment.objects.values_list("member__user__email", flat=True)) == [
        "bob@acme.example"]
    assert LicenseRelease.objects.get().order_id is not None


def test_organizers_and_other_accounts_cannot_touch_licenses(world):
    assert api(world.carol).get(pools_url(world)).status_code == 403
    assert api(world.carol).get("/api/v1/accounts/999999/licenses").status_code == 404
