"""The subscriptions app's hand-written query: what a quote needs of the account's subscriptions.

The quote is the hottest read of the billing center (DESIGN §8 budgets it at one indexed read).
:func:`subscription_states` reads the same values as the ORM query written beside it
(:func:`subscription_states_orm`, the reference that ``tests/app/subscriptions/test_queries.py``
compares it with and that ``benchmarks/queries.py`` measures it against; figures in
``benchmarks/README.md``). Who may call: :mod:`prorata.subscriptions.selectors` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from django.db.models import F, OuterRef, Subquery

from prorata.billing.models import AccountBalance
from prorata.common.db import instant_from_db, prepared_cursor
from prorata.subscriptions.models import Subscription


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
