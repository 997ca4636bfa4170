"""The subscriptions app's hand-written queries: what a quote needs of the account's subscriptions,
and the checkout's statements folded into one each on PostgreSQL: its reads under the account lock
(:func:`checkout_reads`), the order placed with its payment (:func:`order_place`), the order's
completion (:func:`order_complete`); each with its ORM twin (SQLite's road, the parity tests'
reference).

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
from django.db.models import F, Model, OuterRef, Q, Subquery

from prorata.accounts.models import Account, AuditEntry
from prorata.billing.models import AccountBalance, Payment
from prorata.catalog.models import Product
from prorata.common.db import (
    concrete_columns,
    insert_parts,
    instant_from_db,
    model_from_row,
    prepared_cursor,
)
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import (
    CartItem,
    Order,
    OrderStatus,
    Subscription,
    SubscriptionEvent,
)


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


# --- the checkout's first transaction: what it reads under the account lock, and what it writes ---

class CheckoutReads(NamedTuple):
    """What a checkout reads once it holds the account's lock: the orders that stop it (``busy``:
    (id, idempotency key) of the request's own key's order and of every order still ``placed``),
    the account's stored balances by currency (minor units; a currency without a row is absent),
    and the saved card it would charge: ``payment_method_id``'s, else the default one (None: no
    such card, or removed)."""

    busy: list[tuple[int, str]]
    balances: dict[str, int]
    card: PaymentMethod | None


_CARD_COLUMNS = concrete_columns(PaymentMethod)
_CHECKOUT_READS_SQL = (
    "SELECT o.id, o.idempotency_key, "  # noqa: S608
    f"(SELECT json_object_agg(b.currency, b.balance) FROM {AccountBalance._meta.db_table} b "
    " WHERE b.account_id = a.id), "
    + ", ".join(f"m.{column}" for column in _CARD_COLUMNS)
    + f" FROM {Account._meta.db_table} a "  # noqa: S608 (table and column names only)
    f"LEFT JOIN LATERAL (SELECT * FROM {PaymentMethod._meta.db_table} pm "
    " WHERE pm.account_id = a.id AND pm.removed_at IS NULL "
    "   AND CASE WHEN %s::bigint IS NULL THEN pm.is_default ELSE pm.id = %s::bigint END "
    " ORDER BY pm.id LIMIT 1) m ON true "
    f"LEFT JOIN {Order._meta.db_table} o ON o.account_id = a.id "
    " AND (o.idempotency_key = %s OR o.status = %s) "
    "WHERE a.id = %s ORDER BY o.id"
)


def checkout_reads(*, account_id: int, key: str, payment_method_id: int | None) -> CheckoutReads:
    """The checkout's reads after the account lock (:class:`CheckoutReads`), in one statement on
    PostgreSQL (its snapshot is taken after the lock was granted: every writer of these rows holds
    that lock); elsewhere :func:`checkout_reads_orm`. Who may call:
    :mod:`prorata.subscriptions.services`, under the account lock."""
    if connection.vendor != "postgresql":
        return checkout_reads_orm(account_id=account_id, key=key,
                                  payment_method_id=payment_method_id)
    wanted = payment_method_id
    if wanted is not None and not 0 < wanted < 2**63:
        wanted = 0  # no card has an id outside bigint's range (nor 0): none found, as the ORM
    with prepared_cursor() as cursor:
        cursor.execute(_CHECKOUT_READS_SQL, [wanted, wanted, key, OrderStatus.PLACED, account_id])
        rows = cursor.fetchall()
    first = rows[0]
    card = first[3:]
    return CheckoutReads(
        busy=[(row[0], row[1]) for row in rows if row[0] is not None],
        balances={currency: int(amount) for currency, amount in (first[2] or {}).items()},
        card=model_from_row(PaymentMethod, card) if card[0] is not None else None,
    )


def checkout_reads_orm(*, account_id: int, key: str,
                       payment_method_id: int | None) -> CheckoutReads:
    """:func:`checkout_reads` through the ORM, in three queries (SQLite's road and the parity
    test's reference)."""
    busy = list(Order.objects.filter(Q(idempotency_key=key) | Q(status=OrderStatus.PLACED),
                                     account_id=account_id)
                .order_by("id").values_list("id", "idempotency_key"))
    balances = dict(AccountBalance.objects.filter(account_id=account_id)
                    .values_list("currency", "balance"))
    cards = PaymentMethod.objects.filter(account_id=account_id, removed_at__isnull=True)
    cards = cards.filter(pk=payment_method_id) if payment_method_id is not None else cards.filter(
        is_default=True)
    return CheckoutReads(busy=busy, balances=balances, card=cards.order_by("id").first())


_ORDER_PLACE_SQL = (
    f"WITH o AS (INSERT INTO {Order._meta.db_table} ({{order_columns}}) "  # noqa: S608
    "VALUES ({order_values}) RETURNING id), "
    f"p AS (INSERT INTO {Payment._meta.db_table} ({{payment_columns}}) "
    "SELECT {payment_values} FROM o RETURNING id){versions} "
    "SELECT o.id, p.id FROM o, p"
)
_VERSIONS_SQL = (f", v AS (UPDATE {_SUBSCRIPTION} SET version = version + 1 "  # noqa: S608
                 "WHERE id = ANY(%s))")


def order_place(*, order: Order, payment: Payment, key_prefix: str, key_suffix: str,
                reserve: Sequence[int]) -> None:
    """Save the new ``order`` and its pending card ``payment`` (both unsaved; the payment's
    ``order`` and ``idempotency_key`` — ``key_prefix`` + the order's id + ``key_suffix`` — are
    set here), and bump the ``version`` of the subscriptions ``reserve`` (ids) so that a quote
    made before the order is stale. One statement on PostgreSQL (data-modifying ``WITH``: the
    payment reads the order's new id); elsewhere :func:`order_place_orm`. Inside the caller's
    transaction, under the account and subscriptions locks. Who may call:
    :mod:`prorata.subscriptions.services`."""
    if connection.vendor != "postgresql":
        order_place_orm(order=order, payment=payment, key_prefix=key_prefix,
                        key_suffix=key_suffix, reserve=reserve)
        return
    order_columns, order_values, params = insert_parts(order)
    columns, values = [], []
    for field in Payment._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.name == "order":
            values.append("o.id")
        elif field.name == "idempotency_key":
            values.append("%s || o.id || %s")
            params += [key_prefix, key_suffix]
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(field.pre_save(payment, True), connection))
    sql = _ORDER_PLACE_SQL.format(
        order_columns=order_columns, order_values=order_values,
        payment_columns=", ".join(columns), payment_values=", ".join(values),
        versions=_VERSIONS_SQL if reserve else "")
    if reserve:
        params.append(list(reserve))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        order.pk, payment.pk = cursor.fetchone()
    payment.order = order
    payment.idempotency_key = f"{key_prefix}{order.pk}{key_suffix}"
    for saved in (order, payment):
        saved._state.adding = False
        saved._state.db = connection.alias


def order_place_orm(*, order: Order, payment: Payment, key_prefix: str, key_suffix: str,
                    reserve: Sequence[int]) -> None:
    """:func:`order_place` through the ORM, in three statements (SQLite's road and the parity
    test's reference)."""
    order.save(force_insert=True)
    payment.order = order
    payment.idempotency_key = f"{key_prefix}{order.pk}{key_suffix}"
    payment.save(force_insert=True)
    if reserve:
        Subscription.objects.filter(pk__in=list(reserve)).update(version=F("version") + 1)
