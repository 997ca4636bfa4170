"""Personal API tokens: shown once, hashed at rest, revocable, expiring on the project clock."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import connection

from prorata.accounts.models import AuditEntry
from prorata.api.models import ApiToken
from prorata.api.services import api_token_authenticate, api_token_create, api_token_revoke
from prorata_core.errors import ValidationError
from tests.app.api.conftest import ApiClient, token_for

pytestmark = pytest.mark.django_db


def every_stored_text() -> str:
    """Every row of every table of the database, as one string (for "no plaintext" checks)."""
    texts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            texts.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(texts)


def test_a_token_is_returned_once_and_only_its_hash_is_stored(world):
    row, token = api_token_create(user=world.alice, name="Accounting export")

    assert token.startswith(f"prorata_{row.prefix}_")
    assert len(token) == len("prorata_") + 10 + 1 + 43
    assert row.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    secret = token.removeprefix(f"prorata_{row.prefix}_")
    stored = every_stored_text()
    assert token not in stored
    assert secret not in stored
    assert row.prefix in stored  # the display prefix is not secret: the scan does see the table


def test_two_tokens_differ_and_both_work(world):
    first, second = token_for(world.alice), token_for(world.alice)
    assert first != second
    assert api_token_authenticate(token=first) == world.alice
    assert api_token_authenticate(token=second) == world.alice


def test_creation_and_revocation_are_audited_without_the_secret(world):
    row, token = api_token_create(user=world.alice, name="CI", ip="203.0.113.9")
    api_token_revoke(actor=world.alice, token=row, ip="203.0.113.9")
    api_token_revoke(actor=world.alice, token=row)  # again: nothing changes, nothing recorded

    entries = list(AuditEntry.objects.filter(action__startswith="api_token.").order_by("id"))
    assert [e.action for e in entries] == ["api_token.create", "api_token.revoke"]
    assert all(e.actor_id == world.alice.pk and e.object_id == str(row.pk) for e in entries)
    assert entries[0].after["prefix"] == row.prefix
    assert entries[0].ip == "203.0.113.9"
    assert token not in repr([(e.before, e.after) for e in entries])


def test_a_revoked_token_answers_401_with_the_reason(world):
    row, token = api_token_create(user=world.alice, name="CI")
    api = ApiClient(token)
    assert api.get("/api/v1/me").status_code == 200

    api_token_revoke(actor=world.alice, token=row)

    response = api.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response.json()["params"] == {"reason": "revoked"}
    assert "revoked" in response.json()["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_expires_when_the_project_clock_reaches_its_expiry(world, clock):
    row, token = api_token_create(user=world.alice, name="30 days", valid_for=timedelta(days=30))
    assert row.expires_at == clock.now() + timedelta(days=30)
    api = ApiClient(token)

    clock.advance(timedelta(days=30) - timedelta(seconds=1))
    assert api.get("/api/v1/me").status_code == 200

    clock.advance(timedelta(seconds=1))
    response = api.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["params"] == {"reason": "expired",
                                         "expired_at": "2026-04-10T00:00:00Z"}


def test_last_used_at_follows_the_project_clock(world, clock):
    row, token = api_token_create(user=world.alice, name="CI")
    assert row.last_used_at is None
    api = ApiClient(token)

    api.get("/api/v1/me")
    row.refresh_from_db()
    assert row.last_used_at == clock.now()

    first_use = clock.now()
    clock.advance(timedelta(seconds=30))  # within the minute of precision: not rewritten
    api.get("/api/v1/me")
    row.refresh_from_db()
    assert row.last_used_at == first_use

    later = clock.advance(timedelta(hours=1))
    api.get("/api/v1/accounts")
    row.refresh_from_db()
    assert row.last_used_at == later


@pytest.mark.parametrize(("header", "reason"), [
    ("Bearer prorata_aaaaaaaaaa_" + "x" * 43, "unknown"),
    ("Bearer not-a-token", "malformed"),
    ("Bearer ", "malformed"),
])
def test_an_unknown_or_malformed_token_answers_401(world, client, header, reason):
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert response.json()["params"]["reason"] == reason


def test_a_right_prefix_with_a_wrong_secret_is_unknown_not_revoked(world):
    row, token = api_token_create(user=world.alice, name="CI")
    api_token_revoke(actor=world.alice, token=row)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    response = ApiClient(forged).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["params"]["reason"] == "unknown"


def test_a_disabled_users_token_answers_401(world):
    token = token_for(world.alice)
    world.alice.is_active = False
    world.alice.save()
    response = ApiClient(token).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["params"]["reason"] == "user_inactive"


def test_an_invalid_token_is_not_replaced_by_the_session(world, client):
    client.force_login(world.alice)
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401


@pytest.mark.parametrize(("name", "valid_for"), [
    ("", None),
    ("   ", None),
    ("x" * 101, None),
    ("CI", timedelta(0)),
    ("CI", timedelta(days=-1)),
])
def test_bad_input_creates_nothing(world, name, valid_for):
    with pytest.raises(ValidationError):
        api_token_create(user=world.alice, name=name, valid_for=valid_for)
    assert not ApiToken.objects.exists()
    assert not AuditEntry.objects.filter(action="api_token.create").exists()


def test_the_api_lists_the_users_tokens_without_secrets(world, as_alice):
    token_for(world.bea, name="Bea's")
    response = as_alice.get("/api/v1/tokens")
    assert response.status_code == 200
    body = response.json()
    assert body["has_more"] is False and body["next_cursor"] is None
    assert [t["name"] for t in body["data"]] == ["script"]
    assert body["data"][0]["status"] == "active"
    assert as_alice.token not in response.content.decode()


def test_the_api_token_list_walks_to_the_end_by_next_cursor(world, as_alice):
    """Seven more tokens made at the same (frozen) instant: the id breaks the tie, so pages of
    three give every token exactly once, newest first, and the last page says no more."""
    for n in range(7):
        token_for(world.alice, name=f"t{n}")
    expected = [t.name for t in ApiToken.objects.filter(user=world.alice)
                .order_by("-created_at", "-id")]
    assert len(expected) == 8
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        response = as_alice.get("/api/v1/tokens", query_params=query)
        assert response.status_code == 200
        page = response.json()
        pages += 1
        seen += [t["name"] for t in page["data"]]
        assert page["has_more"] is (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
        assert len(cursor) == 32 and "|" not in cursor and ":" not in cursor
    assert seen == expected
    assert pages == 3


def test_a_bad_token_list_cursor_is_a_clear_4xx_with_the_error_json(world, as_alice):
    token_for(world.alice, name="second")
    first = as_alice.get("/api/v1/tokens", query_params={"limit": 1}).json()
    cursor = first["next_cursor"]
    # another user's cursor (same position, another list) is refused too
    as_bea = ApiClient(token_for(world.bea, name="bea"))
    token_for(world.bea, name="bea2")
    bea_cursor = as_bea.get("/api/v1/tokens", query_params={"limit": 1}).json()["next_cursor"]
    for bad in ("garbage", "2026-03-11T00:00:00+00:00|8", cursor[:-1] + ("A" if cursor[-1] != "A"
                                                                       else "B"), bea_cursor):
        response = as_alice.get("/api/v1/tokens", query_params={"cursor": bad})
        assert response.status_code == 422, bad
        assert response["Content-Type"].startswith("application/json")
        body = response.json()
        assert body["code"] == "invalid_cursor"
        assert "next_cursor" in body["message"]


def test_the_api_revokes_the_users_token_and_404s_anyone_elses(world, as_alice):
    other, _ = api_token_create(user=world.bea, name="Bea's")
    response = as_alice.delete(f"/api/v1/tokens/{other.pk}")
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None

    own = ApiToken.objects.get(user=world.alice)
    response = as_alice.delete(f"/api/v1/tokens/{own.pk}")
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert as_alice.get("/api/v1/me").status_code == 401
