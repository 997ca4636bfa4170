"""In Chromium: 3-D Secure at renewal (issue 17). Bistro's card on file requires authentication
(the sandbox's 4000 0027 6000 3184), so the billing run's off-session charge of the renewal on
2026-02-01 requires action and the billing contact is e-mailed.

(a) In English: the e-mail's link → the Pay now page → Authenticate and pay → the bank's challenge
    → Approve → back in the billing center, the invoice paid, the renewal settled, the receipt.
(b) In French: the challenge failed (the bank's message, Pay now offered again, the schedule as it
    was), then an authentication begun and abandoned, given up on by the reconciliation job: the
    renewal is back between its dunning attempts, its next retry unchanged.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail

from prorata.billing.models import DocumentStatus, Payment, PaymentStatus
from prorata.catalog.services import catalog_load_demo
from prorata.jobs.billing_run import bill_run
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.models import OutboxMessage
from prorata.notifications.outbox import outbox_deliver
from prorata.payments.models import PaymentMethod
from prorata.payments.services import payment_method_add
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata.subscriptions.services import payments_reconcile_due
from prorata_core.periods import utc
from tests.app.subscriptions.support import assert_books_balance, buy, card, customer
from tests.browser.test_customer_pages import problems, signed_in_state

pytestmark = pytest.mark.browser

SCA_CARD = "4000 0027 6000 3184"


@pytest.fixture
def bistro(clock, live_server, settings):
    """Bistro (Lite monthly × 5, €330.00) whose renewal on 2026-02-01 required authentication;
    e-mail links point at the live server."""
    settings.PRORATA_BASE_URL = live_server.url
    catalog_load_demo()
    clock.set(utc(2026, 1, 1))
    account, jeanne = customer("Bistro Numérique", "FR", "jeanne@bistro.example",
                               currency="EUR")
    buy(account, jeanne, "lite", "monthly", 5, card_token=card())
    PaymentMethod.objects.filter(account=account).update(removed_at=utc(2026, 1, 2),
                                                         is_default=False)
    payment_method_add(account=account, token=card(SCA_CARD), actor=jeanne)
    clock.set(utc(2026, 2, 1))
    assert bill_run().requires_action == 1
    assert Renewal.objects.get().status == RenewalStatus.REQUIRES_ACTION
    clock.set(utc(2026, 2, 1, 9))
    mail.outbox.clear()
    outbox_deliver()
    return account, jeanne


def open_as(browser, live_server, email: str, language: str):
    # bypass_csp: axe goes in as an inline script (test_customer_pages.check_all says why).
    context = browser.new_context(base_url=live_server.url, locale=language,
                                  viewport={"width": 1280, "height": 860},
                                  storage_state=signed_in_state(browser, live_server, email),
                                  bypass_csp=True)
    context.add_cookies([{"name": "django_language", "value": language,
                          "url": live_server.url}])
    context.set_default_timeout(15_000)
    return context


def link_of(message, live_server) -> str:
    """The e-mail's link into the billing center (built from PRORATA_BASE_URL)."""
    (link,) = set(re.findall(re.escape(live_server.url) + r"/billing/\S+/pay/", message.body))
    return link


def test_the_e_mail_leads_to_authenticate_and_pay_and_the_renewal_is_paid(
        browser, live_server, clock, bistro, screenshots):
    from playwright.sync_api import expect

    account, _ = bistro
    renewal = Renewal.objects.get()
    invoice = renewal.invoice
    (message,) = [m for m in mail.outbox if "confirm your payment" in m.subject]
    assert message.to == ["jeanne@bistro.example"]
    assert "€330.00" in message.subject and "Webinar Lite, 5 licenses, monthly" in message.body
    link = link_of(message, live_server)
    assert link == f"{live_server.url}/billing/{account.pk}/invoices/{invoice.pk}/pay/"
    html = message.alternatives[0][0]
    assert f'href="{link}"' in html and "Confirm my payment" in html

    context = open_as(browser, live_server, "jeanne@bistro.example", "en-US")
    page = context.new_page()
    try:
        # the link → Pay now, which says the bank asks for a confirmation
        page.goto(link)
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Pay invoice {invoice.number}")
        expect(page.locator("main")).to_contain_text("Amount due: €330.00")
        expect(page.locator("main")).to_contain_text("Your bank asks you to confirm this payment")
        assert problems(page, axe=True) == {}  # no overflow, no serious axe violation
        screenshots.take(page, "r1-pay-now")
        page.get_by_role("button", name="Authenticate and pay").click()

        # the bank's challenge page (the sandbox gateway's), then back into the billing center
        expect(page).to_have_url(re.compile(r"/sandbox-gateway/v1/challenge/"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your payment")
        expect(page.locator("main")).to_contain_text("€330.00")
        screenshots.take(page, "r2-challenge")
        page.get_by_role("button", name="Approve").click()
        expect(page).to_have_url(re.compile(rf"/billing/{account.pk}/$"))
        expect(page.locator("body")).to_contain_text(f"Thank you: invoice {invoice.number} is paid.")
        expect(page.locator(".product-card")).to_contain_text("Active")
        screenshots.take(page, "r3-paid")
    finally:
        context.close()

    invoice.refresh_from_db()
    renewal.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == (DocumentStatus.PAID, 0)
    assert renewal.status == RenewalStatus.PAID
    assert Subscription.objects.get(account=account).status == SubscriptionStatus.ACTIVE
    assert Payment.objects.filter(invoice=invoice, status=PaymentStatus.SUCCEEDED).count() == 1
    mail.outbox.clear()
    outbox_deliver()
    (receipt,) = mail.outbox
    assert invoice.number in receipt.subject and "€330.00" in receipt.body
    # the next retry's day passes without a charge
    clock.set(utc(2026, 2, 2))
    stats = bill_run()
    assert (stats.requires_action, stats.charged, stats.declined) == (0, 0, 0)
    assert_books_balance()


def test_a_failed_then_an_abandoned_authentication_in_french_keep_the_schedule(
        browser, live_server, clock, bistro, screenshots):
    from playwright.sync_api import expect

    account, _ = bistro
    renewal = Renewal.objects.get()
    invoice = renewal.invoice
    (message,) = [m for m in mail.outbox if "confirm your payment" in m.subject]
    pay = link_of(message, live_server)

    context = open_as(browser, live_server, "jeanne@bistro.example", "fr-FR")
    page = context.new_page()
    try:
        # the challenge failed: the bank's message, in French, and the button again
        page.goto(pay)
        page.get_by_role("button", name="Authentifier et payer").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Confirmez votre paiement")
        page.get_by_role("button", name="Faire échouer l'authentification").click()
        expect(page).to_have_url(re.compile(rf"/invoices/{invoice.pk}/pay/$"))
        expect(page.locator("body")).to_contain_text(
            "Votre banque n'a pas pu authentifier ce paiement : rien n'a été débité.")
        expect(page.get_by_role("button", name="Authentifier et payer")).to_be_visible()
        screenshots.take(page, "r4-failed-fr")
        renewal.refresh_from_db()
        assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.REQUIRES_ACTION,
                                                             utc(2026, 2, 2))

        # begun and abandoned: Pay now leads back to the bank's page meanwhile ...
        page.get_by_role("button", name="Authentifier et payer").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Confirmez votre paiement")
        page.goto(pay)
        expect(page.get_by_role("link", name="Poursuivre l'authentification")).to_be_visible()
        expect(page.get_by_role("button", name="Authentifier et payer")).to_have_count(0)
        assert problems(page, axe=True) == {}
        screenshots.take(page, "r5-authenticating-fr")
        # ... until the reconciliation job gives up on it, half an hour later
        clock.set(utc(2026, 2, 1, 9, 31))
        assert payments_reconcile_due()["renewals_failed"] == 1
        page.reload()
        expect(page.get_by_role("button", name="Authentifier et payer")).to_be_visible()
    finally:
        context.close()

    renewal.refresh_from_db()
    assert (renewal.status, renewal.next_attempt_at) == (RenewalStatus.REQUIRES_ACTION,
                                                         utc(2026, 2, 2))
    assert Subscription.objects.get(account=account).status == SubscriptionStatus.PAST_DUE
    assert not Payment.objects.filter(invoice=invoice, status=PaymentStatus.SUCCEEDED).exists()
    # the schedule goes on: the retry on its day asks for the authentication again
    clock.set(utc(2026, 2, 2))
    assert bill_run().requires_action == 1
    renewal.refresh_from_db()
    assert renewal.next_attempt_at == utc(2026, 2, 4)
    assert OutboxMessage.objects.filter(template="payment_requires_action").count() == 2
    assert_books_balance()
