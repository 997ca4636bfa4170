"""The API also accepts the web session; unsafe methods then need the CSRF token."""

from __future__ import annotations

import pytest
from django.test import Client

from prorata.api.models import ApiToken
from prorata.api.services import api_token_create
from tests.app.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict_client(world) -> Client:
    """Signed in as alice, enforcing CSRF like a browser (the test client skips it by default)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)
    return client


def csrf_token_of(client: Client) -> str:
    client.get("/api/v1/docs")  # a page that renders {{ csrf_token }} sets the cookie
    return client.cookies["csrftoken"].value


def test_the_session_reads_without_csrf(world, strict_client):
    response = strict_client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["email"] == "alice@acme.example"


def test_an_unsafe_method_by_session_without_csrf_is_refused(world, strict_client):
    row, _ = api_token_create(user=world.alice, name="CI")
    response = strict_client.delete(f"/api/v1/tokens/{row.pk}")
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    row.refresh_from_db()
    assert row.revoked_at is None


def test_an_unsafe_method_by_session_with_a_wrong_csrf_token_is_refused(world, strict_client):
    row, _ = api_token_create(user=world.alice, name="CI")
    csrf_token_of(strict_client)
    response = strict_client.delete(f"/api/v1/tokens/{row.pk}", HTTP_X_CSRFTOKEN="x" * 64)
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


def test_an_unsafe_method_by_session_with_csrf_passes(world, strict_client):
    row, _ = api_token_create(user=world.alice, name="CI")
    csrf = csrf_token_of(strict_client)
    response = strict_client.delete(f"/api/v1/tokens/{row.pk}", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_a_bearer_token_needs_no_csrf(world):
    row, token = api_token_create(user=world.alice, name="CI")
    api = ApiClient(token, client=Client(enforce_csrf_checks=True))
    assert api.delete(f"/api/v1/tokens/{row.pk}").status_code == 200


def test_anonymous_unsafe_requests_answer_401_not_a_csrf_error(world):
    response = Client(enforce_csrf_checks=True).delete("/api/v1/tokens/1")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert ApiToken.objects.count() == 0


def test_signing_out_ends_api_access(world, client):
    client.force_login(world.alice)
    assert client.get("/api/v1/me").status_code == 200
    client.logout()
    assert client.get("/api/v1/me").status_code == 401
