"""Modify subscription (S4, S13, S17, S18): the live order summary, downgrades, Checkout / Add to
cart, and the support request."""

from __future__ import annotations

import re

import pytest

from prorata.accounts.models import AuditEntry
from prorata.subscriptions.models import CartItem
from prorata.subscriptions.services import cart_add
from prorata.support.models import SupportRequest, SupportRequestKind, SupportRequestStatus
from prorata_core.periods import utc
from tests.app.web.billing_support import acme_world
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.usefixtures("demo_catalog")

PRO = {"plan": "pro", "cycle": "annual", "quantity": "2"}


@pytest.fixture
def acme(clock):
    world = acme_world(clock)
    clock.set(utc(2026, 4, 1))
    return world


def modify_url(world) -> str:
    return world.url + "subscriptions/webinar/modify/"


def test_the_order_summary_is_design_example_1(acme):
    # given Acme's Standard annual × 2, on 2026-04-01
    # when Alice chooses Pro (the htmx request of the live summary)
    response = acme.client().get(modify_url(acme), PRO, HTTP_HX_REQUEST="true")
    text = page_text(response)
    # then only the summary comes back, with the engine's lines to the cent
    assert text.startswith("Order summary")
    assert ("Credit for unused time Standard, 2 × $1,188.00, annual April 1, 2026 – "
            "January 1, 2027 -$1,790.14") in text
    assert "New billing period Pro, 2 × $2,388.00, annual April 1, 2026 – April 1, 2027 $4,776.00" in text
    assert "Tax $0.00 Total due today $2,985.86" in text
    assert ("New billing period: April 1, 2026, 12:00 AM – April 1, 2027, 12:00 AM (UTC) "
            "Next billing date: April 1, 2027 at 12:00 AM (UTC)") in text
    assert "Checkout" in text and "Add to cart" not in text


def test_without_javascript_the_whole_page_shows_the_summary(acme):
    text = page_text(acme.client().get(modify_url(acme), PRO))
    assert "Modify subscription" in text and "Total due today $2,985.86" in text
    assert "Update order summary" in text  # the <noscript> button of the plain GET


def test_the_form_starts_from_the_current_subscription(acme):
    text = page_text(acme.client().get(modify_url(acme)))
    assert "That is already your subscription" in text
    html = acme.client().get(modify_url(acme)).content.decode()
    assert 'value="standard" checked' in html and 'value="2"' in html


def test_checkout_puts_the_change_in_the_cart_and_opens_the_checkout(acme):
    response = acme.client().post(modify_url(acme), PRO | {"action": "checkout"})
    assert response.status_code == 302 and response["Location"] == acme.url + "checkout/"
    assert list(CartItem.objects.filter(account=acme.account).values_list(
        "plan__code", "quantity")) == [("pro", 2)]


def test_add_to_cart_replaces_checkout_when_the_cart_has_other_items(acme, settings):
    # given another product's change waiting in the cart
    from prorata.catalog.models import BillingCycle, Plan, Product
    product = Product.objects.create(code="events", name="Events")
    plan = Plan.objects.create(product=product, code="events_basic", name="Events Basic",
                               rank=1, participant_limit=100)
    from prorata.catalog.models import Price
    Price.objects.create(plan=plan, cycle=BillingCycle.objects.get(code="annual"),
                         currency="USD", unit_amount=10_000)
    cart_add(account=acme.account, user=acme.user, product_code="events",
             plan_code="events_basic", cycle_code="annual", quantity=1)
    # when Alice modifies her Webinar subscription
    text = page_text(acme.client().get(modify_url(acme), PRO, HTTP_HX_REQUEST="true"))
    # then the main button reads Add to cart (S18), and it leads to the cart
    assert "Add to cart" in text and "Checkout" not in text
    response = acme.client().post(modify_url(acme), PRO | {"action": "add_to_cart"})
    assert response["Location"] == acme.url + "cart/"
    cart = page_text(acme.client().get(acme.url + "cart/"))
    assert "Webinar Pro" in cart and "Events Events Basic" in cart
    assert "Total due today $3,085.86" in cart


def test_a_plan_downgrade_needs_support_and_one_click_sends_the_request(acme):
    # when Alice chooses Lite (a downgrade, S13)
    downgrade = {"plan": "lite", "cycle": "annual", "quantity": "2"}
    text = page_text(acme.client().get(modify_url(acme), downgrade, HTTP_HX_REQUEST="true"))
    # then the summary says support does it, with a prefilled request and no Checkout
    assert "A plan downgrade is done by our support team." in text
    assert "Checkout" not in text
    message = ("Please downgrade my Webinar subscription from Standard to Lite (2 licenses, "
               "annual billing).")
    assert message in text
    # when she sends it (one click: the form's hidden fields, the target plan among them)
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">',
                             acme.client().get(modify_url(acme), downgrade,
                                               HTTP_HX_REQUEST="true").content.decode()))
    assert hidden["target_plan"] == "lite" and hidden["kind"] == "downgrade_request"
    client = acme.client()
    response = client.post(acme.url + "support/", hidden | {"message": message})
    # then a support request is open, audited, and she is told
    assert response.status_code == 302
    request = SupportRequest.objects.get()
    assert (request.account, request.user, request.kind, request.message, request.status) == (
        acme.account, acme.user, SupportRequestKind.DOWNGRADE_REQUEST, message,
        SupportRequestStatus.OPEN)
    assert (request.product_code, request.target_plan, request.target_cycle,
            request.target_quantity) == ("webinar", "lite", "annual", 2)
    assert request.created_at == utc(2026, 4, 1)
    assert AuditEntry.objects.filter(action="support_request.create").count() == 1
    assert "Your request was sent to our support team." in page_text(client.get(acme.url))


def test_an_empty_support_message_is_refused_and_nothing_is_saved(acme):
    text = page_text(acme.client().post(acme.url + "support/",
                                        {"kind": "billing_question", "message": "  "}))
    assert "Write a message of 1 to 5000 characters." in text
    assert not SupportRequest.objects.exists()


def test_an_impossible_license_count_is_a_clear_message(acme):
    text = page_text(acme.client().get(modify_url(acme), PRO | {"quantity": "0"},
                                       HTTP_HX_REQUEST="true"))
    assert "This plan takes between 1 and 10000 licenses" in text


def test_the_french_summary_uses_the_seed_words(acme):
    acme.user.language = "fr"
    acme.user.save()
    client = acme.client()
    client.cookies["django_language"] = "fr"
    text = page_text(client.get(modify_url(acme), PRO, HTTP_ACCEPT_LANGUAGE="fr"))
    assert "Modifier l'abonnement" in text
    assert "Récapitulatif des commandes" in text and "Passer à la commande" in text


def test_an_item_leaves_the_cart(acme):
    client = acme.client()
    client.post(modify_url(acme), PRO | {"action": "add_to_cart"})
    assert "Total due today $2,985.86" in page_text(client.get(acme.url + "cart/"))
    client.post(acme.url + "cart/", {"product": "webinar"})
    assert "Your cart is empty." in page_text(client.get(acme.url + "cart/"))
    assert not CartItem.objects.exists()
