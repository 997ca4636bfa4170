"""Sign-in at /accounts/login/ and sign-out from the top bar (issue 3)."""

from __future__ import annotations

from django.test import Client

from prorata.accounts.models import User
from tests.app.web.conftest import PASSWORD, page_text, sign_in


def test_the_sign_in_page_has_email_password_and_a_sign_in_button(client, clock):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">Email</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert '<button type="submit" class="button button-primary button-wide">Sign in</button>' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_in_french_the_labels_are_e_mail_and_mot_de_passe(client, clock):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    html = response.content.decode()
    assert '<html lang="fr">' in html
    assert '<label for="id_username">E-mail</label>' in html
    assert '<label for="id_password">Mot de passe</label>' in html
    assert ">Se connecter</button>" in html


def test_a_correct_sign_in_lands_on_the_billing_center(client, alice):
    # when Alice signs in (her address typed in capitals)
    response = sign_in(client, "Alice@ACME.example", PASSWORD)
    # then she lands on the billing center (LOGIN_REDIRECT_URL), signed in
    assert response.status_code == 302
    assert response["Location"] == "/billing/"
    profile = client.get("/profile/")
    assert profile.status_code == 200
    assert "alice@acme.example" in page_text(profile)


def test_a_sign_in_goes_back_to_the_page_asked_for(client, alice):
    assert client.get("/profile/")["Location"] == "/accounts/login/?next=/profile/"
    response = client.post(
        "/accounts/login/?next=/profile/",
        {"username": "alice@acme.example", "password": PASSWORD, "next": "/profile/"},
    )
    assert response["Location"] == "/profile/"


def test_a_sign_in_never_redirects_to_another_site(client, alice):
    response = client.post(
        "/accounts/login/",
        {"username": "alice@acme.example", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/billing/"


def test_a_wrong_password_says_so_and_signs_nobody_in(client, alice):
    response = sign_in(client, "alice@acme.example", "not her password")
    assert response.status_code == 200
    assert "The email or password is incorrect." in page_text(response)
    assert "_auth_user_id" not in client.session
    assert client.get("/profile/").status_code == 302


def test_an_unknown_address_gets_the_same_message(client, alice):
    response = sign_in(client, "nobody@acme.example", PASSWORD)
    assert "The email or password is incorrect." in page_text(response)


def test_a_disabled_user_cannot_sign_in(client, alice):
    User.objects.filter(pk=alice.pk).update(is_active=False)
    response = sign_in(client, "alice@acme.example", PASSWORD)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_empty_fields_say_what_is_missing(client, clock):
    response = client.post("/accounts/login/", {"username": "", "password": ""})
    assert response.status_code == 200
    assert page_text(response).count("This field is required.") == 2


def test_the_sign_in_is_recorded_by_the_project_clock(client, alice, clock):
    sign_in(client, "alice@acme.example", PASSWORD)
    alice.refresh_from_db()
    assert alice.last_login == clock.now()


def test_the_top_bar_of_every_page_signs_out_with_a_post(signed_in):
    for path in ["/", "/profile/"]:
        html = signed_in.get(path).content.decode()
        assert '<form action="/accounts/logout/" method="post">' in html, path
        assert "Sign out" in html
    response = signed_in.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/"
    home = signed_in.get("/")
    assert "You are signed out." in page_text(home)
    assert signed_in.get("/profile/").status_code == 302


def test_signing_out_needs_a_post_with_the_csrf_token(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.get("/accounts/logout/").status_code == 405
    assert browser.post("/accounts/logout/").status_code == 403
    assert browser.get("/profile/").status_code == 200  # still signed in


def test_a_signed_in_user_visiting_the_sign_in_page_goes_on(signed_in):
    assert signed_in.get("/accounts/login/")["Location"] == "/billing/"
