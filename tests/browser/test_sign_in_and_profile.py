"""In Chromium: sign in, change the password, sign out, sign in again, switch to French (S1)."""

from __future__ import annotations

import re

import pytest

from prorata.accounts.models import AuditEntry, User

pytestmark = pytest.mark.browser

OLD = "correct horse battery"
NEW = "staple purple lantern"


@pytest.fixture
def jeanne(clock) -> User:
    return User.objects.create_user("jeanne@bistro.example", OLD, first_name="Jeanne")


def sign_in(page, email: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_password_change_then_french(page, jeanne, screenshots):
    from playwright.sync_api import expect

    # given Jeanne signs in
    sign_in(page, "jeanne@bistro.example", OLD)
    expect(page).to_have_url(re.compile(r"/billing/$"))  # LOGIN_REDIRECT_URL: no account yet
    page.goto("/profile/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    screenshots.take(page, "1-profile")

    # when she changes her password
    password = page.get_by_role("region", name="Password")
    password.get_by_label("Current password", exact=True).fill(OLD)
    password.get_by_label("New password", exact=True).fill(NEW)
    password.get_by_label("New password (again)", exact=True).fill(NEW)
    password.get_by_role("button", name="Change password").click()
    expect(page.locator(".messages")).to_have_text(
        "Your password is changed. Your other sessions are signed out."
    )

    # and signs out from the top bar
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".messages")).to_have_text("You are signed out.")

    # then the old password no longer works, and the new one does
    sign_in(page, "jeanne@bistro.example", OLD)
    expect(page.get_by_role("alert")).to_have_text("The email or password is incorrect.")
    screenshots.take(page, "2-sign-in-refused")
    sign_in(page, "jeanne@bistro.example", NEW)
    page.goto("/profile/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")

    # when she switches the language to French in the top bar
    page.get_by_role("button", name="Français").click()

    # then the page is in French, and her profile keeps the choice
    expect(page.get_by_role("heading", level=1)).to_have_text("Votre profil")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    screenshots.take(page, "3-profil")
    jeanne.refresh_from_db()
    assert jeanne.language == "fr"
    assert AuditEntry.objects.filter(action="auth.password_change", actor=jeanne).count() == 1

    # and the sign-in page, once signed out, is French too
    page.get_by_role("button", name="Se déconnecter").click()
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Se connecter")
    expect(page.get_by_label("E-mail", exact=True)).to_be_visible()
    expect(page.get_by_label("Mot de passe", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Se connecter", exact=True)).to_be_visible()
    screenshots.take(page, "4-se-connecter")
