"""The checkout over the API: idempotency keys (DESIGN §8, as Stripe defines them), refused cards,
stale quotes, the cart, and who may check out."""

from __future__ import annotations

import pytest

from prorata.billing.models import Document, LedgerEntry
from prorata.billing.selectors import account_balance
from prorata.payments.models import SandboxCharge
from prorata.payments.sandbox import SandboxGateway
from prorata.subscriptions.models import CartItem, Order, Subscription
from prorata_core.periods import utc
from tests.app.api.billing_support import (
    DECLINED_CARD,
    BillingClient,
    acme_with_standard_annual,
    item,
    money,
)
from tests.app.api.conftest import token_for
from tests.app.subscriptions.support import assert_books_balance, card, customer

pytestmark = pytest.mark.django_db


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
    return {"items": [item("pro", "annual", 2)], "expected": [quote["fingerprint"]], "card_token": card()}


def test_a_retry_with_the_same_key_answers_the_first_result_and_charges_once(acme):
    account, _alice, api = acme
    body = upgrade(api, account.pk)
    first = api.checkout(account.pk, body, key="order-7")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    second = api.checkout(account.pk, body, key="order-7")
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert SandboxCharge.objects.count() == 2  # the first purchase and this upgrade: once
    assert Order.objects.filter(account=account).count() == 2
    assert_books_balance()


def test_the_same_key_with_another_body_is_a_409_conflict(acme):
    account, _alice, api = acme
    body = upgrade(api, account.pk)
    assert api.checkout(account.pk, body, key="order-8").status_code == 201
    other = api.checkout(account.pk, {**body, "items": [item("pro", "annual", 3)]}, key="order-8")
    assert other.status_code == 409
    error = other.json()
    assert error["code"] == "idempotency_conflict"
    assert "already used for a different order" in error["message"]
    assert "use a new key" in error["message"]


def test_a_key_whose_first_request_is_still_running_is_409_in_progress(acme, monkeypatch):
    account, _alice, api = acme
    body = upgrade(api, account.pk)
    during = {}
    charge = SandboxGateway.charge

    def slow_charge(self, **kwargs):  # the retry arrives while the bank is being asked
        during["retry"] = api.checkout(account.pk, body, key="order-9")
        return charge(self, **kwargs)

    monkeypatch.setattr(SandboxGateway, "charge", slow_charge)
    first = api.checkout(account.pk, body, key="order-9")
    assert first.status_code == 201
    retry = during["retry"]
    assert retry.status_code == 409
    assert retry.json()["code"] == "in_progress"
    assert "safe to send the same request again" in retry.json()["message"]
    # and once the first is done, the retry answers its result
    monkeypatch.setattr(SandboxGateway, "charge", charge)
    assert api.checkout(account.pk, body, key="order-9").json() == first.json()


def test_a_checkout_without_an_idempotency_key_is_refused_with_what_to_send(acme):
    account, _alice, api = acme
    response = api.checkout(account.pk, upgrade(api, account.pk), key=None)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "idempotency_key_required"
    assert "Idempotency-Key" in error["message"]
    blank = api.checkout(account.pk, upgrade(api, account.pk), key="  ")
    assert blank.status_code == 400
    assert Order.objects.filter(account=account).count() == 1


def test_a_declined_card_is_a_402_with_the_banks_message_and_changes_nothing(acme):
    account, _alice, api = acme
    subscription = Subscription.objects.get(account=account)
    documents, entries = Document.objects.count(), LedgerEntry.objects.count()
    balance = account_balance(account)
    body = {**upgrade(api, account.pk), "card_token": card(DECLINED_CARD)}
    response = api.checkout(account.pk, body, key="declined-1")
    assert response.status_code == 402
    error = response.json()
    assert error["code"] == "payment_declined"
    assert "declined" in error["message"].lower()
    after = Subscription.objects.get(pk=subscription.pk)
    assert (after.plan_id, after.quantity, after.version, after.period_end) == (
        subscription.plan_id, subscription.quantity, subscription.version,
        subscription.period_end)
    assert (Document.objects.count(), LedgerEntry.objects.count()) == (documents, entries)
    assert account_balance(account) == balance
    cards = api.get(f"/api/v1/accounts/{account.pk}/payment-methods").json()["data"]
    assert cards[0]["last4"] == "4242"
    # the same key answers the same refusal; a new key with a good card goes through
    assert api.checkout(account.pk, body, key="declined-1").json() == error
    assert api.checkout(account.pk, {**body, "card_token": card()}, key="declined-2").status_code == 201
    assert_books_balance()


def test_a_stale_quote_is_a_409_with_the_new_summary_and_nothing_written(acme, clock):
    account, _alice, api = acme
    body = upgrade(api, account.pk)
    clock.set(utc(2026, 4, 2))  # a day later: less unused time to credit
    body["card_token"] = card()  # typed now (a card form's token expires within the hour)
    response = api.checkout(account.pk, body, key="stale-1")
    assert response.status_code == 409
    error = response.json()
    assert error["code"] == "quote_changed"
    summary = error["params"]["summary"]
    (line_credit, _charge) = summary["items"][0]["lines"]
    assert line_credit["ratio"] == "274/365"  # a day less of unused time: the credit moved
    assert summary["totals"]["amount_due"]["currency"] == "USD"
    assert summary["expected"] == [summary["items"][0]["fingerprint"]]
    assert Order.objects.filter(account=account).count() == 1
    # placing the new summary works
    again = api.checkout(account.pk, {**body, "expected": summary["expected"]}, key="stale-2")
    assert again.status_code == 422 and again.json()["code"] == "card_token_invalid"  # used once
    again = api.checkout(account.pk, {**body, "expected": summary["expected"],
                                      "card_token": card()}, key="stale-3")
    assert again.status_code == 201


def test_the_cart_is_filled_priced_emptied_and_checked_out(acme):
    account, _alice, api = acme
    base = f"/api/v1/accounts/{account.pk}/cart"
    assert api.get(base).json() == {"items": [], "summary": None}
    put = api.put(f"{base}/items/webinar", {"plan_code": "pro", "cycle_code": "annual",
                                            "quantity": 2})
    assert put.status_code == 200, put.content
    cart = put.json()
    assert cart["items"] == [item("pro", "annual", 2)]
    assert cart["summary"]["totals"]["amount_due"] == money("2985.86", "USD")
    # replacing the item, then taking it out (twice: the second changes nothing)
    api.put(f"{base}/items/webinar", {"plan_code": "pro", "cycle_code": "annual", "quantity": 3})
    assert api.get(base).json()["items"] == [item("pro", "annual", 3)]
    assert api.delete(f"{base}/items/webinar").json()["items"] == []
    assert api.delete(f"{base}/items/webinar").status_code == 200
    # checkout of the cart; its retry answers the first result though the cart is now empty
    cart = api.put(f"{base}/items/webinar", {"plan_code": "pro", "cycle_code": "annual",
                                             "quantity": 2}).json()
    body = {"cart": True, "expected": cart["summary"]["expected"], "card_token": card()}
    first = api.checkout(account.pk, body, key="cart-1")
    assert first.status_code == 201, first.content
    assert CartItem.objects.filter(account=account).count() == 0
    assert api.checkout(account.pk, body, key="cart-1").json() == first.json()


def test_a_refused_change_never_enters_the_cart(acme):
    account, _alice, api = acme
    response = api.put(f"/api/v1/accounts/{account.pk}/cart/items/webinar",
                       {"plan_code": "lite", "cycle_code": "annual", "quantity": 2})
    assert response.status_code == 409
    assert response.json()["code"] == "downgrade_needs_support"
    assert CartItem.objects.count() == 0


def test_items_or_cart_exactly_one(acme):
    account, _alice, api = acme
    body = upgrade(api, account.pk)
    both = api.checkout(account.pk, {**body, "cart": True}, key="both")
    assert both.status_code == 422 and "either" in both.json()["message"]
    neither = api.checkout(account.pk, {"expected": body["expected"]}, key="neither")
    assert neither.status_code == 422


def test_members_without_the_billing_role_get_403_and_other_accounts_404(acme, clock):
    account, _alice, api = acme
    other, bea = customer("Bistro", "FR", "bea@bistro.example")
    from prorata.accounts.models import User
    from prorata.accounts.services import membership_set_roles

    pat = User.objects.create_user("pat@acme.example", "pw")
    membership_set_roles(actor=None, account=account, user=pat, admin=True)
    as_pat = BillingClient(token_for(pat))
    for response in (as_pat.quote(account.pk, "pro", "annual", 2),
                     as_pat.get(f"/api/v1/accounts/{account.pk}/invoices"),
                     as_pat.get(f"/api/v1/accounts/{account.pk}/transactions"),
                     as_pat.checkout(account.pk, upgrade(api, account.pk))):
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "forbidden"
    for response in (api.quote(other.pk, "pro", "annual", 2),
                     api.get(f"/api/v1/accounts/{other.pk}/invoices"),
                     api.checkout(other.pk, upgrade(api, account.pk))):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    invoice = Document.objects.filter(account=account).first()
    assert BillingClient(token_for(bea)).get(
        f"/api/v1/accounts/{other.pk}/invoices/{invoice.pk}").status_code == 404
