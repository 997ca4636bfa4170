"""The active language: the signed-in user's choice, else the browser's; the top bar's switch."""

from __future__ import annotations

import re

from django.conf import settings
from django.test import Client

from prorata.accounts.models import User
from tests.app.web.conftest import PASSWORD, page_text, sign_in

FRENCH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9,en;q=0.5"}
ENGLISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9"}


def heading(response) -> str:
    html = response.content.decode()
    return html.split("<h1>", 1)[1].split("</h1>", 1)[0]


def test_an_anonymous_page_follows_the_browser(client, clock):
    assert heading(client.get("/accounts/login/", **FRENCH_BROWSER)) == "Se connecter"
    assert heading(client.get("/accounts/login/", **ENGLISH_BROWSER)) == "Sign in"
    assert client.get("/accounts/login/", **FRENCH_BROWSER)["Content-Language"] == "fr"


def test_the_users_own_language_beats_the_browsers(signed_in, alice):
    User.objects.filter(pk=alice.pk).update(language="fr")
    response = signed_in.get("/profile/", **ENGLISH_BROWSER)
    assert heading(response) == "Votre profil"
    assert response["Content-Language"] == "fr"


def test_without_a_choice_the_browser_decides(signed_in):
    assert heading(signed_in.get("/profile/", **FRENCH_BROWSER)) == "Votre profil"
    assert heading(signed_in.get("/profile/", **ENGLISH_BROWSER)) == "Your profile"


def test_choosing_a_language_on_the_profile(signed_in, alice):
    # when Alice chooses French on her profile (from an English browser)
    response = signed_in.post("/profile/language/", {"language": "fr"}, **ENGLISH_BROWSER)
    assert response["Location"] == "/profile/"
    alice.refresh_from_db()
    assert alice.language == "fr"
    # then her pages are in French, starting with the confirmation
    page = signed_in.get("/profile/", **ENGLISH_BROWSER)
    assert "Votre langue est enregistrée." in page_text(page)
    assert heading(page) == "Votre profil"
    # and back to the browser's default
    signed_in.post("/profile/language/", {"language": ""}, **ENGLISH_BROWSER)
    alice.refresh_from_db()
    assert alice.language == ""
    assert heading(signed_in.get("/profile/", **ENGLISH_BROWSER)) == "Your profile"


def test_the_profile_offers_each_language_in_itself(signed_in):
    html = signed_in.get("/profile/").content.decode()
    assert '<option value="" selected>Browser default</option>' in html
    assert '<option value="en">English</option>' in html
    assert '<option value="fr">Français</option>' in html


def test_an_unknown_language_changes_nothing(signed_in, alice):
    response = signed_in.post("/profile/language/", {"language": "de"})
    assert response.status_code == 200
    assert "Choose one of the languages offered." in page_text(response)
    alice.refresh_from_db()
    assert alice.language == ""


def test_the_top_bar_switch_works_when_signed_out(client, clock):
    response = client.post("/i18n/setlang/", {"language": "fr", "next": "/accounts/login/"})
    assert response["Location"] == "/accounts/login/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    assert heading(client.get("/accounts/login/", **ENGLISH_BROWSER)) == "Se connecter"


def test_the_top_bar_switch_saves_the_choice_when_signed_in(signed_in, alice):
    signed_in.post("/i18n/setlang/", {"language": "fr", "next": "/profile/"})
    alice.refresh_from_db()
    assert alice.language == "fr"
    # another browser, signed in as Alice, gets French too
    other = Client()
    sign_in(other, "alice@acme.example", PASSWORD)
    assert heading(other.get("/profile/", **ENGLISH_BROWSER)) == "Votre profil"


def test_the_switch_ignores_unknown_languages(signed_in, alice):
    signed_in.post("/i18n/setlang/", {"language": "xx", "next": "/profile/"})
    alice.refresh_from_db()
    assert alice.language == ""


def test_the_top_bar_marks_the_current_language(client, clock):
    html = client.get("/accounts/login/", **FRENCH_BROWSER).content.decode()
    buttons = dict(re.findall(r'<button type="submit" name="language" value="(\w+)"[^>]*aria-pressed="(\w+)"', html))
    assert buttons == {"en": "false", "fr": "true"}


def test_the_switch_needs_the_csrf_token(clock):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post("/i18n/setlang/", {"language": "fr"}).status_code == 403
