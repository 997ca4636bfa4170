"""The accounts area: /me, /accounts, /accounts/{id}, /accounts/{id}/members."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from prorata.accounts.models import User
from prorata.accounts.services import membership_set_roles
from tests.app.api.conftest import ApiClient, token_for

pytestmark = pytest.mark.django_db


def test_me_is_the_user_with_their_accounts_and_roles(world, as_alice):
    membership_set_roles(actor=None, account=world.b, user=world.alice, organizer=True)
    body = as_alice.get("/api/v1/me").json()
    assert body["email"] == "alice@acme.example"
    assert body["staff_roles"] == []
    assert body["accounts"] == [
        {"id": world.a.pk, "name": "Acme", "roles": ["billing_contact"]},
        {"id": world.b.pk, "name": "Bistro", "roles": ["organizer"]},
    ]


def test_accounts_lists_only_the_users_accounts(world, as_alice):
    assert as_alice.get("/api/v1/accounts").json() == {"data": [
        {"id": world.a.pk, "name": "Acme", "roles": ["billing_contact"]},
    ], "has_more": False, "next_cursor": None}


def test_an_account_shows_billing_details_to_its_billing_contact(world, as_alice):
    body = as_alice.get(f"/api/v1/accounts/{world.a.pk}").json()
    assert body["name"] == "Acme"
    assert body["roles"] == ["billing_contact"]
    assert body["created_at"] == "2026-03-11T00:00:00Z"
    assert body["billing"]["billing_address"] == "1 Road"


def test_a_member_without_the_billing_role_sees_no_billing_details(world):
    body = ApiClient(token_for(world.pat)).get(f"/api/v1/accounts/{world.a.pk}").json()
    assert body["name"] == "Acme"
    assert body["roles"] == []
    assert body["billing"] is None


def test_another_account_is_a_404_by_token_and_by_session(world, as_alice, client):
    assert as_alice.get(f"/api/v1/accounts/{world.b.pk}").status_code == 404
    assert as_alice.get(f"/api/v1/accounts/{world.b.pk}/members").status_code == 404
    client.force_login(world.alice)
    assert client.get(f"/api/v1/accounts/{world.b.pk}").status_code == 404


def test_members_need_the_admin_role(world, as_alice):
    assert as_alice.get(f"/api/v1/accounts/{world.a.pk}/members").status_code == 403
    body = ApiClient(token_for(world.bob)).get(f"/api/v1/accounts/{world.a.pk}/members").json()
    assert (body["has_more"], body["next_cursor"]) == (False, None)
    assert [(m["email"], m["roles"]) for m in body["data"]] == [
        ("alice@acme.example", ["billing_contact"]),
        ("bob@acme.example", ["admin"]),
        ("pat@acme.example", []),
    ]


def test_a_support_agent_sees_any_account_the_way_the_web_does(world):
    support = User.objects.create_user("support@x.example", "pw", is_staff=True)
    support.groups.add(Group.objects.get(name="support_agent"))
    api = ApiClient(token_for(support))
    body = api.get(f"/api/v1/accounts/{world.b.pk}").json()
    assert body["name"] == "Bistro"
    assert body["billing"] is not None
    assert api.get(f"/api/v1/accounts/{world.b.pk}/members").status_code == 403
    assert api.get("/api/v1/me").json()["staff_roles"] == ["support_agent"]


def test_the_accounts_endpoints_do_a_bounded_number_of_queries(world, django_assert_max_num_queries):
    for email in ["d@acme.example", "e@acme.example", "f@acme.example"]:
        membership_set_roles(actor=None, account=world.a, user=User.objects.create_user(email),
                             organizer=True)
    api = ApiClient(token_for(world.bob))
    with django_assert_max_num_queries(8):
        assert len(api.get(f"/api/v1/accounts/{world.a.pk}/members").json()["data"]) == 6
