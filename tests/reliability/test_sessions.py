"""Sessions and stored passwords (issue 18, "Security"; plan T18): a new session id at sign-in
(no session fixation), the old cookie worthless after sign-out, after a password change or an
e-mail change elsewhere, and passwords stored as argon2id hashes.
"""

from __future__ import annotations

from importlib import import_module

import pytest
from django.conf import settings
from django.test import Client

from prorata.accounts.models import User
from tests.app.web.conftest import PASSWORD, sign_in

pytestmark = pytest.mark.django_db

store = import_module(settings.SESSION_ENGINE).SessionStore
ACCOUNT_PAGE = "/billing/"


@pytest.fixture
def alice(clock):
    return User.objects.create_user("alice@acme.example", PASSWORD, first_name="Alice")


def planted(client: Client) -> str:
    """A session an attacker made and planted in the victim's browser; returns its key."""
    session = store()
    session["planted"] = True
    session.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    return session.session_key


def with_cookie(key: str) -> Client:
    """Another browser presenting the session cookie ``key`` (a stolen or replayed cookie)."""
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = key
    return client


def signed_in_key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_signing_in_gives_a_new_session_id_and_the_planted_one_stays_signed_out(alice):
    browser = Client()
    fixed = planted(browser)
    assert sign_in(browser, "alice@acme.example", PASSWORD).status_code == 302
    key = signed_in_key(browser)
    assert key != fixed
    assert not store().exists(fixed)  # Django cycles the key and drops the old row
    assert with_cookie(fixed).get(ACCOUNT_PAGE).status_code == 302  # to the sign-in page
    assert browser.get(ACCOUNT_PAGE).status_code in (200, 302)
    assert browser.get("/profile/").status_code == 200


def test_after_sign_out_the_old_cookie_signs_nobody_in(alice):
    browser = Client()
    sign_in(browser, "alice@acme.example", PASSWORD)
    key = signed_in_key(browser)
    assert with_cookie(key).get("/profile/").status_code == 200
    assert browser.post("/accounts/logout/").status_code == 302
    assert not store().exists(key)
    replay = with_cookie(key).get("/profile/")
    assert replay.status_code == 302 and replay["Location"].startswith("/accounts/login/")


def test_a_password_change_in_one_browser_signs_out_the_others(alice):
    here, elsewhere = Client(), Client()
    sign_in(here, "alice@acme.example", PASSWORD)
    sign_in(elsewhere, "alice@acme.example", PASSWORD, ip="198.51.100.2")
    assert elsewhere.get("/profile/").status_code == 200
    changed = here.post("/profile/password/", {
        "old_password": PASSWORD, "new_password1": "another long passphrase 42",
        "new_password2": "another long passphrase 42"})
    assert changed.status_code == 302
    assert here.get("/profile/").status_code == 200
    assert elsewhere.get("/profile/").status_code == 302


def test_passwords_are_stored_as_argon2id(settings):
    # The tests hash with MD5 for speed (settings/test.py); the product's own list is base's.
    from prorata.settings import base

    settings.PASSWORD_HASHERS = base.PASSWORD_HASHERS
    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    alice = User.objects.create_user("alice@acme.example", PASSWORD)
    stored = User.objects.get(pk=alice.pk).password
    assert stored.startswith("argon2$argon2id$")
    assert PASSWORD not in stored
    browser = Client()
    sign_in(browser, "alice@acme.example", PASSWORD)
    browser.post("/profile/password/", {
        "old_password": PASSWORD, "new_password1": "another long passphrase 42",
        "new_password2": "another long passphrase 42"})
    assert User.objects.get(pk=alice.pk).password.startswith("argon2$argon2id$")
