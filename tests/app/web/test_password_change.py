"""Changing the password on the profile (S1): current password required, other sessions end."""

from __future__ import annotations

from django.test import Client

from prorata.accounts.models import AuditEntry, User
from tests.app.web.conftest import NEW_PASSWORD, PASSWORD, page_text, sign_in


def change(client, current=PASSWORD, new=NEW_PASSWORD, again=None):
    return client.post("/profile/password/", {
        "old_password": current, "new_password1": new, "new_password2": new if again is None else again,
    })


def test_a_password_change_keeps_this_session_and_signs_out_the_others(alice):
    # given Alice signed in on two browsers
    laptop, phone = Client(), Client()
    assert sign_in(laptop, "alice@acme.example", PASSWORD).status_code == 302
    assert sign_in(phone, "alice@acme.example", PASSWORD).status_code == 302
    # when she changes her password on the laptop
    response = change(laptop)
    assert response.status_code == 302
    assert response["Location"] == "/profile/"
    # then the laptop stays signed in and says so ...
    page = laptop.get("/profile/")
    assert page.status_code == 200
    assert "Your password is changed. Your other sessions are signed out." in page_text(page)
    # ... and the phone is signed out
    assert phone.get("/profile/")["Location"] == "/accounts/login/?next=/profile/"
    # and only the new password works
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert not alice.check_password(PASSWORD)


def test_a_password_change_is_audited(signed_in, alice):
    change(signed_in)
    (entry,) = AuditEntry.objects.filter(action="auth.password_change")
    assert (entry.actor_id, entry.object_id) == (alice.pk, str(alice.pk))
    assert entry.ip == "127.0.0.1"
    assert entry.before is None and entry.after is None  # never a password, not even hashed


def test_a_wrong_current_password_changes_nothing(signed_in, alice):
    response = change(signed_in, current="not it")
    assert response.status_code == 200
    assert "Your current password is incorrect. Nothing was changed." in page_text(response)
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    assert not AuditEntry.objects.filter(action="auth.password_change").exists()


def test_two_different_new_passwords_change_nothing(signed_in, alice):
    response = change(signed_in, again="something else entirely")
    assert "The two new passwords differ. Type the same one twice." in page_text(response)
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_a_weak_new_password_is_refused_with_the_reason(signed_in, alice):
    response = change(signed_in, new="12345678")
    text = page_text(response)
    assert "This password is too common." in text
    assert "This password is entirely numeric." in text
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_the_profile_needs_a_signed_in_user(client, clock):
    assert client.get("/profile/")["Location"] == "/accounts/login/?next=/profile/"
    assert client.post("/profile/password/", {})["Location"].startswith("/accounts/login/")


def test_the_password_form_only_takes_posts(signed_in):
    assert signed_in.get("/profile/password/").status_code == 405


def test_the_profile_refuses_a_post_without_the_csrf_token(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert change(browser).status_code == 403
    assert User.objects.get(pk=alice.pk).check_password(PASSWORD)
