"""The cart (S18): changes of several products wait in it and are checked out together."""

from __future__ import annotations

import pytest

from prorata.billing.models import DocumentKind
from prorata.catalog.models import BillingCycle, Plan, Price, Product
from prorata.subscriptions.models import CartItem, Subscription
from prorata.subscriptions.selectors import CheckoutItem, cart_count, cart_items, checkout_quote
from prorata.subscriptions.services import cart_add, cart_remove, checkout_place
from prorata_core.errors import DowngradeNeedsSupport, ValidationError
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, key, numbers, save_card, usd

pytestmark = pytest.mark.django_db


@pytest.fixture
def storage(db):
    """A second product, so that a cart can hold two."""
    product = Product.objects.create(code="storage", name="Cloud storage")
    plan = Plan.objects.create(product=product, code="storage_basic", name="Basic", rank=1,
                               participant_limit=0)
    Price.objects.create(plan=plan, cycle=BillingCycle.objects.get(code="monthly"),
                         currency="USD", unit_amount=1000)
    return product


def test_items_wait_in_the_cart_and_a_product_appears_once(acme):
    account, alice = acme
    cart_add(account=account, user=alice, product_code="webinar", plan_code="lite",
             cycle_code="monthly", quantity=2)
    cart_add(account=account, user=alice, product_code="webinar", plan_code="standard",
             cycle_code="annual", quantity=3)
    assert cart_items(account) == [CheckoutItem("webinar", "standard", "annual", 3)]
    assert cart_count(account=account) == 1
    assert cart_remove(account=account, user=alice, product_code="webinar")
    assert not cart_remove(account=account, user=alice, product_code="webinar")
    assert cart_items(account=account) == []
    assert cart_count(account=account) == 0


def test_a_change_the_policy_refuses_never_enters_the_cart(acme, clock):
    account, alice = acme
    save_card(account, alice)
    buy(account, alice, "pro", "monthly", 1)
    with pytest.raises(DowngradeNeedsSupport):
        cart_add(account=account, user=alice, product_code="webinar", plan_code="lite",
                 cycle_code="monthly", quantity=1)
    assert CartItem.objects.count() == 0


def test_the_cart_is_checked_out_on_one_invoice_with_the_credit_applied_once(acme, storage, clock):
    account, alice = acme
    save_card(account, alice)
    buy(account, alice, "standard", "monthly", 2)  # 258.00 on 2026-01-01
    clock.set(utc(2026, 1, 16, 12))  # half of January is left: 129.00 of credit
    cart_add(account=account, user=alice, product_code="webinar", plan_code="standard",
             cycle_code="monthly", quantity=1)
    cart_add(account=account, user=alice, product_code="storage", plan_code="storage_basic",
             cycle_code="monthly", quantity=3)
    quote = checkout_quote(account=account, user=alice)
    assert [item.kind for item in quote.items] == ["change", "purchase"]
    assert quote.totals.total == usd("-129.00") + usd("129.00") + usd("30.00")
    with pytest.raises(ValidationError):
        checkout_place(account=account, user=alice, idempotency_key=key(),
                       expected=quote.fingerprints, items=[])
    result = checkout_place(account=account, user=alice, idempotency_key=key(),
                            expected=quote.fingerprints)
    assert result.amount_charged == usd("30.00")
    assert [line.description for line in result.invoice.lines.order_by("position")] == [
        "Standard, monthly, 1 license", "Basic, monthly, 3 licenses"]
    assert (result.invoice.total, result.invoice.credit_applied) == (15900, 12900)
    assert numbers(DocumentKind.CREDIT_NOTE) == ["CN-2026-000001"]
    assert CartItem.objects.count() == 0
    assert Subscription.objects.filter(account=account).count() == 2
    assert result.next_billing_dates == {"webinar": "2026-02-16T12:00:00Z",
                                         "storage": "2026-02-16T12:00:00Z"}


def test_a_cart_checkout_sent_again_with_its_key_is_answered_not_refused(acme, clock):
    # Given a cart checked out once (which empties the cart)
    account, alice = acme
    save_card(account, alice)
    cart_add(account=account, user=alice, product_code="webinar", plan_code="lite",
             cycle_code="monthly", quantity=2)
    quote = checkout_quote(account=account, user=alice)
    order_key = key()
    first = checkout_place(account=account, user=alice, idempotency_key=order_key,
                           expected=quote.fingerprints)
    assert CartItem.objects.count() == 0
    # When the same request comes again (double click, a client's retry)
    again = checkout_place(account=account, user=alice, idempotency_key=order_key,
                           expected=quote.fingerprints)
    # Then it is the first answer, charged once
    assert again.replayed and again.order == first.order and again.invoice == first.invoice
    assert Subscription.objects.get(account=account).quantity == 2
