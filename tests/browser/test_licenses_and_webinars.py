"""In Chromium (issue 13): Acme's billing contact buys 2 more licenses, invites two members who
join with a license each, one of them schedules a webinar and a visitor registers; a reduction
of licenses asks which member to free; the webinar is untouched. In English, then in French."""

from __future__ import annotations

import re

import pytest

from prorata.accounts.models import User
from prorata.catalog.services import catalog_load_demo
from prorata.licenses.models import LicenseAssignment
from prorata.notifications.models import OutboxMessage
from prorata.webinars.models import Registration, Webinar
from prorata.webinars.selectors import webinar_limit
from tests.app.web.billing_support import acme_world

pytestmark = pytest.mark.browser

PASSWORD = "staple purple lantern"
WORDS = {
    "en": {"unassigned": "4 licenses are not assigned yet.", "sent": "Invitation sent to",
           "scheduled": "Webinar scheduled.", "registered": "You are registered.",
           "lose": "Members who lose their license when the order is placed: ",
           "choose": "choose 1 member(s) who lose their license",
           "freed": "Licenses freed by this order:", "used": "1 of 1 licenses assigned"},
    "fr": {"unassigned": "4 licences ne sont pas encore attribuées.",
           "sent": "Invitation envoyée à", "scheduled": "Webinaire programmé.",
           "registered": "Vous êtes inscrit.",
           "lose": "Membres qui perdent leur licence quand la commande est passée : ",
           "choose": "choisissez 1 membre(s) qui perdent leur licence",
           "freed": "Licences libérées par cette commande :",
           "used": "1 licence attribuée sur 1"},
}


def tab(browser, live_server, language):
    context = browser.new_context(base_url=live_server.url,
                                  locale="fr-FR" if language == "fr" else "en-US",
                                  viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    return context.new_page()


def sign_in(page, email: str, password: str = "pw") -> None:  # noqa: S107 -- the tests' users
    page.goto("/accounts/login/")
    page.locator("input[name=username]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("main form button[type=submit]").click()


@pytest.mark.parametrize("language", ["en", "fr"])
def test_licenses_members_webinars_and_a_reduction(browser, live_server, clock, screenshots,
                                                    language):
    from playwright.sync_api import expect

    words = WORDS[language]
    catalog_load_demo()
    acme = acme_world(clock)  # Standard annual × 2, paid by card, on 2026-01-01
    acme.user.language = language
    acme.user.save()
    account = acme.account.pk
    alice = tab(browser, live_server, language)
    sign_in(alice, "alice@acme.example")

    # Alice buys 2 more licenses: Modify subscription prefilled with 4, Checkout, Place order
    alice.goto(f"/billing/{account}/subscriptions/webinar/modify/?quantity=4")
    alice.locator("button[name=action][value=checkout]").click()
    alice.locator("input[name=payment_method]").first.check()
    alice.locator("form button.button-wide").click()
    expect(alice.locator("main")).to_contain_text(words["unassigned"])
    screenshots.take(alice, f"{language}-1-confirmation")

    # she invites two members, each with a license at once
    alice.locator(".notice-licenses a").click()  # Assign licenses → the Licenses page
    alice.goto(f"/billing/{account}/members/")
    for email in ("dave@acme.example", "erin@acme.example"):
        alice.locator("input[name=email]").fill(email)
        alice.locator("input[name=with_license]").check()
        alice.locator("form.form button[type=submit]").click()
        expect(alice.locator(".messages")).to_contain_text(f"{words['sent']} {email}")
    screenshots.take(alice, f"{language}-2-members")

    # both join from their e-mail's link, setting a password
    for email in ("dave@acme.example", "erin@acme.example"):
        link = OutboxMessage.objects.get(template="member_invitation", to=email).context["url"]
        joiner = tab(browser, live_server, language)
        joiner.goto(link)
        joiner.locator("input[name=password]").fill(PASSWORD)
        joiner.locator("main form button[type=submit]").click()
        expect(joiner).to_have_url(re.compile(rf"/billing/{account}/webinars/$"))
        if email.startswith("dave"):
            dave = joiner
        else:
            joiner.context.close()
    assert LicenseAssignment.objects.filter(subscription__account=acme.account).count() == 2

    # Dave schedules a webinar in Paris time; a visitor registers on its public page
    dave.goto(f"/billing/{account}/webinars/new/")
    dave.locator("input[name=title]").fill("Launch")
    dave.locator("input[name=start]").fill("2026-02-10T15:00")
    dave.locator("select[name=time_zone]").select_option("Europe/Paris")
    dave.locator("form.form button[type=submit]").click()
    expect(dave.locator(".messages")).to_contain_text(words["scheduled"])
    expect(dave.locator("main")).to_contain_text("15:00 (Europe/Paris)" if language == "fr"
                                                 else "3:00 PM (Europe/Paris)")
    screenshots.take(dave, f"{language}-3-webinars")
    webinar = Webinar.objects.get(title="Launch")
    before = (webinar.starts_at, webinar.duration_minutes, webinar_limit(webinar))
    visitor = tab(browser, live_server, language)
    visitor.goto(f"/webinars/{webinar.public_id}/")
    visitor.locator("input[name=name]").fill("Vic Visitor")
    visitor.locator("input[name=email]").fill("vic@example.com")
    visitor.locator("main form button[type=submit]").click()
    expect(visitor.locator("main")).to_contain_text(words["registered"])
    screenshots.take(visitor, f"{language}-4-registered")

    # Alice reduces to 1 license: asked which member to free, she frees Erin
    alice.goto(f"/billing/{account}/subscriptions/webinar/modify/")
    alice.locator("input[name=quantity]").fill("1")
    alice.locator("button[name=action][value=checkout]").click()
    expect(alice.locator("main")).to_contain_text(words["choose"])
    erin = User.objects.get(email="erin@acme.example").memberships.get().pk
    alice.locator(f"input[name=free_member][value='{erin}']").check()
    alice.locator("button[name=action][value=checkout]").click()
    expect(alice.locator("main")).to_contain_text(words["lose"] + "erin@acme.example")
    screenshots.take(alice, f"{language}-5-checkout-frees")
    alice.locator("form button.button-wide").click()
    expect(alice.locator("main")).to_contain_text(f"{words['freed']} erin@acme.example")
    alice.goto(f"/billing/{account}/licenses/")
    expect(alice.locator("main")).to_contain_text(words["used"])

    # the webinar is untouched
    webinar.refresh_from_db()
    assert (webinar.starts_at, webinar.duration_minutes, webinar_limit(webinar)) == before
    assert webinar.cancelled_at is None and Registration.objects.filter(webinar=webinar).count() == 1
    for page in (alice, dave, visitor):
        page.context.close()
