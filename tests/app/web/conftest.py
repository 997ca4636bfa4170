"""Fixtures for the sign-in, profile and language tests: a user, and signing in over HTTP."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from prorata.accounts.models import User

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple purple lantern"


@pytest.fixture
def alice(clock) -> User:
    """A customer who signs in with alice@acme.example and PASSWORD; no preferred language."""
    return User.objects.create_user("alice@acme.example", PASSWORD, first_name="Alice")


def sign_in(client: Client, email: str, password: str, *, ip: str = "203.0.113.7", **extra):
    """POST the sign-in form as a browser at ``ip`` would."""
    return client.post(
        "/accounts/login/", {"username": email, "password": password}, REMOTE_ADDR=ip, **extra
    )


def page_text(response) -> str:
    """The visible text of an HTML response, spaces folded (to check whole messages)."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"</?(strong|em|code|a|span)\b[^>]*>", "", html)  # inline: no space
    text = re.sub(r"<[^>]+>", " ", html)
    text = text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")
    return re.sub(r"\s+", " ", text).strip()


def link_in(body: str) -> str:
    """The one http(s) link of an e-mail body, as a path."""
    (url,) = re.findall(r"https?://[^\s]+", body)
    return re.sub(r"^https?://[^/]+", "", url)


@pytest.fixture
def signed_in(client, alice) -> Client:
    assert sign_in(client, "alice@acme.example", PASSWORD).status_code == 302
    return client
