"""In Chromium: 3-D Secure at the checkout (issue 17). Acme (Standard annual × 2) upgrades to Pro on
2026-04-01 with a new card that requires authentication (the sandbox's 4000 0027 6000 3184),
typed into the gateway's frame: Place order goes to the bank's challenge; approved, the order is
complete; failed, the checkout says so and nothing was applied."""

from __future__ import annotations

import re

import pytest

from prorata.catalog.services import catalog_load_demo
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Order, OrderStatus, Subscription
from prorata_core.periods import utc
from tests.app.subscriptions.support import assert_books_balance
from tests.app.web.billing_support import acme_world
from tests.browser.test_billing_center import sign_in

pytestmark = pytest.mark.browser

SCA_CARD = "4000 0027 6000 3184"


def place_pro_order_with_the_sca_card(page, account_id: int) -> None:
    from playwright.sync_api import expect

    page.goto(f"/billing/{account_id}/subscriptions/webinar/modify/")
    page.locator("label.plan-option", has_text="Pro").click()
    summary = page.locator("#order-summary")
    expect(summary).to_contain_text("$2,985.86")
    summary.get_by_role("button", name="Checkout").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout")
    page.get_by_label("A new card").check()
    card = page.frame_locator("iframe[title='Card details']")
    card.get_by_label("Card number").fill(SCA_CARD)
    card.get_by_label("Expiry (MM/YY)").fill("12/30")
    card.get_by_label("Security code").fill("123")
    page.get_by_role("button", name="Place order").click()
    expect(page).to_have_url(re.compile(r"/sandbox-gateway/v1/challenge/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your payment")
    expect(page.locator("main")).to_contain_text("$2,985.86")


@pytest.fixture
def acme(clock):
    catalog_load_demo()
    world = acme_world(clock)
    clock.set(utc(2026, 4, 1))
    yield world
    assert_books_balance()


def test_the_checkout_shows_the_challenge_and_completes_after_it(page, acme, screenshots):
    from playwright.sync_api import expect

    sign_in(page, "alice@acme.example")
    place_pro_order_with_the_sca_card(page, acme.account.pk)
    order = Order.objects.filter(account=acme.account).latest("id")
    assert order.status == OrderStatus.PLACED  # waiting while the customer is on the bank's page
    assert Subscription.objects.get(account=acme.account).plan.code == "standard"
    screenshots.take(page, "c1-challenge")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your order is complete")
    expect(page.locator("main")).to_contain_text(re.compile(r"Amount paid\s*\$2,985\.86"))
    screenshots.take(page, "c2-complete")
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert Subscription.objects.get(account=acme.account).plan.code == "pro"
    page.goto(f"/billing/{acme.account.pk}/payment-methods/")
    expect(page.locator(".saved-cards")).to_contain_text("Visa ending in 3184")


def test_a_failed_challenge_returns_to_the_checkout_with_nothing_applied(page, acme, screenshots):
    from playwright.sync_api import expect

    sign_in(page, "alice@acme.example")
    place_pro_order_with_the_sca_card(page, acme.account.pk)
    page.get_by_role("button", name="Fail authentication").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Checkout")
    expect(page.locator("body")).to_contain_text("nothing was charged")
    screenshots.take(page, "c3-failed")
    order = Order.objects.filter(account=acme.account).latest("id")
    assert order.status == OrderStatus.FAILED
    assert Subscription.objects.get(account=acme.account).plan.code == "standard"
    assert not PaymentMethod.objects.filter(account=acme.account, last4="3184").exists()
