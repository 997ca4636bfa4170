"""3-D Secure over the personal API (issue 17): a checkout whose bank asks the customer to
authenticate answers 202 ``requires_action`` with the page to open; the same request sent again
(same key) answers the outcome once the customer has been there."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from prorata.billing.models import Document, Payment, PaymentStatus
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Order, OrderStatus, Subscription
from prorata.subscriptions.services import payments_reconcile_due
from prorata_core.periods import utc
from tests.app.api.billing_support import acme_with_standard_annual, item
from tests.app.subscriptions.support import assert_books_balance, card

pytestmark = pytest.mark.django_db

SCA_CARD = "4000 0027 6000 3184"


@pytest.fixture(autouse=True)
def catalog(demo_catalog):
    return demo_catalog


@pytest.fixture
def acme(clock):
    acme, alice, api = acme_with_standard_annual(clock)
    clock.set(utc(2026, 4, 1))
    return acme, alice, api


def upgrade(api, account_id):  # type: ignore[no-untyped-def]
    quote = api.quote(account_id, "pro", "annual", 2).json()
    return {"items": [item("pro", "annual", 2)], "expected": [quote["fingerprint"]],
            "card_token": card(SCA_CARD)}


def bank(action_url: str, answer: str) -> str:
    """The customer's browser on the bank's page: it answers, and is sent back to Prorata."""
    browser = Client()
    response = browser.post(action_url, {"answer": answer})
    assert response.status_code == 303
    return response["Location"]


def test_the_api_answers_requires_action_with_the_page_then_the_outcome_on_the_same_request(acme):
    account, alice, api = acme
    body = upgrade(api, account.pk)
    first = api.checkout(account.pk, body, key="sca-1")
    assert first.status_code == 202
    waiting = first.json()
    assert waiting["status"] == "requires_action"
    assert waiting["action_url"].startswith("http://testserver/sandbox-gateway/v1/challenge/")
    assert waiting["invoice"] is None and waiting["amount_charged"]["amount"] == 0
    assert "authenticate" in waiting["message"]
    order = Order.objects.get(pk=waiting["order_id"])
    assert order.status == OrderStatus.PLACED
    assert Subscription.objects.get(account=account).plan.code == "standard"

    # Sent again before the customer has answered: still waiting, same page.
    again = api.checkout(account.pk, body, key="sca-1")
    assert again.status_code == 202 and again.json()["action_url"] == waiting["action_url"]
    assert again["Idempotent-Replayed"] == "true"

    back = bank(waiting["action_url"], "approve")
    assert back == f"http://testserver/billing/{account.pk}/orders/{order.pk}/authenticated/"
    done = api.checkout(account.pk, body, key="sca-1")
    assert done.status_code == 201, done.json()
    assert done.json()["status"] == "paid" and done.json()["action_url"] == ""
    assert done.json()["amount_charged"]["amount"] == 298586
    assert done["Idempotent-Replayed"] == "true"
    assert Subscription.objects.get(account=account).plan.code == "pro"
    assert PaymentMethod.objects.get(account=account, last4="3184").is_default
    # The return page loaded later by the browser finds it done, and applies nothing twice.
    browser = Client()
    browser.force_login(alice)
    assert browser.get(back)["Location"] == f"/billing/{account.pk}/orders/{order.pk}/"
    assert api.checkout(account.pk, body, key="sca-1").json() == done.json()
    assert Document.objects.filter(order=order, kind="invoice").count() == 1
    assert_books_balance()


def test_a_failed_authentication_is_a_402_and_the_account_orders_again(acme):
    account, _alice, api = acme
    body = upgrade(api, account.pk)
    waiting = api.checkout(account.pk, body, key="sca-2").json()
    bank(waiting["action_url"], "fail")
    refused = api.checkout(account.pk, body, key="sca-2")
    assert refused.status_code == 402
    assert refused.json()["code"] == "authentication_failed"
    assert "nothing was charged" in refused.json()["message"]
    assert Payment.objects.get(order_id=waiting["order_id"]).status == PaymentStatus.FAILED
    assert Subscription.objects.get(account=account).plan.code == "standard"
    assert not PaymentMethod.objects.filter(account=account, last4="3184").exists()
    # Not blocked: the same change with the saved card, under a new key.
    quote = api.quote(account.pk, "pro", "annual", 2).json()
    paid = api.checkout(account.pk, {"items": [item("pro", "annual", 2)],
                                     "expected": [quote["fingerprint"]]}, key="sca-3")
    assert paid.status_code == 201 and paid.json()["status"] == "paid"
    assert_books_balance()


def test_while_the_customer_authenticates_another_order_waits_then_the_job_frees_the_account(
    acme, clock
):
    account, _alice, api = acme
    body = upgrade(api, account.pk)
    api.checkout(account.pk, body, key="sca-4")
    quote = api.quote(account.pk, "pro", "annual", 3).json()
    other = {"items": [item("pro", "annual", 3)], "expected": [quote["fingerprint"]]}
    blocked = api.checkout(account.pk, other, key="sca-5")
    assert blocked.status_code == 409 and blocked.json()["code"] == "order_in_progress"
    clock.advance(timedelta(minutes=11))  # never authenticated: the bank's page expired
    assert payments_reconcile_due()["failed"] == 1
    expired = api.checkout(account.pk, body, key="sca-4")
    assert expired.status_code == 402 and expired.json()["code"] == "authentication_failed"
    quote = api.quote(account.pk, "pro", "annual", 3).json()
    other = {"items": [item("pro", "annual", 3)], "expected": [quote["fingerprint"]]}
    assert api.checkout(account.pk, other, key="sca-6").status_code == 201
    assert_books_balance()
