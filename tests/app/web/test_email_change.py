"""Changing the sign-in e-mail (S1): a link to the new address, the old one told, once, 24 h."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from prorata.accounts.models import AuditEntry, EmailChangeRequest, User
from tests.app.web.conftest import PASSWORD, link_in, page_text, sign_in


def ask(client, new_email="alice@new.example", password=PASSWORD):
    return client.post("/profile/email/", {"new_email": new_email, "password": password})


@pytest.fixture
def link(signed_in) -> str:
    """The confirmation link sent after Alice asked to sign in with alice@new.example."""
    assert ask(signed_in).status_code == 302
    (message,) = mail.outbox
    return link_in(message.body)


def test_the_link_goes_to_the_new_address_and_nothing_changes_yet(signed_in, alice):
    # when Alice asks for a new address
    response = ask(signed_in)
    # then she is told where the link went, and that her address is unchanged for now
    assert response["Location"] == "/profile/"
    text = page_text(signed_in.get("/profile/"))
    assert (
        "We sent a confirmation link to alice@new.example. Your address changes when you open it; "
        "until then, sign in with alice@acme.example." in text
    )
    assert "A confirmation link was sent to alice@new.example. Your address changes when you open it." in text
    (message,) = mail.outbox
    assert message.to == ["alice@new.example"]
    assert message.subject == "Confirm your new Prorata e-mail address"
    assert "You asked to sign in to Prorata with alice@new.example instead of alice@acme.example." in message.body
    assert f"{settings.PRORATA_BASE_URL}/accounts/email/confirm/" in message.body  # not the Host
    alice.refresh_from_db()
    assert alice.email == "alice@acme.example"


def test_opening_the_link_shows_the_change_and_changes_nothing(client, link, alice):
    page = client.get(link)
    assert page.status_code == 200
    assert "You will sign in with alice@new.example instead of alice@acme.example" in page_text(page)
    alice.refresh_from_db()
    assert alice.email == "alice@acme.example"


def test_confirming_changes_the_address_and_tells_the_old_one(link, alice):
    mail.outbox.clear()
    # when the link is confirmed (by whoever reads the new mailbox, signed in or not)
    client = Client()
    response = client.post(link)
    # then Alice signs in with the new address
    assert response["Location"] == "/accounts/login/"
    assert "Your e-mail address is now alice@new.example." in page_text(client.get("/accounts/login/"))
    alice.refresh_from_db()
    assert alice.email == "alice@new.example"
    assert sign_in(Client(), "alice@new.example", PASSWORD).status_code == 302
    # and the old address was told
    (notice,) = mail.outbox
    assert notice.to == ["alice@acme.example"]
    assert notice.subject == "Your Prorata e-mail address was changed"
    assert "now signs in with alice@new.example" in notice.body


def test_confirming_while_signed_in_goes_back_to_the_profile(signed_in, link):
    response = signed_in.post(link)
    assert response["Location"] == "/profile/"
    assert "You sign in with alice@new.example" in page_text(signed_in.get("/profile/"))


def test_confirming_ends_every_other_session_of_the_user(signed_in, link, alice):
    """Issue 18: a session opened elsewhere with the old address (a stolen one, say) ends when
    the address changes, as it does when the password changes; the session that confirms stays."""
    elsewhere = Client()
    assert sign_in(elsewhere, "alice@acme.example", PASSWORD).status_code == 302
    assert elsewhere.get("/profile/").status_code == 200
    anonymous = Client()
    assert anonymous.post(link).status_code == 302  # confirmed from the new mailbox, signed out
    assert elsewhere.get("/profile/").status_code == 302  # sent to sign in
    assert signed_in.get("/profile/").status_code == 302  # Alice's first session too


def test_the_session_that_confirms_stays_signed_in(signed_in, link):
    elsewhere = Client()
    assert sign_in(elsewhere, "alice@acme.example", PASSWORD).status_code == 302
    assert signed_in.post(link)["Location"] == "/profile/"
    assert signed_in.get("/profile/").status_code == 200
    assert elsewhere.get("/profile/").status_code == 302


def test_the_change_is_audited(client, link, alice):
    client.post(link, REMOTE_ADDR="198.51.100.4")
    (entry,) = AuditEntry.objects.filter(action="auth.email_change")
    assert entry.actor_id == alice.pk
    assert entry.before == {"email": "alice@acme.example"}
    assert entry.after == {"email": "alice@new.example"}
    assert entry.ip == "198.51.100.4"
    (request,) = AuditEntry.objects.filter(action="auth.email_change_request")
    assert request.after == {"email": "alice@new.example"}


def test_the_link_works_once(client, link, alice):
    assert client.post(link).status_code == 302
    again = client.post(link)
    assert again.status_code == 410
    assert "This link has already been used." in page_text(again)
    assert client.get(link).status_code == 410
    assert AuditEntry.objects.filter(action="auth.email_change").count() == 1


def test_the_link_expires_after_24_hours_of_the_project_clock(client, link, alice, clock):
    clock.advance(timedelta(hours=23, minutes=59, seconds=59))
    assert client.get(link).status_code == 200
    clock.advance(timedelta(seconds=1))
    response = client.post(link)
    assert response.status_code == 410
    assert "This link has expired. Request a new e-mail change from your profile." in page_text(response)
    alice.refresh_from_db()
    assert alice.email == "alice@acme.example"


def test_a_tampered_link_is_refused(client, link, alice):
    token = link.rstrip("/").rsplit("/", 1)[1]
    for bad in [link.replace(token, token[:-2] + "xx"), "/accounts/email/confirm/nonsense/"]:
        response = client.post(bad)
        assert response.status_code == 404
        assert "This link is not valid. Request a new e-mail change from your profile." in page_text(response)
    alice.refresh_from_db()
    assert alice.email == "alice@acme.example"


def test_a_newer_request_replaces_the_pending_one(signed_in, link, alice):
    ask(signed_in, new_email="alice@newer.example")
    assert signed_in.post(link).status_code == 404
    newer = link_in(mail.outbox[-1].body)
    assert signed_in.post(newer).status_code == 302
    alice.refresh_from_db()
    assert alice.email == "alice@newer.example"


def test_an_address_taken_meanwhile_is_refused_at_confirmation(client, link, alice):
    User.objects.create_user("alice@new.example", "x")
    response = client.post(link)
    assert response.status_code == 409
    assert "This address is already used by another account." in page_text(response)
    alice.refresh_from_db()
    assert alice.email == "alice@acme.example"


@pytest.mark.parametrize(
    ("new_email", "password", "message"),
    [
        ("not an address", PASSWORD, "Enter a valid e-mail address."),
        ("ALICE@acme.example", PASSWORD, "This is already your e-mail address."),
        ("bob@acme.example", PASSWORD, "This address is already used by another account."),
        ("alice@new.example", "wrong", "Your current password is incorrect. Nothing was changed."),
        ("", PASSWORD, "This field is required."),
    ],
)
def test_bad_input_changes_nothing_and_says_why(signed_in, alice, new_email, password, message):
    User.objects.create_user("bob@acme.example", "x")
    response = ask(signed_in, new_email=new_email, password=password)
    assert response.status_code == 200
    assert message in page_text(response)
    assert mail.outbox == []
    assert not EmailChangeRequest.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="auth.email").exists()


def test_the_mail_is_in_the_users_language(signed_in, alice):
    User.objects.filter(pk=alice.pk).update(language="fr")
    ask(signed_in)
    (message,) = mail.outbox
    assert message.subject == "Confirmez votre nouvelle adresse e-mail Prorata"
    assert "Vous avez demandé à vous connecter à Prorata avec alice@new.example" in message.body


def test_a_mail_failure_withdraws_the_request(signed_in, alice, settings):
    settings.EMAIL_BACKEND = "tests.app.web.test_email_change.BrokenBackend"
    response = ask(signed_in)
    assert "The confirmation e-mail could not be sent. Please try again later." in page_text(response)
    assert not EmailChangeRequest.objects.exists()


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("connection refused")
