"""The entitlement API (DESIGN §4, S22): what the webinar product asks before it lets someone in,
with a product key created in the console (shown once, stored hashed, revocable)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from prorata.accounts.models import AuditEntry, User
from prorata.api.services import api_token_create
from prorata.licenses.entitlements import (
    entitlement_key_authenticate,
    entitlement_key_create,
    entitlement_key_revoke,
)
from prorata.licenses.models import EntitlementKey
from prorata.licenses.services import license_assign
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from tests.app.console_auth import console_login
from tests.app.licenses.support import acme

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clock, demo_catalog):
    world = acme(clock)
    license_assign(actor=world.alice, account=world.account,
                   subscription_id=world.subscription.pk,
                   member_id=world.membership(world.carol).pk)
    world.key_row, world.key = entitlement_key_create(name="Webinar product", actor=None)
    return world


def ask(world, email, **headers):
    return Client().get(f"/api/v1/entitlements/{email}",
                        HTTP_AUTHORIZATION=f"Bearer {world.key}", **headers)


def test_a_licensed_organizer_may_host_with_the_plans_limits(world):
    response = ask(world, "Carol@Acme.example")
    assert response.status_code == 200
    assert response.json() == {
        "email": "carol@acme.example", "may_host": True, "reason": None, "plan": "standard",
        "participant_limit": 500, "features": sorted(world.subscription.plan.features),
        "account": {"id": world.account.pk, "name": "Acme Corp"},
        "valid_until": "2027-01-01T00:00:00Z",
    }


def test_a_conditional_request_answers_304_until_something_changes(world):
    first = ask(world, "carol@acme.example")
    etag = first["ETag"]
    again = ask(world, "carol@acme.example", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    Subscription.objects.filter(pk=world.subscription.pk).update(status="past_due")
    changed = ask(world, "carol@acme.example", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


@pytest.mark.parametrize("who, status, reason", [
    ("bob@acme.example", None, "no_license"),
    ("carol@acme.example", SubscriptionStatus.EXPIRED, "expired"),
    ("carol@acme.example", SubscriptionStatus.PAST_DUE, "past_due"),
])
def test_members_who_may_not_host_are_told_why(world, who, status, reason):
    if status:
        Subscription.objects.filter(pk=world.subscription.pk).update(status=status)
    body = ask(world, who).json()
    assert (body["may_host"], body["reason"], body["valid_until"]) == (False, reason, None)
    if status == SubscriptionStatus.EXPIRED:
        assert (body["participant_limit"], body["features"]) == (0, [])


def test_a_user_of_no_account_and_an_unknown_address(world):
    User.objects.create_user("lone@example.com", "pw")
    assert ask(world, "lone@example.com").json()["reason"] == "no_membership"
    unknown = ask(world, "nobody@example.com")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_user"
    assert ask(world, "not an address at all").status_code == 404


def test_no_key_a_bad_key_a_personal_token_or_a_revoked_key_is_401(world):
    assert Client().get("/api/v1/entitlements/carol@acme.example").status_code == 401
    _, personal = api_token_create(user=world.alice, name="mine")
    for token in ("garbage", personal, world.key[:-1] + "x"):
        response = Client().get("/api/v1/entitlements/carol@acme.example",
                                HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401, token
        assert response.json()["code"] == "invalid_token"
    assert entitlement_key_revoke(key=world.key_row, actor=None)
    assert ask(world, "carol@acme.example").status_code == 401
    assert AuditEntry.objects.filter(action="entitlement_key.revoke").exists()


def test_the_key_reads_entitlements_only(world):
    for path in ("/api/v1/me", f"/api/v1/accounts/{world.account.pk}",
                 f"/api/v1/accounts/{world.account.pk}/invoices"):
        response = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {world.key}")
        assert response.status_code == 401, path
    response = Client().post(f"/api/v1/accounts/{world.account.pk}/cart/items/webinar",
                             HTTP_AUTHORIZATION=f"Bearer {world.key}")
    assert response.status_code in (401, 405)


def test_only_the_hash_is_stored(world):
    row = EntitlementKey.objects.get()
    assert world.key.startswith(f"prorata_ent_{row.prefix}_")
    assert world.key not in row.secret_hash and len(row.secret_hash) == 64
    assert entitlement_key_authenticate(world.key) == row
    assert world.key not in str(AuditEntry.objects.get(action="entitlement_key.create").after)


def test_the_openapi_document_lists_every_answer(world):
    operation = Client().get("/api/v1/openapi.json").json()["paths"][
        "/api/v1/entitlements/{email}"]["get"]
    assert set(operation["responses"]) == {"200", "304", "401", "404"}
    for reason in ("no_membership", "no_subscription", "no_license", "expired", "past_due"):
        assert reason in operation["description"]
    assert "If-None-Match" in [p["name"] for p in operation["parameters"]]


def test_an_operator_creates_a_key_in_the_console_and_sees_it_once(world):
    operator = User.objects.create_user("ops@prorata.example", "pw", is_staff=True)
    operator.groups.set([Group.objects.get(name="operator")])
    client = console_login(Client(), operator)
    response = client.post("/console/licenses/entitlementkey/add/", {"name": "Prod"},
                           follow=True)
    text = response.content.decode()
    assert "shown only once" in text
    row = EntitlementKey.objects.get(name="Prod")
    shown = text.split(f"prorata_ent_{row.prefix}_", 1)[1][:43]
    assert entitlement_key_authenticate(f"prorata_ent_{row.prefix}_{shown}") == row
    listing = client.get("/console/licenses/entitlementkey/").content.decode()
    assert shown not in listing
    client.post("/console/licenses/entitlementkey/",
                {"action": "revoke", "_selected_action": [row.pk]})
    assert EntitlementKey.objects.get(pk=row.pk).revoked_at is not None
    support = User.objects.create_user("support@prorata.example", "pw", is_staff=True)
    support.groups.set([Group.objects.get(name="support_agent")])
    console_login(client, support)
    assert client.get("/console/licenses/entitlementkey/").status_code == 403


def test_the_etag_names_every_field_of_the_answer_and_nothing_else():
    """Computed from the fields (a 304 renders no body): equal answers give equal tags, and a
    change of any one field gives another tag."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from prorata.api.entitlements import entitlement_etag
    from prorata.licenses.entitlements import Entitlement

    base = Entitlement("carol@acme.example", True, None, 7, "Acme Corp", "standard", 500,
                       ["recording"], datetime(2027, 1, 1, tzinfo=UTC))
    assert entitlement_etag(base) == entitlement_etag(replace(base, features=["recording"]))
    changed = [replace(base, email="dave@acme.example"), replace(base, may_host=False),
               replace(base, reason="expired"), replace(base, account_id=8),
               replace(base, account_name="Acme"), replace(base, plan="pro"),
               replace(base, participant_limit=1000), replace(base, features=[]),
               replace(base, valid_until=datetime(2027, 2, 1, tzinfo=UTC)),
               replace(base, valid_until=None)]
    tags = {entitlement_etag(answer) for answer in changed}
    assert len(tags) == len(changed) and entitlement_etag(base) not in tags
