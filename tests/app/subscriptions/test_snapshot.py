"""The typed order snapshot: a placed order's stored summary reads back as typed values and writes
back to exactly the same JSON (so orders stored before the types existed read unchanged)."""

from __future__ import annotations

import pytest

from prorata.subscriptions.models import Order
from prorata.subscriptions.snapshot import OrderSnapshot
from prorata_core.orders import LineKind, OrderKind
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, eur, save_card

pytestmark = pytest.mark.django_db


def test_a_change_order_reads_back_typed_and_writes_back_the_same_json(bistro, clock):
    account, jeanne = bistro
    save_card(account, jeanne)
    clock.set(utc(2026, 3, 1))
    buy(account, jeanne, "lite", "monthly", 5)
    clock.set(utc(2026, 3, 11))
    buy(account, jeanne, "lite", "monthly", 3)  # DESIGN §3 example 2
    order = Order.objects.order_by("-id").first()

    summary = order.summary
    (item,) = summary.items
    assert (summary.at, summary.currency, summary.tax.rate_bp) == (utc(2026, 3, 11), "EUR", 2000)
    assert item.kind is OrderKind.CHANGE
    assert (item.previous.quantity, item.configuration.quantity) == (5, 3)
    assert item.configuration.plan_name == "Lite"
    assert (item.period.start, item.period.end) == (utc(2026, 3, 11), utc(2026, 4, 11))
    assert item.next_billing_date == utc(2026, 4, 11)
    credit = next(line for line in item.lines if line.kind is LineKind.CREDIT)
    assert (credit.amount, credit.tax, str(credit.ratio)) == (eur("-186.29"), eur("-37.26"),
                                                              "21/31")
    assert item.charge.amount == eur("165.00")
    assert summary.totals.credit_created == eur("25.55")
    assert summary.products == ["webinar"] and summary.item("webinar") == item

    assert summary.to_json() == order.snapshot
    assert OrderSnapshot.from_json(summary.to_json()) == summary


def test_a_summary_stored_before_the_renewal_choice_was_recorded_reads_as_renewing(acme):
    account, alice = acme
    save_card(account, alice)
    buy(account, alice, "standard", "annual", 2)
    order = Order.objects.get()
    stored = dict(order.snapshot)
    stored["items"] = [{k: v for k, v in item.items() if k != "auto_renew"}
                       for item in stored["items"]]
    stored.pop("from_cart")

    summary = OrderSnapshot.from_json(stored)
    assert summary.items[0].auto_renew is None and summary.items[0].renews
    assert summary.from_cart is False
