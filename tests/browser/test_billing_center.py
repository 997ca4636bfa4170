"""In Chromium: the seed's steps 1–6 (seeds/change-subscription.fr.txt) in the billing center.

(a) Acme in English on 2026-04-01: My account → Options → Modify subscription → Pro → the order
    summary shows DESIGN example 1 → Checkout → a new card → Place order → confirmation; then the
    receipt e-mail with its PDF.
(b) Bistro in French on 2026-03-11: 3 licenses instead of 5 → Passer à la commande → Passer la
    commande → the confirmation shows the credit of DESIGN example 2.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail

from prorata.catalog.services import catalog_load_demo
from prorata.common.formatting import format_money
from prorata.notifications.outbox import outbox_deliver
from prorata.subscriptions.models import Subscription
from prorata_core.money import Money
from prorata_core.periods import utc
from tests.app.web.billing_support import acme_world, bistro_world

pytestmark = pytest.mark.browser


def sign_in(page, email: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill("pw")
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_acme_upgrades_to_pro_and_pays_by_card(page, clock, screenshots):
    from playwright.sync_api import expect

    # given Acme's Standard annual × 2 from 2026-01-01, on 2026-04-01
    catalog_load_demo()
    acme = acme_world(clock)
    clock.set(utc(2026, 4, 1))

    # 1. Alice signs in to the billing center: My account
    sign_in(page, "alice@acme.example")
    expect(page).to_have_url(re.compile(rf"/billing/{acme.account.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("My account")
    screenshots.take(page, "a1-my-account")

    # 2. Options → Modify subscription
    page.get_by_text("Options", exact=False).first.click()
    screenshots.take(page, "a2-options")
    page.get_by_role("link", name="Modify subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Modify subscription")

    # (a plan downgrade is for support: the summary says so and offers the prefilled request)
    summary = page.locator("#order-summary")
    page.locator("label.plan-option", has_text="Lite").click()
    expect(summary).to_contain_text("A plan downgrade is done by our support team.")
    expect(summary.get_by_role("button", name="Send the support request")).to_be_visible()
    screenshots.take(page, "a2b-downgrade")

    # 3. she chooses Pro; 4. the order summary shows DESIGN example 1
    page.locator("label.plan-option", has_text="Pro").click()
    expect(summary).to_contain_text("$2,985.86")
    expect(summary).to_contain_text("-$1,790.14")
    expect(summary).to_contain_text("$4,776.00")
    expect(summary).to_contain_text("Next billing date: April 1, 2027")
    screenshots.take(page, "a3-order-summary")
    summary.get_by_role("button", name="Checkout").click()

    # 5. the checkout page: billing period from today, licenses, rate, total due
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout")
    expect(page.locator("main")).to_contain_text(
        "April 1, 2026, 12:00\u202fAM – April 1, 2027, 12:00\u202fAM (UTC) (from today)")
    expect(page.locator("main")).to_contain_text("$2,388.00 per license, annual")
    page.get_by_label("A new card").check()
    # the card is typed into the sandbox gateway's own form, a frame from its own prefix
    card = page.frame_locator("iframe[title='Card details']")
    card.get_by_label("Card number").fill("4242 4242 4242 4242")
    card.get_by_label("Expiry (MM/YY)").fill("12/30")
    card.get_by_label("Security code").fill("123")
    screenshots.take(page, "a4-checkout")

    # 6. Place order → the confirmation
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your order is complete")
    expect(page.locator("main")).to_contain_text(re.compile(r"Amount paid\s*\$2,985\.86"))
    expect(page.locator("main")).to_contain_text(re.compile(r"Next billing date\s*April 1, 2027"))
    screenshots.take(page, "a5-confirmation")
    subscription = Subscription.objects.get(account=acme.account)
    assert (subscription.plan.code, subscription.period_end) == ("pro", utc(2027, 4, 1))

    # and My account ends with the activity; View all transactions lists every movement
    page.get_by_role("link", name="Back to My account").click()
    expect(page.locator(".product-card")).to_contain_text("Pro")
    page.get_by_role("link", name="View all transactions").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("All transactions")
    expect(page.locator("table")).to_contain_text(re.compile(r"Credit note CN-2026-\d+\s*\$1,790\.14"))
    screenshots.take(page, "a6-transactions")
    page.get_by_role("link", name="Payment methods").click()
    expect(page.locator(".saved-cards")).to_contain_text("Visa ending in 4242")
    screenshots.take(page, "a7-payment-methods")

    # and the receipt e-mail, with its PDF
    mail.outbox.clear()
    outbox_deliver()
    (receipt,) = [m for m in mail.outbox if "$2,985.86" in m.body]
    assert receipt.to == ["alice@acme.example"]
    assert any(name.endswith(".pdf") and kind == "application/pdf" and content[:4] == b"%PDF"
               for name, content, kind in receipt.attachments)


def test_bistro_reduces_licenses_in_french_and_gets_credit(page, clock, screenshots):
    from playwright.sync_api import expect

    # given Bistro's Lite monthly × 5 from 2026-03-01, on 2026-03-11, Jeanne reads French
    catalog_load_demo()
    bistro = bistro_world(clock)
    bistro.user.language = "fr"
    bistro.user.save()
    clock.set(utc(2026, 3, 11))

    sign_in(page, "jeanne@bistro.example")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mon compte")
    screenshots.take(page, "b1-mon-compte")
    page.get_by_text("Options", exact=False).first.click()
    page.get_by_role("link", name="Modifier l'abonnement").click()

    # she sets 3 licenses: the summary shows the credit
    page.get_by_label("Nombre de licences").fill("3")
    summary = page.locator("#order-summary")
    expect(summary).to_contain_text(format_money(Money(2555, "EUR"), "fr"))
    expect(summary).to_contain_text("Récapitulatif des commandes")
    screenshots.take(page, "b2-recapitulatif")
    summary.get_by_role("button", name="Passer à la commande").click()

    # the checkout page asks for no card (nothing is due), Modify order is there
    expect(page.get_by_role("link", name="Modifier la commande")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("Informations de paiement")
    screenshots.take(page, "b3-commande")
    page.get_by_role("button", name="Passer la commande").click()

    # the confirmation shows the credit of 25,55 €
    expect(page.get_by_role("heading", level=1)).to_have_text("Merci : votre commande est passée")
    credit = format_money(Money(2555, "EUR"), "fr")
    assert credit == "25,55\xa0€"
    expect(page.locator(".credit-created")).to_contain_text(credit)
    screenshots.take(page, "b4-confirmation")
    assert Subscription.objects.get(account=bistro.account).quantity == 3
