"""Password reset by e-mail: Django's views, links that expire by the project clock and work once."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from prorata.accounts.models import AuditEntry, PasswordResetRequest, User
from prorata.accounts.resets import MAX_PER_ADDRESS as MAX_RESETS_PER_ADDRESS
from prorata.accounts.resets import MAX_PER_IP as MAX_RESETS_PER_IP
from prorata.accounts.throttle import MAX_PER_ADDRESS
from prorata.accounts.tokens import password_reset_tokens
from prorata.jobs.periodic import deliver_mail
from prorata.notifications.models import OutboxMessage
from tests.app.web.conftest import NEW_PASSWORD, PASSWORD, link_in, page_text, sign_in


def ask_reset(client, email="alice@acme.example"):
    """Submit the page, then run the worker's mail job, which queues and sends the link."""
    response = client.post("/accounts/password_reset/", {"email": email})
    deliver_mail()
    return response


def choose(client, link, password=NEW_PASSWORD, again=None):
    """Open the e-mailed link and submit the new password; returns the last response."""
    opened = client.get(link)
    assert opened.status_code == 302  # Django moves the token out of the URL into the session
    return client.post(opened["Location"], {
        "new_password1": password, "new_password2": password if again is None else again,
    })


def test_the_sign_in_page_offers_the_reset(client, clock):
    html = client.get("/accounts/login/").content.decode()
    assert '<a href="/accounts/password_reset/">Forgot your password?</a>' in html


def test_the_full_reset_flow(client, alice):
    # when Alice asks for a reset
    response = ask_reset(client, "ALICE@acme.example")
    assert response["Location"] == "/accounts/password_reset/done/"
    assert "If an account uses this address, we have sent it a link" in page_text(client.get(response["Location"]))
    # then she receives one link
    (message,) = mail.outbox
    assert message.to == ["alice@acme.example"]
    assert message.subject == "Reset your Prorata password"
    assert "Someone asked to reset the password of the Prorata account alice@acme.example." in message.body
    # and choosing a new password through it works
    done = choose(client, link_in(message.body))
    assert done["Location"] == "/accounts/reset/done/"
    assert "Your new password is saved. You can sign in with it now." in page_text(client.get(done["Location"]))
    assert sign_in(Client(), "alice@acme.example", NEW_PASSWORD).status_code == 302
    assert sign_in(Client(), "alice@acme.example", PASSWORD).status_code == 200
    (entry,) = AuditEntry.objects.filter(action="auth.password_reset")
    assert entry.actor_id == alice.pk


def test_an_unknown_address_looks_the_same_and_sends_nothing(client, clock):
    response = ask_reset(client, "nobody@acme.example")
    assert response["Location"] == "/accounts/password_reset/done/"
    assert mail.outbox == []


def test_an_invalid_address_says_so(client, clock):
    response = ask_reset(client, "not an address")
    assert response.status_code == 200
    assert "Enter a valid e-mail address." in page_text(response)
    assert mail.outbox == []


def test_the_link_works_once(client, alice):
    ask_reset(client)
    link = link_in(mail.outbox[0].body)
    choose(client, link)
    again = Client().get(link)
    assert again.status_code == 200
    assert "The password reset link has expired or has already been used." in page_text(again)


def test_the_link_expires_after_24_hours_of_the_project_clock(client, alice, clock):
    ask_reset(client)
    link = link_in(mail.outbox[0].body)
    clock.advance(timedelta(hours=24, seconds=1))
    response = client.get(link)
    assert response.status_code == 200
    assert "The password reset link has expired or has already been used." in page_text(response)
    assert User.objects.get(pk=alice.pk).check_password(PASSWORD)


def test_a_link_is_still_good_just_before_24_hours(client, alice, clock):
    ask_reset(client)
    clock.advance(timedelta(hours=23, minutes=59))
    assert choose(client, link_in(mail.outbox[0].body))["Location"] == "/accounts/reset/done/"


def test_tokens_read_the_project_clock(alice, clock):
    token = password_reset_tokens.make_token(alice)
    assert password_reset_tokens.check_token(alice, token)
    clock.advance(timedelta(days=2))
    assert not password_reset_tokens.check_token(alice, token)


def test_two_different_passwords_change_nothing(client, alice):
    ask_reset(client)
    response = choose(client, link_in(mail.outbox[0].body), again="something else entirely")
    assert response.status_code == 200
    assert "The two new passwords differ. Type the same one twice." in page_text(response)
    assert User.objects.get(pk=alice.pk).check_password(PASSWORD)


def test_a_reset_ends_the_sign_in_lockout(client, alice):
    for _ in range(MAX_PER_ADDRESS):
        sign_in(client, "alice@acme.example", "wrong")
    ask_reset(client)
    choose(client, link_in(mail.outbox[0].body))
    assert sign_in(Client(), "alice@acme.example", NEW_PASSWORD).status_code == 302


def test_the_reset_mail_is_in_the_users_language(client, alice):
    User.objects.filter(pk=alice.pk).update(language="fr")
    ask_reset(client)
    (message,) = mail.outbox
    assert message.subject == "Réinitialisez votre mot de passe Prorata"
    assert "Quelqu'un a demandé à réinitialiser le mot de passe du compte Prorata alice@acme.example." in message.body


def test_the_reset_mail_follows_the_page_language_otherwise(client, alice):
    client.post("/accounts/password_reset/", {"email": "alice@acme.example"}, HTTP_ACCEPT_LANGUAGE="fr")
    deliver_mail()
    assert mail.outbox[0].subject == "Réinitialisez votre mot de passe Prorata"


def statements_of(client, email, **headers):
    """The SQL the reset page runs for ``email``, with the address itself blanked out."""
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/accounts/password_reset/", {"email": email}, **headers)
    assert response["Location"] == "/accounts/password_reset/done/"
    return [re.sub(r"\d{4}-\d\d-\d\d[ T][\d:.+]+", "<at>", q["sql"].replace(email, "<email>"))
            for q in queries.captured_queries]


def test_the_page_does_the_same_work_for_a_known_and_an_unknown_address(client, alice):
    # Same statements, nothing sent while the visitor waits: the answer's time cannot tell
    # whether an account uses the address (an enumeration oracle otherwise).
    known = statements_of(client, "alice@acme.example")
    unknown = statements_of(Client(), "nobod@acme.example")  # same length as alice's
    assert known == unknown
    assert not any("accounts_user" in sql for sql in known)
    assert mail.outbox == [] and not OutboxMessage.objects.exists()
    # the worker then mails the known address only, and records why not the other
    assert deliver_mail()["resets"] == 1
    (message,) = mail.outbox
    assert message.to == ["alice@acme.example"]
    assert sorted(PasswordResetRequest.objects.values_list("email", "outcome")) == [
        ("alice@acme.example", "sent"), ("nobod@acme.example", "unknown")]


def test_one_address_gets_at_most_three_links_an_hour(client, alice, clock):
    for _ in range(MAX_RESETS_PER_ADDRESS + 2):
        assert ask_reset(Client(REMOTE_ADDR="198.51.100.7"))["Location"] == "/accounts/password_reset/done/"
    assert len(mail.outbox) == MAX_RESETS_PER_ADDRESS  # not a mail bomb for the owner
    assert PasswordResetRequest.objects.filter(outcome="throttled").count() == 2
    clock.advance(timedelta(hours=1, seconds=1))
    ask_reset(client)
    assert len(mail.outbox) == MAX_RESETS_PER_ADDRESS + 1
    # the newest link works
    assert choose(client, link_in(mail.outbox[-1].body))["Location"] == "/accounts/reset/done/"


def test_requests_in_one_batch_count_towards_the_address_limit(client, alice):
    for _ in range(MAX_RESETS_PER_ADDRESS + 1):
        client.post("/accounts/password_reset/", {"email": "alice@acme.example"})
    deliver_mail()
    assert len(mail.outbox) == MAX_RESETS_PER_ADDRESS


def test_one_network_is_refused_past_twenty_requests_an_hour(alice, clock):
    office = Client(REMOTE_ADDR="203.0.113.9")
    for index in range(MAX_RESETS_PER_IP):
        assert office.post("/accounts/password_reset/",
                           {"email": f"person{index}@acme.example"}).status_code == 302
    refused = office.post("/accounts/password_reset/", {"email": "alice@acme.example"})
    assert refused.status_code == 429
    assert ("Too many password reset requests from your network. Try again in 60 minutes."
            in page_text(refused))
    assert PasswordResetRequest.objects.count() == MAX_RESETS_PER_IP  # the refusal wrote nothing
    # another network is not concerned, and the office may ask again once the hour has passed
    assert Client(REMOTE_ADDR="198.51.100.1").post(
        "/accounts/password_reset/", {"email": "alice@acme.example"}).status_code == 302
    clock.advance(timedelta(minutes=30))
    french = office.post("/accounts/password_reset/", {"email": "alice@acme.example"},
                         HTTP_ACCEPT_LANGUAGE="fr")
    assert french.status_code == 429
    assert "Trop de demandes de réinitialisation depuis votre réseau" in page_text(french)
    clock.advance(timedelta(minutes=31))
    assert office.post("/accounts/password_reset/",
                       {"email": "alice@acme.example"}).status_code == 302


def test_handled_requests_are_purged_after_the_hour(client, alice, clock):
    ask_reset(client)
    clock.advance(timedelta(hours=1, seconds=1))
    deliver_mail()
    assert not PasswordResetRequest.objects.exists()


def test_the_worker_sends_the_link_by_itself(client, alice):
    # The schedule's deliver-mail job is the one that queues the link.
    from prorata.jobs.schedule import job_named, run_job

    client.post("/accounts/password_reset/", {"email": "alice@acme.example"})
    run_job(job_named("deliver-mail"))
    (message,) = mail.outbox
    assert message.to == ["alice@acme.example"] and message.extra_headers["Message-ID"]
