"""Branded 403, 404 and 500 pages, each with a way back (issue 16)."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.utils import translation

from prorata.accounts.services import account_create, membership_set_roles
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.django_db


def test_a_missing_page_is_branded_with_a_way_back(client, clock):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    text = page_text(response)
    assert "Page not found" in text and "Go to the home page" in text and "Sign in" in text
    assert 'href="/static/prorata/app.css"' in response.content.decode() or "app.css" in \
        response.content.decode()


def test_a_missing_page_in_french(client, clock):
    client.cookies["django_language"] = "fr"
    assert "Page non trouvée" in page_text(client.get("/no-such-page/"))


def test_a_missing_role_is_a_branded_403_leading_to_my_account(signed_in, alice):
    account = account_create(name="Acme", country="FR")
    membership_set_roles(actor=None, account=account, user=alice)  # a member with no role
    response = signed_in.get(f"/billing/{account.pk}/transactions/")
    assert response.status_code == 403
    text = page_text(response)
    assert "Not allowed" in text and "Go to my account" in text
    assert 'href="/billing/"' in response.content.decode()


def test_the_500_page_renders_without_a_request():
    with translation.override("fr"):
        html = render_to_string("500.html")
    assert "Une erreur s’est produite" in html and 'href="/"' in html
