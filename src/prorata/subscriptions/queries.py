"""The subscriptions app's hand-written queries: what a quote needs of the account's subscriptions,
and the checkout's order completion in one statement (:func:`order_complete`, PostgreSQL).

The quote is the hottest read of the billing center (DESIGN §8 budgets it at one indexed read).
:func:`subscription_states` reads the same values as the ORM query written beside it
(:func:`subscription_states_orm`, the reference that ``tests/app/subscriptions/test_queries.py``
compares it with and that ``benchmarks/queries.py`` measures it against; figures in
``benchmarks/README.md``). Who may call: :mod:`prorata.subscriptions.selectors` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import F, Model, OuterRef, Subquery

from prorata.accounts.models import AuditEntry
from prorata.billing.models import AccountBalance
from prorata.catalog.models import Product
from prorata.common.db import insert_parts, instant_from_db, prepared_cursor
from prorata.subscriptions.models import CartItem, Order, Subscription, SubscriptionEvent


class SubscriptionState(NamedTuple):
    """What pricing needs of a subscription (read in one query for a quote, or taken from the
    locked row at checkout: :func:`prorata.subscriptions.selectors.state_of`). Amounts in minor
    units; instants UTC."""

    pk: int
    product_code: str
    status: str
    version: int
    plan_code: str
    cycle_code: str
    quantity: int
    unit_amount: int
    currency: str
    anchor: datetime
    period_start: datetime
    period_end: datetime
    invoiced_amount: int
    invoice_id: int | None
    auto_renew: bool = True


#: A subscription's state and the account's stored balance in the subscription's currency (None
#: when the account has no balance row in it yet), minor units.
StateAndBalance = tuple[SubscriptionState, int | None]

_STATE_SQL = """
SELECT s.id, pr.code, s.status, s.version, p.code, c.code, s.quantity, s.unit_amount, s.currency,
       s.anchor, s.period_start, s.period_end, s.invoiced_amount, s.invoice_id, s.auto_renew,
       (SELECT b.balance FROM billing_accountbalance b
         WHERE b.account_id = s.account_id AND b.currency = s.currency)
  FROM subscriptions_subscription s
  JOIN catalog_product pr ON pr.id = s.product_id
  JOIN catalog_plan p ON p.id = s.plan_id
  JOIN catalog_billingcycle c ON c.id = s.cycle_id
 WHERE s.account_id = %s AND pr.code IN ({codes})
"""


def subscription_states(*, account_id: int, product_codes: Sequence[str]) -> list[StateAndBalance]:
    """The account's subscriptions to ``product_codes`` (at most one each), in no particular
    order, each with the account's balance in its currency. ``product_codes`` is not empty."""
    sql = _STATE_SQL.format(codes=", ".join(["%s"] * len(product_codes)))
    with prepared_cursor() as cursor:
        cursor.execute(sql, [account_id, *product_codes])
        rows = cursor.fetchall()
    found = []
    for row in rows:
        *fields, balance = row
        for index in (9, 10, 11):  # SQLite returns instants as text
            fields[index] = _instant(fields[index])
        fields[14] = bool(fields[14])  # and booleans as integers
        found.append((SubscriptionState(*fields), balance))
    return found


def _instant(value: datetime | str) -> datetime:
    return instant_from_db(value)


def subscription_states_orm(
    *, account_id: int, product_codes: Sequence[str]
) -> list[StateAndBalance]:
    """The reference for :func:`subscription_states`: the same join and subquery by the ORM."""
    balance = AccountBalance.objects.filter(
        account_id=OuterRef("account_id"), currency=OuterRef("currency")).values("balance")
    rows = (
        Subscription.objects.filter(account_id=account_id, product__code__in=product_codes)
        .order_by()
        .values_list("pk", F("product__code"), "status", "version", F("plan__code"),
                     F("cycle__code"), "quantity", "unit_amount", "currency", "anchor",
                     "period_start", "period_end", "invoiced_amount", "invoice_id",
                     "auto_renew", Subquery(balance))
    )
    return [(SubscriptionState(*row[:-1]), row[-1]) for row in rows]


# --- the checkout's order completion -------------------------------------------------------------

_ORDER_COMPLETE_SQL = (
    f"WITH cart AS (DELETE FROM {CartItem._meta.db_table} c "  # noqa: S608
    f"USING {Product._meta.db_table} p "
    "WHERE p.id = c.product_id AND c.account_id = %s AND p.code IN ({codes})), "
    f"done AS (UPDATE {Order._meta.db_table} "
    "SET status = %s, invoice_id = %s, completed_at = %s WHERE id = %s) "
    f"INSERT INTO {AuditEntry._meta.db_table} ({{columns}}) VALUES ({{values}}) RETURNING id"
)


def order_complete(*, order: Order, products: Sequence[str], audit: AuditEntry) -> None:
    """Write a completed order: ``order``'s ``status``, ``invoice`` and ``completed_at`` (set on
    it by the caller), its ``products`` out of its account's cart, and its ``audit`` entry
    (unsaved: :func:`prorata.accounts.services.audit_entry`; saved here). One statement on
    PostgreSQL (data-modifying ``WITH``: the three writes touch different rows, so that they see
    one snapshot does not matter); elsewhere :func:`order_complete_orm`. Inside the caller's
    transaction, under the account lock. Who may call: :mod:`prorata.subscriptions.services`."""
    if connection.vendor != "postgresql" or not products:
        order_complete_orm(order=order, products=products, audit=audit)
        return
    columns, values, params = insert_parts(audit)
    completed_at = Order._meta.get_field("completed_at").get_db_prep_save(
        order.completed_at, connection)
    sql = _ORDER_COMPLETE_SQL.format(codes=", ".join(["%s"] * len(products)), columns=columns,
                                     values=values)
    with connection.cursor() as cursor:
        cursor.execute(sql, [
            order.account_id, *products, order.status, order.invoice_id, completed_at, order.pk,
            *params])
        audit.pk = cursor.fetchone()[0]
    audit._state.adding = False
    audit._state.db = connection.alias


def order_complete_orm(*, order: Order, products: Sequence[str], audit: AuditEntry) -> None:
    """:func:`order_complete` through the ORM, in three statements (SQLite's road and the parity
    test's reference)."""
    CartItem.objects.filter(account_id=order.account_id, product__code__in=products).delete()
    order.save(update_fields=["status", "invoice", "completed_at"])
    audit.save(force_insert=True)


# --- a saved subscription's transition and its history entry ------------------------------------

_SUBSCRIPTION = Subscription._meta.db_table


def subscription_move(*, subscription: Subscription, current: str, read_version: int,
                      fields: Mapping[str, Any], entry: SubscriptionEvent) -> bool:
    """Update ``subscription`` (saved) to its ``status`` and ``version`` and the other ``fields``
    (by field name, the values the ORM's ``update`` takes), only if its stored status and
    version are still ``current`` and ``read_version``; and insert its history ``entry``
    (unsaved; its id set here) only if it was. Returns whether it was. One statement on
    PostgreSQL (the insert reads the update's ``RETURNING``); elsewhere
    :func:`subscription_move_orm`. Who may call:
    :func:`prorata.subscriptions.transitions.subscription_transition`."""
    if connection.vendor != "postgresql":
        return subscription_move_orm(subscription=subscription, current=current,
                                     read_version=read_version, fields=fields, entry=entry)
    meta = Subscription._meta
    changes = {"status": subscription.status, "version": subscription.version, **fields}
    sets, params = [], []
    for name, value in changes.items():
        field = meta.get_field(name)
        if isinstance(value, Model):
            value = value.pk
        sets.append(f"{connection.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    columns = [f for f in SubscriptionEvent._meta.concrete_fields if not f.primary_key]
    # Cast: a SELECT's parameters have no column to take their types from.
    values = ", ".join(f"%s::{f.cast_db_type(connection)}" for f in columns)
    sql = (f"WITH moved AS (UPDATE {_SUBSCRIPTION} SET {', '.join(sets)} "  # noqa: S608
           "WHERE id = %s AND status = %s AND version = %s RETURNING id) "
           f"INSERT INTO {SubscriptionEvent._meta.db_table} "
           f"({', '.join(connection.ops.quote_name(f.column) for f in columns)}) "
           f"SELECT {values} FROM moved RETURNING id")
    entry_values = [f.get_db_prep_save(f.pre_save(entry, True), connection) for f in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, subscription.pk, current, read_version, *entry_values])
        row = cursor.fetchone()
    if row is None:
        return False
    entry.pk = row[0]
    entry._state.adding = False
    entry._state.db = connection.alias
    return True


def subscription_move_orm(*, subscription: Subscription, current: str, read_version: int,
                          fields: Mapping[str, Any], entry: SubscriptionEvent) -> bool:
    """:func:`subscription_move` through the ORM: the guarded update, then the entry's insert
    (SQLite's road and the parity test's reference)."""
    updated = Subscription.objects.filter(
        pk=subscription.pk, status=current, version=read_version
    ).update(status=subscription.status, version=subscription.version, **fields)
    if updated != 1:
        return False
    entry.save(force_insert=True)
    return True
