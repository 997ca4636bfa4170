"""The checkout page (S19–S21), Place order and the confirmation page (S6, S12): double submits,
declined cards, VAT numbers and stale quotes."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from prorata.billing.models import Document, DocumentKind, Payment, PaymentStatus
from prorata.billing.selectors import credit_balance
from prorata.notifications.outbox import outbox_deliver
from prorata.payments.models import SandboxCharge
from prorata.payments.sandbox import sandbox_token
from prorata.subscriptions.models import Order, OrderStatus, Subscription
from prorata_core.periods import utc
from tests.app.subscriptions.support import eur
from tests.app.web.billing_support import acme_world, bistro_world
from tests.app.web.conftest import page_text

pytestmark = pytest.mark.usefixtures("demo_catalog")

PRO = {"plan": "pro", "cycle": "annual", "quantity": "2", "action": "checkout"}
def new_card(number: str = "4242 4242 4242 4242") -> dict[str, str]:
    """The checkout's fields for a new card: the token the gateway's card form put there."""
    return {"payment_method": "new", "card_token": sandbox_token(number)}


def declined() -> dict[str, str]:
    return new_card("4000 0000 0000 0002")


@pytest.fixture
def acme(clock):
    world = acme_world(clock)
    clock.set(utc(2026, 4, 1))
    return world


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, name
    return match.group(1)


def open_checkout(world, client, change=PRO):
    assert client.post(world.url + "subscriptions/webinar/modify/", change).status_code == 302
    response = client.get(world.url + "checkout/")
    html = response.content.decode()
    return response, {"idempotency_key": hidden(html, "idempotency_key"),
                      "expected": hidden(html, "expected")}


def test_the_checkout_page_shows_period_licenses_rate_tax_credit_and_total(acme):
    client = acme.client()
    response, _ = open_checkout(acme, client)
    text = page_text(response)
    assert "Billing period April 1, 2026, 12:00 AM – April 1, 2027, 12:00 AM (UTC) (from today)" in text
    assert "Licenses 2" in text and "Rate $2,388.00 per license, annual" in text
    assert "-$1,790.14" in text and "$4,776.00" in text
    assert "Tax $0.00 Total due today $2,985.86" in text
    assert "Modify order" in text and "Place order" in text
    assert "Visa ending in 4242 (expires 12/2030)" in text  # the saved default card
    assert f'href="{acme.url}subscriptions/webinar/modify/"' in response.content.decode()


def test_place_order_with_a_new_card_then_the_confirmation(acme):
    client = acme.client()
    _, form = open_checkout(acme, client)
    # when Alice places the order with a new card
    response = client.post(acme.url + "checkout/", form | new_card())
    # then she sees the confirmation: what changed, paid, next billing date, receipts
    order = Order.objects.get(status=OrderStatus.PAID, idempotency_key=form["idempotency_key"])
    assert response["Location"] == f"{acme.url}orders/{order.pk}/"
    text = page_text(client.get(response["Location"]))
    assert "Thank you: your order is complete" in text
    assert "Before: Standard, 2 licenses, annual Now: Pro, 2 licenses, annual" in text
    assert "Next billing date April 1, 2027" in text
    assert "Amount paid $2,985.86" in text
    invoice = Document.objects.get(order=order, kind=DocumentKind.INVOICE)
    note = Document.objects.get(order=order, kind=DocumentKind.CREDIT_NOTE)
    assert f"Invoice {invoice.number} (PDF)" in text and f"Credit note {note.number} (PDF)" in text
    # and the receipt e-mail goes out with its PDFs
    mail.outbox.clear()
    outbox_deliver()
    (receipt,) = [m for m in mail.outbox if "$2,985.86" in m.body]
    assert receipt.to == ["alice@acme.example"]
    assert [a[2] for a in receipt.attachments] == ["application/pdf", "application/pdf"]


def test_a_double_submit_charges_once_and_shows_the_same_confirmation(acme):
    client = acme.client()
    _, form = open_checkout(acme, client)
    first = client.post(acme.url + "checkout/", form | {"payment_method": ""})
    # when the same form is posted again (double click, reload, back button)
    client.post(acme.url + "subscriptions/webinar/modify/", PRO)  # even with the cart refilled
    second = client.post(acme.url + "checkout/", form | {"payment_method": ""})
    # then one order, one charge, and the same confirmation
    assert first["Location"] == second["Location"]
    assert Order.objects.filter(status=OrderStatus.PAID).count() == 2  # the purchase + this one
    assert SandboxCharge.objects.filter(amount=298586).count() == 1
    assert Payment.objects.filter(amount=298586, status=PaymentStatus.SUCCEEDED).count() == 1


def test_a_declined_card_says_so_keeps_the_form_and_changes_nothing(acme):
    client = acme.client()
    _, form = open_checkout(acme, client)
    before = Subscription.objects.get(account=acme.account)
    # when Alice pays with a card that is declined
    response = client.post(acme.url + "checkout/", form | declined())
    # then she sees the gateway's message, the form again with a new key, and nothing changed
    text = page_text(response)
    assert response.status_code == 200
    assert "Your card was declined" in text
    assert "Place order" in text and "Total due today $2,985.86" in text
    assert hidden(response.content.decode(), "idempotency_key") != form["idempotency_key"]
    after = Subscription.objects.get(account=acme.account)
    assert (after.plan.code, after.quantity, after.period_end) == ("standard", 2, before.period_end)
    assert Document.objects.filter(account=acme.account).count() == 1
    # and another card works with the new form
    retry = {"idempotency_key": hidden(response.content.decode(), "idempotency_key"),
             "expected": hidden(response.content.decode(), "expected")}
    assert client.post(acme.url + "checkout/", retry | new_card()).status_code == 302
    assert Subscription.objects.get(account=acme.account).plan.code == "pro"


def test_a_stale_quote_shows_the_new_summary(acme, clock):
    client = acme.client()
    _, form = open_checkout(acme, client)
    # when a day passes before Alice places the order (the credit for unused time shrinks)
    clock.set(utc(2026, 4, 2))
    response = client.post(acme.url + "checkout/", form | {"payment_method": ""})
    # then nothing is placed and the new summary is shown with a message
    text = page_text(response)
    assert "Your order summary changed since you saw it" in text
    assert "-$1,783.63" in text and "Total due today $2,992.37" in text
    assert Subscription.objects.get(account=acme.account).plan.code == "standard"


def test_bistro_fewer_licenses_creates_credit_and_nothing_is_charged(clock):
    # given Bistro's Lite monthly × 5 on 2026-03-11 (DESIGN example 2)
    bistro = bistro_world(clock)
    clock.set(utc(2026, 3, 11))
    client = bistro.client()
    response, form = open_checkout(bistro, client, {"plan": "lite", "cycle": "monthly",
                                                     "quantity": "3", "action": "checkout"})
    text = page_text(response)
    # then no payment details are asked for (nothing is due)
    assert "Payment details" not in text
    # when Jeanne places the order
    done = client.post(bistro.url + "checkout/", form | {"vat_number": ""})
    # then the confirmation shows the credit, and the account has it
    confirmation = page_text(client.get(done["Location"]))
    assert "Amount paid €0.00 Credit added to your account €25.55" in confirmation
    assert credit_balance(bistro.account) == eur("25.55")


def test_an_invalid_vat_number_is_a_clear_field_error(clock):
    bistro = bistro_world(clock)
    clock.set(utc(2026, 3, 11))
    client = bistro.client()
    _, form = open_checkout(bistro, client, {"plan": "lite", "cycle": "monthly",
                                              "quantity": "7", "action": "checkout"})
    response = client.post(bistro.url + "checkout/", form | {"vat_number": "FR00000000000",
                                                              "payment_method": ""},
                           HTTP_ACCEPT_LANGUAGE="en")
    text = page_text(response)
    assert "is not a valid VAT number" in text or "n'est pas un numéro de TVA valide" in text
    assert Subscription.objects.get(account=bistro.account).quantity == 5


def test_a_first_purchase_goes_through_the_same_pages(clock):
    # given an account with no subscription (S9, S16: Subscribe now)
    from tests.app.subscriptions.support import customer
    from tests.app.web.billing_support import World

    account, user = customer("New Co", "US", "n@new.example", currency="USD")
    world = World(account, user)
    client = world.client()
    text = page_text(client.get(world.url + "subscriptions/webinar/modify/",
                                {"plan": "lite", "cycle": "monthly", "quantity": "3"}))
    assert "Subscribe now" in text and "Total due today $177.00" in text
    # when the billing contact checks out with a new card
    response, form = open_checkout(world, client, {"plan": "lite", "cycle": "monthly",
                                                    "quantity": "3", "action": "checkout"})
    assert "A new card" in page_text(response)
    done = client.post(world.url + "checkout/", form | new_card())
    # then the subscription is active from today, paid 177.00
    confirmation = page_text(client.get(done["Location"]))
    assert "Now: Lite, 3 licenses, monthly" in confirmation
    assert "Amount paid $177.00" in confirmation
    subscription = Subscription.objects.get(account=account)
    assert (subscription.status, subscription.period_end) == ("active", utc(2026, 4, 11))


def test_money_due_without_any_card_is_a_clear_message(clock):
    from tests.app.subscriptions.support import customer
    from tests.app.web.billing_support import World

    account, user = customer("New Co", "US", "n@new.example", currency="USD")
    world = World(account, user)
    client = world.client()
    _, form = open_checkout(world, client, {"plan": "lite", "cycle": "monthly",
                                             "quantity": "1", "action": "checkout"})
    text = page_text(client.post(world.url + "checkout/", form | {"payment_method": ""}))
    assert "Money is due: enter a card or choose a saved one to place the order." in text
    assert not Subscription.objects.filter(account=account).exists()


def test_modify_order_comes_back_to_the_choice_in_the_cart(acme):
    # given Alice's pending upgrade to Pro annual × 2 in the cart, on the checkout page
    client = acme.client()
    open_checkout(acme, client, PRO | {"quantity": "3"})
    # when she follows Modify order
    page = client.get(acme.url + "subscriptions/webinar/modify/").content.decode()
    # then the form shows the cart's choice, not her current Standard × 2
    assert 'name="plan" value="pro" checked' in page
    assert 'value="3"' in page.split('id="quantity"', 1)[1].split(">", 1)[0]


def test_the_carts_modify_and_remove_controls_sit_with_their_item(acme):
    client = acme.client()
    client.post(acme.url + "subscriptions/webinar/modify/", PRO)
    html = client.get(acme.url + "cart/").content.decode()
    item = html.split('<div class="order-item">', 1)[1].split('<dl class="totals">', 1)[0]
    assert f'href="{acme.url}subscriptions/webinar/modify/"' in item
    assert 'name="product" value="webinar"' in item
    removed = client.post(acme.url + "cart/", {"product": "webinar"})
    assert removed.status_code == 302
    assert "Your cart is empty." in page_text(client.get(acme.url + "cart/"))


def test_a_vat_number_typed_at_checkout_refreshes_the_summary_in_place(clock):
    # given a German customer (19 % VAT) at the checkout of Lite monthly × 2
    from tests.app.subscriptions.support import customer, save_card
    from tests.app.web.billing_support import World

    clock.set(utc(2026, 3, 1))
    account, user = customer("Kunde GmbH", "DE", "kunde@kunde.example", currency="EUR")
    save_card(account, user)
    kunde = World(account, user)
    client = kunde.client()
    response, form = open_checkout(kunde, client, {"plan": "lite", "cycle": "monthly",
                                                   "quantity": "2", "action": "checkout"})
    assert "Tax (19%)" in page_text(response)
    page = response.content.decode()
    assert f'hx-get="/billing/{account.pk}/checkout/"' in page and 'hx-params="vat_number"' in page
    # when a valid German VAT number is typed (htmx asks for the live summary)
    live = client.get(kunde.url + "checkout/", {"vat_number": "DE136695976"},
                      HTTP_HX_REQUEST="true")
    # then only the summary, the quotes' fingerprints and the total come back (no card fields)
    html = live.content.decode()
    assert live.status_code == 200 and "<html" not in html and "card_number" not in html
    assert 'id="checkout-summary"' in html and 'id="expected"' in html
    assert "Reverse charge" in page_text(live) and "€110.00" in page_text(live)
    expected = re.search(r'name="expected" value="([^"]*)"', html).group(1)
    assert expected != form["expected"]
    # an invalid number says so in place and keeps the price with VAT
    wrong = client.get(kunde.url + "checkout/", {"vat_number": "DE123"}, HTTP_HX_REQUEST="true")
    assert 'id="vat-status" hx-swap-oob="true"' in wrong.content.decode()
    assert "is not a valid VAT number" in page_text(wrong)
    assert "Tax (19%)" in page_text(wrong)
    # and placing the order with the refreshed fingerprints and the VAT number succeeds
    placed = client.post(kunde.url + "checkout/", form | {"expected": expected,
                                                          "vat_number": "DE136695976"})
    assert placed.status_code == 302 and "/orders/" in placed["Location"]
    assert Document.objects.get(account=account, kind="invoice").tax == 0


def test_the_reverse_charge_mention_is_in_the_readers_language(clock):
    # given a German company's French-speaking billing contact at the checkout of Lite × 2
    from tests.app.subscriptions.support import customer, save_card
    from tests.app.web.billing_support import World

    clock.set(utc(2026, 3, 1))
    account, user = customer("Kunde GmbH", "DE", "kunde@kunde.example", currency="EUR")
    user.language = "fr"
    user.save()
    save_card(account, user)
    kunde = World(account, user)
    client = kunde.client()
    open_checkout(kunde, client, {"plan": "lite", "cycle": "monthly", "quantity": "2",
                                  "action": "checkout"})
    # when a valid VAT number makes the sale reverse charged
    live = page_text(client.get(kunde.url + "checkout/", {"vat_number": "DE136695976"},
                                HTTP_HX_REQUEST="true"))
    # then the summary's mention is French, as on the invoice
    assert "Autoliquidation" in live and "Reverse charge" not in live
