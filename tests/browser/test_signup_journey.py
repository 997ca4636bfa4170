"""In Chromium, English by keyboard alone and French by mouse (issue 16): the plans page → Start
free trial → the account opened and confirmed by its e-mail link → My account with the trial →
billing details → Subscribe now → the order summary → Checkout → Modify order comes back to the
cart's choice → Checkout → a new card → Place order; the invoice's buyer block carries the billing
details just entered."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from prorata.accounts.models import Account
from prorata.billing.models import Document
from prorata.catalog.services import catalog_load_demo
from prorata.subscriptions.models import Subscription
from tests.app.web.conftest import link_in

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
WORDS = {
    "en": {"trial": "Start free trial", "company": "Company name", "country": "Country",
           "country_name": "Belgium", "email": "Your e-mail address", "password": "Password",
           "again": "Password (again)", "confirm": "Confirm and start my free trial",
           "my_account": "My account", "details": "Billing details", "legal": "Legal name",
           "address": "Billing address", "vat": "VAT number", "billing_email": "Billing e-mail",
           "save": "Save billing details", "subscribe": "Subscribe now",
           "checkout": "Checkout", "modify": "Modify order", "place": "Place order",
           "new_card": "A new card"},
    "fr": {"trial": "Commencer l’essai gratuit", "company": "Nom de la société",
           "country": "Pays", "country_name": "Belgique", "email": "Votre adresse e-mail",
           "password": "Mot de passe", "again": "Mot de passe (confirmation)",
           "confirm": "Confirmer et commencer mon essai gratuit", "my_account": "Mon compte",
           "details": "Coordonnées de facturation", "legal": "Raison sociale",
           "address": "Adresse de facturation", "vat": "Numéro de TVA",
           "billing_email": "E-mail de facturation", "save": "Enregistrer les coordonnées",
           "subscribe": "S'abonner maintenant", "checkout": "Passer à la commande",
           "modify": "Modifier la commande", "place": "Passer la commande",
           "new_card": "Une nouvelle carte"},
}


def tab_to(page, predicate: str, limit: int = 60) -> None:
    """Press Tab until the focused element satisfies the JS ``predicate`` (of ``el``)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return !!({predicate}); }}"):
            return
    raise AssertionError(f"Tab never reached {predicate}")


def focused_label(label: str) -> str:
    return (f"el.labels && el.labels[0] && el.labels[0].textContent.trim() === {label!r}")


def focused_text(text: str) -> str:
    return f"el.textContent.trim() === {text!r}"


def type_into(page, label: str, text: str) -> None:
    tab_to(page, focused_label(label))
    page.keyboard.type(text)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_sign_up_trial_then_buy(browser, live_server, clock, language, screenshots):
    from playwright.sync_api import expect

    words = WORDS[language]
    catalog_load_demo()
    context = browser.new_context(base_url=live_server.url, locale=language,
                                  viewport={"width": 390, "height": 844})
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    context.set_default_timeout(20_000)
    page = context.new_page()
    keyboard = language == "en"
    try:
        page.goto("/")
        if keyboard:
            tab_to(page, focused_text(words["trial"]))
            page.keyboard.press("Enter")
        else:
            page.get_by_role("link", name=words["trial"]).first.click()
        expect(page).to_have_url(re.compile(r"/accounts/signup/\?plan=free_trial$"))
        screenshots.take(page, f"s1-signup-{language}")
        if keyboard:
            type_into(page, words["company"], "Brasserie Nord")
            tab_to(page, focused_label(words["country"]))
            page.keyboard.type(words["country_name"])
            type_into(page, words["email"], f"lea-{language}@nord.example")
            type_into(page, words["password"], PASSWORD)
            type_into(page, words["again"], PASSWORD)
            page.keyboard.press("Enter")
        else:
            page.get_by_label(words["company"]).fill("Brasserie Nord")
            page.get_by_label(words["country"]).select_option("BE")
            page.get_by_label(words["email"]).fill(f"lea-{language}@nord.example")
            page.get_by_label(words["password"], exact=True).fill(PASSWORD)
            page.get_by_label(words["again"]).fill(PASSWORD)
            page.get_by_role("button", name=words["trial"]).click()
        expect(page.locator("h1")).to_have_text(
            "Check your e-mail" if language == "en" else "Consultez vos e-mails")
        account = Account.objects.get(name="Brasserie Nord")
        assert (account.country, account.currency, account.time_zone) == (
            "BE", "EUR", "Europe/Brussels")

        # the e-mail's link, then the button on its page
        page.goto(link_in(mail.outbox[-1].body))
        if keyboard:
            tab_to(page, focused_text(words["confirm"]))
            page.keyboard.press("Enter")
        else:
            page.get_by_role("button", name=words["confirm"]).click()
        expect(page).to_have_url(re.compile(rf"/billing/{account.pk}/$"))
        expect(page.locator("h1")).to_have_text(words["my_account"])
        assert Subscription.objects.get(account=account).status == "trialing"
        screenshots.take(page, f"s2-trial-{language}")

        # billing details, reused on the next invoice
        page.goto(f"/billing/{account.pk}/details/")
        page.get_by_label(words["legal"]).fill("Brasserie Nord SRL")
        page.get_by_label(words["address"]).fill("Rue Neuve 1\n1000 Bruxelles")
        page.get_by_label(words["vat"]).fill("BE0403019261")
        page.get_by_label(words["billing_email"]).fill("compta@nord.example")
        page.get_by_role("button", name=words["save"]).click()
        expect(page.locator(".messages")).to_be_visible()

        # Subscribe now → the order summary → Checkout
        page.goto(f"/billing/{account.pk}/")
        page.get_by_role("link", name=words["subscribe"]).click()
        page.locator("label.plan-option", has_text="Standard").click()
        page.get_by_role("button", name=words["checkout"]).click()
        expect(page).to_have_url(re.compile(r"/checkout/$"))
        # Modify order returns to the cart's choice
        page.get_by_role("link", name=words["modify"]).click()
        expect(page.locator("input[name=plan][value=standard]")).to_be_checked()
        page.get_by_role("button", name=words["checkout"]).click()
        expect(page).to_have_url(re.compile(r"/checkout/$"))
        screenshots.take(page, f"s3-checkout-{language}")
        page.get_by_label(words["new_card"]).check()
        card = page.frame_locator("iframe.card-frame")  # the sandbox gateway's own form
        card.locator("input[name=number]").fill("4242 4242 4242 4242")
        card.locator("input[name=expiry]").fill("12/30")
        card.locator("input[name=cvc]").fill("123")
        page.get_by_role("button", name=words["place"]).click()
        expect(page).to_have_url(re.compile(r"/orders/\d+/$"))
        screenshots.take(page, f"s4-confirmation-{language}")
        invoice = Document.objects.get(account=account, kind="invoice")
        assert invoice.snapshot["buyer"] == {
            "name": "Brasserie Nord SRL", "address": "Rue Neuve 1\n1000 Bruxelles",
            "country": "BE", "vat_number": "BE0403019261", "email": "compta@nord.example"}
        assert Subscription.objects.get(account=account).plan.code == "standard"
    finally:
        context.close()
