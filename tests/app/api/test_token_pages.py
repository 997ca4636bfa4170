"""The tokens pages at /profile/tokens/: sign-in required, the secret shown once, POST+CSRF revoke."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from prorata.api.models import ApiToken
from prorata.api.services import api_token_create
from tests.app.api.conftest import ApiClient

pytestmark = pytest.mark.django_db

TOKEN_IN_PAGE = re.compile(r"prorata_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def alice_client(world) -> Client:
    client = Client()
    client.force_login(world.alice)
    return client


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/profile/tokens/"),
    ("post", "/profile/tokens/"),
    ("post", "/profile/tokens/1/revoke/"),
])
def test_signed_out_visitors_are_sent_to_sign_in(world, client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_creating_a_token_shows_it_once(world, alice_client):
    response = alice_client.post("/profile/tokens/", {"name": "Accounting export",
                                                       "validity": "30"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    shown = TOKEN_IN_PAGE.findall(response.content.decode())
    assert len(shown) == 1
    assert ApiClient(shown[0]).get("/api/v1/me").json()["email"] == "alice@acme.example"

    again = alice_client.get("/profile/tokens/")
    assert TOKEN_IN_PAGE.search(again.content.decode()) is None
    assert "Accounting export" in again.content.decode()
    token = ApiToken.objects.get(user=world.alice)
    assert token.display in again.content.decode()
    assert token.expires_at is not None


def test_an_invalid_form_creates_nothing(world, alice_client):
    response = alice_client.post("/profile/tokens/", {"name": "", "validity": "30"})
    assert response.status_code == 200
    assert TOKEN_IN_PAGE.search(response.content.decode()) is None
    assert not ApiToken.objects.exists()


def test_no_expiry_is_a_choice(world, alice_client):
    alice_client.post("/profile/tokens/", {"name": "Forever", "validity": "never"})
    assert ApiToken.objects.get().expires_at is None


def test_revoking_from_the_page(world, alice_client):
    row, token = api_token_create(user=world.alice, name="CI")
    response = alice_client.post(f"/profile/tokens/{row.pk}/revoke/")
    assert response.status_code == 302
    assert response["Location"] == "/profile/tokens/"
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert ApiClient(token).get("/api/v1/me").status_code == 401
    page = alice_client.get("/profile/tokens/").content.decode()
    assert "Revoked" in page


def test_revoking_needs_post(world, alice_client):
    row, _ = api_token_create(user=world.alice, name="CI")
    assert alice_client.get(f"/profile/tokens/{row.pk}/revoke/").status_code == 405
    row.refresh_from_db()
    assert row.revoked_at is None


def test_someone_elses_token_is_a_404(world, alice_client):
    row, _ = api_token_create(user=world.bea, name="Bea's")
    assert alice_client.post(f"/profile/tokens/{row.pk}/revoke/").status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None
    assert "Bea&#x27;s" not in alice_client.get("/profile/tokens/").content.decode()


def test_the_forms_need_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.alice)
    row, _ = api_token_create(user=world.alice, name="CI")

    assert client.post("/profile/tokens/", {"name": "x", "validity": "30"}).status_code == 403
    assert client.post(f"/profile/tokens/{row.pk}/revoke/").status_code == 403
    assert ApiToken.objects.filter(revoked_at__isnull=True).count() == 1

    page = client.get("/profile/tokens/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    response = client.post(f"/profile/tokens/{row.pk}/revoke/", {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 302


def test_the_profile_links_to_the_styled_tokens_page(alice_client):
    profile = alice_client.get("/profile/").content.decode()
    assert 'href="/profile/tokens/"' in profile
    page = alice_client.get("/profile/tokens/").content.decode()
    assert 'class="card"' in page and 'class="button button-primary"' in page
    assert 'href="/profile/"' in page  # the way back
