"""In Chromium: the Stripe gateway's card-form adapter (/payments/stripe/v1/card.js) on the Payment
methods page, with the Stripe gateway selected and the local fake Stripe behind Prorata.

Stripe.js itself cannot run here (no network, and Stripe forbids copying it): the browser's request
for ``https://js.stripe.com/v3/`` is answered by Playwright with a **test double** of the part of
Stripe.js's API the adapter calls (``Stripe(key)``, ``elements().create("card").mount()``,
``createPaymentMethod``), which records its calls. Every other request to another host is refused
and listed. What this proves: the adapter loads Stripe.js from Stripe's host with the publishable
key and the page's locale, mounts the card element in the slot, on submit asks Stripe.js for a
PaymentMethod and sends only its id; Prorata then saves the card through the fake Stripe. What it
does not: Stripe.js's real behaviour.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from prorata.catalog.services import catalog_load_demo
from prorata.payments.models import PaymentMethod
from prorata.payments.stripe_gateway import STRIPE_JS
from prorata_core.periods import utc
from tests.app.payments.fake_stripe import FakeStripeServer
from tests.app.subscriptions.support import customer

pytestmark = pytest.mark.browser

#: The test double of Stripe.js (see the module's docstring).
STRIPE_JS_DOUBLE = """
// its calls are kept in sessionStorage: they outlive the page's navigation after the post
function record(call) {
  var calls = JSON.parse(sessionStorage.getItem("stripe-double") || "[]");
  calls.push(call);
  sessionStorage.setItem("stripe-double", JSON.stringify(calls));
}
window.Stripe = function (key, options) {
  record(["Stripe", key, options && options.locale]);
  return {
    elements: function () {
      return {create: function (type) {
        record(["create", type]);
        return {
          mount: function (node) {
            record(["mount", node.parentNode.hasAttribute("data-card-form")]);
            node.innerHTML = '<input aria-label="Card (Stripe double)" data-stripe-double>';
          },
          on: function () {}, focus: function () {}
        };
      }};
    },
    createPaymentMethod: function (request) {
      record(["createPaymentMethod", request.type]);
      return Promise.resolve({paymentMethod: {id: "pm_card_mastercard"}});
    }
  };
};
"""


@pytest.fixture
def stripe_selected(settings):
    server = FakeStripeServer()
    settings.PRORATA_PAYMENT_GATEWAY = "stripe"
    settings.PRORATA_STRIPE_SECRET_KEY = "sk_test_fake"
    settings.PRORATA_STRIPE_PUBLISHABLE_KEY = "pk_test_browser"
    settings.PRORATA_STRIPE_WEBHOOK_SECRET = server.fake.webhook_secret
    settings.PRORATA_STRIPE_API_BASE = server.fake.url
    settings.PRORATA_STRIPE_TIMEOUT = 2
    try:
        yield server.fake
    finally:
        server.stop()


def test_the_adapter_mounts_stripe_s_element_and_sends_only_a_payment_method_id(
        page, live_server, clock, stripe_selected):
    from playwright.sync_api import expect

    catalog_load_demo()
    clock.set(utc(2026, 3, 11))
    account, _alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    foreign: list[str] = []
    here = urlsplit(live_server.url).netloc

    def route(request_route):
        url = request_route.request.url
        if url == STRIPE_JS:
            request_route.fulfill(status=200, content_type="text/javascript",
                                  body=STRIPE_JS_DOUBLE)
        elif urlsplit(url).netloc != here:
            foreign.append(url)
            request_route.abort()
        else:
            request_route.continue_()

    page.route("**/*", route)
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.post_data or "")
            if request.method == "POST" else None)

    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto("/accounts/login/")
    page.get_by_label("Email", exact=True).fill("alice@acme.example")
    page.get_by_label("Password", exact=True).fill("pw")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/billing/**")
    page.goto(f"/billing/{account.pk}/payment-methods/")
    expect(page.locator("[data-stripe-double]")).to_be_visible()
    page.get_by_role("button", name="Add card").click()
    expect(page.locator(".saved-cards")).to_contain_text("4444")

    calls = json.loads(page.evaluate("sessionStorage.getItem('stripe-double')"))
    assert calls[:4] == [["Stripe", "pk_test_browser", "en"], ["create", "card"],
                         ["mount", True], ["createPaymentMethod", "card"]]
    card = PaymentMethod.objects.get(account=account)
    assert card.token.endswith("/pm_card_mastercard") and card.last4 == "4444"
    setup, = stripe_selected.posts("/v1/setup_intents")
    assert setup.params["payment_method"] == "pm_card_mastercard"
    form_post = next(body for body in posted if "card_token=" in body)
    assert "card_token=pm_card_mastercard" in form_post
    assert foreign == []  # nothing else was asked of another host
    assert errors == []
