"""The checkout's order completion in one statement (``subscriptions.queries.order_complete``,
PostgreSQL) against the ORM form it replaces: the same order, cart and audit rows."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from prorata.accounts.models import AuditEntry
from prorata.accounts.services import audit_entry
from prorata.subscriptions.models import CartItem, Order, OrderStatus
from prorata.subscriptions.queries import order_complete, order_complete_orm
from prorata.subscriptions.services import cart_add
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, save_card

pytestmark = pytest.mark.django_db


def placed(account, user):
    """A paid order of ``account`` put back to ``placed``, and a cart holding its product and
    another one."""
    save_card(account, user)
    order = buy(account, user, "standard", "annual", 2).order
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.PLACED, completed_at=None)
    cart_add(account=account, user=user, product_code="webinar", plan_code="standard",
             cycle_code="annual", quantity=3)
    order.refresh_from_db()
    return order


def audit_rows(account):
    return [(entry.at, entry.actor_email, entry.action, entry.object_type, entry.before,
             entry.after, entry.ip, entry.actor_id is not None)
            for entry in AuditEntry.objects.filter(account=account, action="order.test")]


@pytest.mark.parametrize("complete", [order_complete, order_complete_orm], ids=["sql", "orm"])
def test_the_order_completes_its_cart_empties_and_its_audit_entry_is_written(
        acme, clock, complete):
    account, alice = acme
    order = placed(account, alice)
    order.status, order.completed_at = OrderStatus.PAID, utc(2026, 1, 2)
    entry = audit_entry(actor=alice, action="order.test", account=account, obj=order,
                        after={"status": "paid", "amount_due": 12345, "items": [{"a": 1}]})
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        complete(order=order, products=["webinar"], audit=entry)
    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.invoice_id, stored.completed_at) == (
        OrderStatus.PAID, order.invoice_id, utc(2026, 1, 2))
    assert not CartItem.objects.filter(account=account).exists()
    assert entry.pk == AuditEntry.objects.get(action="order.test").pk
    assert audit_rows(account) == [(entry.at, alice.email, "order.test", "subscriptions.order",
                                    None, {"status": "paid", "amount_due": 12345,
                                           "items": [{"a": 1}]}, None, True)]
    one = complete is order_complete and connection.vendor == "postgresql"
    assert len(captured.captured_queries) == (1 if one else 3)


def test_only_the_orders_products_leave_the_cart(acme, clock):
    account, alice = acme
    order = placed(account, alice)
    entry = audit_entry(actor=None, action="order.test", account=account, obj=order)
    with transaction.atomic():
        order_complete(order=order, products=["not-in-the-cart"], audit=entry)
    assert CartItem.objects.filter(account=account).count() == 1
    assert audit_rows(account) == [(entry.at, "", "order.test", "subscriptions.order", None,
                                    None, None, False)]
