"""Account e-mails in HTML and text like the billing ones (issue 15): the password reset, the
e-mail change's confirmation and its notice to the old address, and the sign-up confirmation are
each a multipart/alternative message (text, then HTML in the billing e-mails' layout), in the
reader's language (English and French); both parts carry the same one-time link, which opens
(anonymously, as from another device) and does what it says."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client

from prorata.accounts.models import User
from prorata.jobs.periodic import deliver_mail
from tests.app.web.conftest import NEW_PASSWORD, PASSWORD, page_text

pytestmark = pytest.mark.django_db

#: Per language: each e-mail's subject, a sentence of its text part and of its HTML part, and
#: its button's label.
EXPECTED = {
    "en": {
        "reset": ("Reset your Prorata password",
                  "Someone asked to reset the password of the Prorata account",
                  "To choose a new password, open this link within 24 hours.",
                  "Choose a new password"),
        "change": ("Confirm your new Prorata e-mail address",
                   "You asked to sign in to Prorata with alice@new.example instead of",
                   "To confirm this address, open this link within 24 hours.",
                   "Confirm my new address"),
        "notice": ("Your Prorata e-mail address was changed",
                   "now signs in with alice@new.example",
                   "E-mails about this account will go to the new address from now on.",
                   "Reset my password"),
        "signup": ("Confirm your e-mail address to open your Prorata account",
                   "Thank you for opening an account for Globex SARL.",
                   "To confirm your e-mail address, open this link within 24 hours.",
                   "Confirm my e-mail address"),
        "footer": "You receive this e-mail because this address was entered on Prorata.",
    },
    "fr": {
        "reset": ("Réinitialisez votre mot de passe Prorata",
                  "Quelqu'un a demandé à réinitialiser le mot de passe du compte Prorata",
                  "Pour choisir un nouveau mot de passe, ouvrez ce lien dans les 24 heures.",
                  "Choisissez un nouveau mot de passe"),
        "change": ("Confirmez votre nouvelle adresse e-mail Prorata",
                   "Vous avez demandé à vous connecter à Prorata avec alice@new.example",
                   "Pour confirmer cette adresse, ouvrez ce lien dans les 24 heures.",
                   "Confirmer ma nouvelle adresse"),
        "notice": ("Votre adresse e-mail Prorata a été modifiée",
                   "se connecte désormais avec",
                   "Les e-mails concernant ce compte seront envoyés à la nouvelle adresse.",
                   "Réinitialiser mon mot de passe"),
        "signup": ("Confirmez votre adresse e-mail pour ouvrir votre compte Prorata",
                   "Merci d’avoir ouvert un compte pour Globex SARL.",
                   "Pour confirmer votre adresse e-mail, ouvrez ce lien dans les 24 heures.",
                   "Confirmer mon adresse e-mail"),
        "footer": "Vous recevez cet e-mail parce que cette adresse a été saisie sur Prorata.",
    },
}


def parsed(message: mail.EmailMessage) -> tuple[EmailMessage, str, str]:
    """The message as a mail client reads it (its bytes parsed), its text part and HTML part."""
    received = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    assert isinstance(received, EmailMessage)
    assert received.get_content_type() == "multipart/alternative"
    text_part, html_part = received.iter_parts()
    assert (text_part.get_content_type(), html_part.get_content_type()) == (
        "text/plain", "text/html")
    return received, text_part.get_content(), html_part.get_content()


def one_link(text: str, html: str) -> str:
    """The one link of both parts (the HTML's button and its copy in words): the same, under
    PRORATA_BASE_URL; returned as a path."""
    base = re.escape(settings.PRORATA_BASE_URL)
    text_links = set(re.findall(base + r"/[^\s]+", text))
    html_links = {link.replace("&amp;", "&") for link in re.findall(r'href="([^"]+)"', html)}
    words = {link.replace("&amp;", "&") for link in
             re.findall(base + r"/[^\s<\"]+", re.sub(r"<[^>]+>", " ", html))}
    assert len(text_links) == 1 and text_links == html_links == words, (
        text_links, html_links, words)
    return text_links.pop()[len(settings.PRORATA_BASE_URL):]


def check(message: mail.EmailMessage, kind: str, language: str, to: str) -> str:
    """The e-mail ``kind`` in ``language`` to ``to``, as expected in both parts; its link's path."""
    subject, in_text, in_html, button = EXPECTED[language][kind]
    received, text, html = parsed(message)
    assert received["Subject"].strip() == subject and received["To"] == to
    assert in_text in text.replace("\n", " ")
    assert "<" not in text  # the text part is text
    html_words = html.replace("&#x27;", "'")
    assert f'<html lang="{language}">' in html
    assert settings.PRORATA_SELLER_NAME in html  # the billing e-mails' layout: its header
    assert in_html in html_words and f">{button}</a>" in html_words
    assert EXPECTED[language]["footer"] in html_words
    return one_link(text, html)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_reset_and_email_change_mails_have_both_parts_and_working_links(clock, language):
    alice = User.objects.create_user("alice@acme.example", PASSWORD, first_name="Alice",
                                     language=language)
    # The password reset
    assert Client().post("/accounts/password_reset/",
                         {"email": "alice@acme.example"}).status_code == 302
    deliver_mail()  # the worker queues and sends the reset link
    (reset,) = mail.outbox
    path = check(reset, "reset", language, "alice@acme.example")
    stranger = Client()
    page = stranger.get(path, follow=True)
    assert page.status_code == 200 and page.redirect_chain  # the token moves to the session
    form = page.redirect_chain[-1][0]
    assert stranger.post(form, {"new_password1": NEW_PASSWORD,
                                "new_password2": NEW_PASSWORD}).status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)

    # The e-mail change: the confirmation to the new address...
    signed_in = Client()
    signed_in.force_login(alice)
    assert signed_in.post("/profile/email/", {"new_email": "alice@new.example",
                                              "password": NEW_PASSWORD}).status_code == 302
    change = mail.outbox[1]
    path = check(change, "change", language, "alice@new.example")
    other_device = Client()
    assert other_device.get(path).status_code == 200
    assert other_device.post(path).status_code in (200, 302)
    alice.refresh_from_db()
    assert alice.email == "alice@new.example"
    # ...then the notice to the old one, whose link leads to the reset page
    notice = mail.outbox[2]
    path = check(notice, "notice", language, "alice@acme.example")
    assert path == "/accounts/password_reset/"
    assert Client().get(path).status_code == 200


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_sign_up_confirmation_has_both_parts_and_a_working_link(client, demo_catalog,
                                                                    clock, language):
    client.cookies["django_language"] = language
    assert client.post("/accounts/signup/", {
        "company": "Globex SARL", "country": "FR", "email": "zoe@globex.example",
        "password1": PASSWORD, "password2": PASSWORD}).status_code == 200
    (message,) = mail.outbox
    path = check(message, "signup", language, "zoe@globex.example")
    other_device = Client()
    page = other_device.get(path)
    assert page.status_code == 200 and "form" in page.content.decode()
    response = other_device.post(path, follow=True)
    assert response.status_code == 200
    assert User.objects.get(email="zoe@globex.example").is_active
    assert page_text(response)
