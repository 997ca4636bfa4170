"""The operator's license routes (issue 17): an operator's change that leaves fewer licenses than
members hold is refused with 409 licenses_to_free until the operator chooses who loses one over
the API; then the order frees exactly them, in its transaction."""

from __future__ import annotations

import pytest

from prorata.accounts.models import AuditEntry
from prorata.licenses.models import LicenseAssignment, LicenseRelease
from prorata.subscriptions.models import Order
from tests.app.api.billing_support import BillingClient
from tests.app.api.conftest import token_for
from tests.app.api.operator_support import OperatorClient, key_for
from tests.app.licenses.support import acme

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clock, demo_catalog):
    world = acme(clock)  # Standard annual × 2
    client = BillingClient(token_for(world.alice))
    for user in (world.carol, world.bob):
        assigned = client.post(
            f"/api/v1/accounts/{world.account.pk}/licenses/{world.subscription.pk}/assignments",
            {"member_id": world.membership(user).pk})
        assert assigned.status_code == 200, assigned.content
    return world


def item(quantity: int) -> dict:
    return {"product_code": "webinar", "plan_code": "standard", "cycle_code": "annual",
            "quantity": quantity}


def test_the_operator_chooses_who_loses_a_license_then_places_the_reduction(world):
    api = OperatorClient(key_for()[1])
    cid = world.account.pk
    pools = api.get(f"/api/v1/customers/{cid}/licenses")
    assert pools.status_code == 200, pools.content
    page = pools.json()
    assert (page["has_more"], page["next_cursor"]) == (False, None)
    assert [(p["product"], p["bought"], p["used"], p["free"]) for p in page["data"]] == [
        ("webinar", 2, 2, 0)]
    assert {h["email"] for h in page["data"][0]["holders"]} == {
        "bob@acme.example", "carol@acme.example"}

    quote = api.post(f"/api/v1/customers/{cid}/quote", {"items": [item(1)]})
    assert quote.status_code == 200, quote.content
    body = {"items": [item(1)], "expected": quote.json()["expected"]}
    orders = Order.objects.count()
    refused = api.post(f"/api/v1/customers/{cid}/orders", body)
    assert refused.status_code == 409 and refused.json()["code"] == "licenses_to_free"
    assert refused.json()["params"] == {"licenses": 1, "assigned": 2, "to_free": 1}
    assert Order.objects.count() == orders and LicenseAssignment.objects.count() == 2

    url = f"/api/v1/customers/{cid}/subscriptions/webinar/license-releases"
    too_few = api.send("put", url, {"quantity": 1, "member_ids": []})
    assert too_few.status_code == 409 and too_few.json()["code"] == "licenses_to_free"
    assert not LicenseRelease.objects.exists()
    carol = world.membership(world.carol).pk
    chosen = api.send("put", url, {"quantity": 1, "member_ids": [carol]}, key="free-carol")
    assert chosen.status_code == 200, chosen.content
    assert chosen.json()["data"][0]["releasing"] == ["carol@acme.example"]
    again = api.send("put", url, {"quantity": 1, "member_ids": [carol]}, key="free-carol")
    assert again["Idempotent-Replayed"] == "true" and again.json() == chosen.json()
    assert LicenseAssignment.objects.count() == 2  # nothing freed before the order
    assert AuditEntry.objects.filter(action="operator_api.license.releases_choose").count() == 1

    placed = api.post(f"/api/v1/customers/{cid}/orders", body)
    assert placed.status_code == 201, placed.content
    assert list(LicenseAssignment.objects.values_list("member__user__email", flat=True)) == [
        "bob@acme.example"]
    assert LicenseRelease.objects.get().order_id is not None
    after = api.get(f"/api/v1/customers/{cid}/licenses").json()["data"][0]
    assert (after["bought"], after["used"], after["releasing"]) == (1, 1, [])


@pytest.mark.parametrize("body", [
    {"quantity": 0, "member_ids": []}, {"quantity": True, "member_ids": []},
    {"quantity": 1, "member_ids": ["7"]}, {"quantity": 1}, {"member_ids": []},
    {"quantity": 1, "member_ids": [], "extra": 1},
])
def test_a_malformed_choice_is_422_and_writes_nothing(world, body):
    api = OperatorClient(key_for()[1])
    answer = api.send("put", f"/api/v1/customers/{world.account.pk}/subscriptions/webinar/"
                      "license-releases", body)
    assert answer.status_code == 422, answer.content
    assert not LicenseRelease.objects.exists()


def test_a_read_only_key_reads_the_pools_but_cannot_choose(world):
    api = OperatorClient(key_for("read_only")[1])
    cid = world.account.pk
    assert api.get(f"/api/v1/customers/{cid}/licenses").status_code == 200
    refused = api.send("put", f"/api/v1/customers/{cid}/subscriptions/webinar/license-releases",
                       {"quantity": 1, "member_ids": [world.membership(world.carol).pk]})
    assert refused.status_code == 403
    assert not LicenseRelease.objects.exists()
    assert api.get("/api/v1/customers/999999/licenses").status_code == 404
    other = api.get(f"/api/v1/customers/{cid}/licenses", query_params={"cursor": "garbage"})
    assert other.status_code == 422 and other.json()["code"] == "invalid_cursor"
