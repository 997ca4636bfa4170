"""The demo's subscriptions are bought through the services at their start instants."""

from __future__ import annotations

import pytest

from prorata.accounts.demo import demo_load_people
from prorata.accounts.models import Account
from prorata.billing.models import Document, DocumentKind
from prorata.billing.selectors import account_balance
from prorata.subscriptions.demo import demo_load_subscriptions
from prorata.subscriptions.models import Subscription
from prorata.subscriptions.selectors import order_quote
from prorata_core.periods import utc
from tests.app.conftest import DEMO_INSTANT

pytestmark = pytest.mark.django_db


def test_the_demo_buys_three_subscriptions_and_leaves_the_clock_on_the_examples_day(clock):
    demo_load_people()
    lines = demo_load_subscriptions()
    assert clock.now() == DEMO_INSTANT
    assert lines[1:] == [
        "  Acme Corp: Standard, annual, 2 licenses from 2026-01-01, invoice 2026-000001 "
        "(2376.00 USD) paid",
        "  Globex: Enterprise, annual, 20 licenses from 2026-02-01, invoice 2026-000002 "
        "(48000.00 EUR) paid",
        "  Bistro Numérique: Lite, monthly, 5 licenses from 2026-03-01, invoice 2026-000003 "
        "(330.00 EUR) paid",
    ]
    acme, bistro, globex = (Account.objects.get(name=name)
                            for name in ("Acme Corp", "Bistro Numérique", "Globex"))
    bistro_invoice = Document.objects.get(account=bistro, kind=DocumentKind.INVOICE)
    assert (bistro_invoice.subtotal, bistro_invoice.tax, bistro_invoice.issued_at) == (
        27500, 5500, utc(2026, 3, 1))
    globex_invoice = Document.objects.get(account=globex)
    assert globex_invoice.snapshot["tax_rule"] == "reverse_charge"
    assert globex_invoice.status == "paid" and globex_invoice.payments.get().method == "bank_transfer"
    for account in (acme, bistro, globex):
        assert account_balance(account).amount == 0
    # DESIGN's example 2 is what Bistro sees today
    jeanne = bistro.memberships.get().user
    quote = order_quote(account=bistro, user=jeanne, product_code="webinar", plan_code="lite",
                        cycle_code="monthly", quantity=3)
    assert quote.totals.credit_created.amount == 2555
    # and a second run changes nothing
    assert demo_load_subscriptions()[1].endswith("(kept)")
    assert Subscription.objects.count() == 3 and Document.objects.count() == 3


def test_the_demo_needs_its_people(clock):
    assert demo_load_subscriptions()[1] == "  Acme Corp: skipped (load the demo's people first)"
    assert clock.now() == DEMO_INSTANT
