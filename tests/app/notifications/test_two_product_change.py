"""A change of two products checked out together from the cart (issue 16, "Cart and checkout"):
its e-mail lists every product with its own period and next billing date, in English and French,
text and HTML — the paid change's receipt, and the credit e-mail of a change that leaves credit."""

from __future__ import annotations

import pytest

from prorata.catalog.models import BillingCycle, Plan, Price, Product
from prorata.notifications.models import OutboxMessage
from prorata.subscriptions.selectors import checkout_quote
from prorata.subscriptions.services import cart_add, checkout_place
from prorata_core.periods import utc
from tests.app.notifications.test_receipt_items import assert_lists
from tests.app.subscriptions.support import buy, card, customer, key

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(clock, demo_catalog):
    """Acme (UTC, the zone the instants below are written in) with Webinar Standard monthly × 2
    and a second product, Cloud storage Basic monthly × 3, both bought on 2026-01-01."""
    product = Product.objects.create(code="storage", name="Cloud storage")
    plan = Plan.objects.create(product=product, code="storage_basic", name="Basic", rank=1,
                               participant_limit=0)
    Price.objects.create(plan=plan, cycle=BillingCycle.objects.get(code="monthly"),
                         currency="USD", unit_amount=1000)
    clock.set(utc(2026, 1, 1))
    account, user = customer("Acme Corp", "US", "alice@acme.example", currency="USD",
                             time_zone="UTC")
    buy(account, user, "standard", "monthly", 2, card_token=card())
    buy(account, user, "storage_basic", "monthly", 3, product="storage")
    clock.set(utc(2026, 1, 16, 12))
    OutboxMessage.objects.all().delete()
    return account, user


def _check_out(account, user, *changes: tuple[str, str, str, int]) -> None:
    for product, plan, cycle, quantity in changes:
        cart_add(account=account, user=user, product_code=product, plan_code=plan,
                 cycle_code=cycle, quantity=quantity)
    quote = checkout_quote(account=account, user=user)
    checkout_place(account=account, user=user, idempotency_key=key(),
                   expected=quote.fingerprints)


def test_a_paid_two_product_change_lists_each_product_s_period_and_next_billing(acme):
    account, alice = acme
    # When both products change at once: Webinar to Pro annual, storage to 5 licenses
    _check_out(account, alice, ("webinar", "pro", "annual", 2),
               ("storage", "storage_basic", "monthly", 5))
    # then one receipt lists both, each with its own period and next billing date
    (receipt,) = OutboxMessage.objects.filter(template="receipt")
    assert receipt.context["kind"] == "change"
    assert [(item["product"], item["period_start"], item["period_end"],
             item["next_billing_date"]) for item in receipt.context["items"]] == [
        ("Webinar", "2026-01-16T12:00:00Z", "2027-01-16T12:00:00Z", "2027-01-16T12:00:00Z"),
        ("Cloud storage", "2026-01-16T12:00:00Z", "2026-02-16T12:00:00Z",
         "2026-02-16T12:00:00Z")]
    assert_lists(receipt, en=[
        "- Webinar Pro, 2 licenses, annual (before: Standard, 2 licenses, monthly)\n"
        "  Period: January 16, 2026 to January 16, 2027 · next billing date: January 16, 2027",
        "- Cloud storage Basic, 5 licenses, monthly (before: Basic, 3 licenses, monthly)\n"
        "  Period: January 16, 2026 to February 16, 2026 · next billing date: February 16, 2026",
    ], fr=[
        "- Webinar Pro, 2 licences, annuel (avant\u00a0: Standard, 2 licences, mensuel)\n"
        "  Période\u00a0: du 16 janvier 2026 au 16 janvier 2027 · prochaine facturation le "
        "16 janvier 2027",
        "- Cloud storage Basic, 5 licences, mensuel (avant\u00a0: Basic, 3 licences, mensuel)\n"
        "  Période\u00a0: du 16 janvier 2026 au 16 février 2026 · prochaine facturation le "
        "16 février 2026",
    ])


def test_a_two_product_change_that_leaves_credit_lists_both_too(acme):
    account, alice = acme
    # When both products go down to one license (half a month of each is credited)
    _check_out(account, alice, ("webinar", "standard", "monthly", 1),
               ("storage", "storage_basic", "monthly", 1))
    # then the credit e-mail names both, each with its period and next billing date
    (credit,) = OutboxMessage.objects.filter(template="credit_created")
    assert len(credit.context["items"]) == 2
    assert_lists(credit, en=[
        "- Webinar Standard, 1 license, monthly (before: Standard, 2 licenses, monthly)\n"
        "  Period: January 16, 2026 to February 16, 2026 · next billing date: February 16, 2026",
        "- Cloud storage Basic, 1 license, monthly (before: Basic, 3 licenses, monthly)\n"
        "  Period: January 16, 2026 to February 16, 2026 · next billing date: February 16, 2026",
    ], fr=[
        "- Cloud storage Basic, 1 licence, mensuel (avant\u00a0: Basic, 3 licences, mensuel)\n"
        "  Période\u00a0: du 16 janvier 2026 au 16 février 2026 · prochaine facturation le "
        "16 février 2026",
    ])
