"""Reads of subscriptions, the cart, and quotes (the live order summary).

A quote is the one engine's call (:func:`prorata_core.orders.price_order`) on the account's state,
without saving (STYLE rule 4): :func:`order_quote` for one product, :func:`checkout_quote` for a cart
of several. The checkout (:func:`prorata.subscriptions.services.checkout_place`) prices again through
the same function under row locks and refuses to go on if the result differs from what was shown.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from prorata.accounts.models import Account, StaffRole, User
from prorata.accounts.permissions import Action, can, staff_roles
from prorata.billing.selectors import credit_balance, default_currency
from prorata.catalog.selectors import catalog_snapshot
from prorata.common.clock import MOVABLE, WALL, clock_mode, now
from prorata.subscriptions.errors import NotPermitted, VatNumberOutsideEu
from prorata.subscriptions.models import (
    CartItem,
    Subscription,
    SubscriptionEvent,
    SubscriptionStatus,
)
from prorata.subscriptions.queries import SubscriptionState, subscription_states
from prorata.subscriptions.snapshot import (
    ConfigurationSnapshot,
    ItemSnapshot,
    OrderSnapshot,
    totals_json,
)
from prorata_core.catalog import Catalog
from prorata_core.errors import NotInCatalog, ValidationError
from prorata_core.money import Money
from prorata_core.orders import (
    Configuration,
    Order,
    OrderKind,
    OrderLine,
    Term,
    Totals,
    price_order,
    settle,
)
from prorata_core.periods import Period
from prorata_core.policy import BillingMode, Change, Status, check_order
from prorata_core.tax import (
    EU_COUNTRIES,
    TaxDecision,
    TaxRule,
    normalize_vat_number,
    tax_decision,
)


@dataclass(frozen=True, slots=True)
class CheckoutItem:
    """What the customer asks for one product: plan, billing period and license count.

    ``unit_amount`` (minor units per license per period) is an advisor's price: staff only, for
    advisor-priced plans (Enterprise) that have no catalog price.
    """

    product_code: str
    plan_code: str
    cycle_code: str
    quantity: int
    unit_amount: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"product": self.product_code, "plan": self.plan_code, "cycle": self.cycle_code,
                "quantity": self.quantity, "unit_amount": self.unit_amount}


@dataclass(frozen=True, slots=True)
class Quote:
    """The priced order for one product, as the order summary shows it.

    ``order`` is the engine's :class:`~prorata_core.orders.Order` (lines, totals with the account's
    credit applied, new period). ``subscription_version`` is the version it was priced at (``None``
    for a first purchase); ``fingerprint`` identifies what was shown (amounts, configuration,
    subscription version, tax, credit) and is what the checkout expects back.
    """

    item: CheckoutItem
    product_name: str
    order: Order
    current: Configuration | None
    changes: frozenset[Change]
    subscription_id: int | None
    subscription_version: int | None
    credit_balance: Money
    fingerprint: str
    at: datetime
    #: Whether the subscription renews after this order: a change keeps the customer's choice
    #: (after Cancel renewal it stays cancelled); a purchase or reactivation renews.
    renews: bool = True

    @property
    def kind(self) -> OrderKind:
        return self.order.kind

    @property
    def totals(self) -> Totals:
        return self.order.totals

    @property
    def next_billing_date(self) -> datetime:
        return self.order.next_billing_date

    def snapshot(self) -> ItemSnapshot:
        """The quote as the order stores it (typed; ``to_json`` for its JSON)."""
        order = self.order
        return ItemSnapshot(
            product=self.item.product_code,
            product_name=self.product_name,
            kind=order.kind,
            fingerprint=self.fingerprint,
            subscription_id=self.subscription_id,
            subscription_version=self.subscription_version,
            changes=tuple(sorted(change.value for change in self.changes)),
            configuration=_configuration_snapshot(order.configuration),
            previous=None if self.current is None else _configuration_snapshot(self.current),
            period=order.period,
            next_billing_date=order.next_billing_date,
            lines=order.lines,
            totals=order.totals,
            auto_renew=self.renews,
        )

    def summary(self) -> dict[str, Any]:
        """The quote as plain JSON (amounts in minor units, instants ISO 8601 UTC)."""
        return self.snapshot().to_json()


def _configuration_snapshot(configuration: Configuration) -> ConfigurationSnapshot:
    return ConfigurationSnapshot(
        plan=configuration.plan.code, plan_name=configuration.plan.name,
        cycle=configuration.cycle.code, quantity=configuration.quantity,
        unit_amount=configuration.unit_amount.amount,
    )


@dataclass(frozen=True, slots=True)
class CheckoutQuote:
    """Several products' quotes checked out together: one tax decision, one credit balance
    applied once to the sum of all lines (``totals``)."""

    items: tuple[Quote, ...]
    totals: Totals
    currency: str
    tax: TaxDecision
    credit_balance: Money
    at: datetime

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(quote.fingerprint for quote in self.items)

    @property
    def lines(self) -> tuple[OrderLine, ...]:
        return tuple(line for quote in self.items for line in quote.order.lines)

    def snapshot(self, *, from_cart: bool = False) -> OrderSnapshot:
        """The order as it is stored when placed."""
        return OrderSnapshot(
            at=self.at, currency=self.currency, tax=self.tax,
            credit_balance=self.credit_balance.amount,
            items=tuple(quote.snapshot() for quote in self.items),
            totals=self.totals, from_cart=from_cart,
        )

    def summary(self) -> dict[str, Any]:
        return self.snapshot().to_json()


def state_of(subscription: Subscription) -> SubscriptionState:
    return SubscriptionState(
        subscription.pk, subscription.product.code, subscription.status, subscription.version,
        subscription.plan.code, subscription.cycle.code, subscription.quantity,
        subscription.unit_amount, subscription.currency, subscription.anchor,
        subscription.period_start, subscription.period_end, subscription.invoiced_amount,
        subscription.invoice_id, subscription.auto_renew,
    )


# --- who may order ----------------------------------------------------------------------------

def may_act_as_staff(user: User | None, account: Account) -> bool:
    """Support agents and superusers act for any account; an advisor for the accounts they advise;
    the operator's backend, through a read-write operator API key (its principal user, issue 17),
    for any account, with the same staff-level policy as a support agent."""
    if user is None or not user.is_active:
        return False
    if not user.is_staff:
        from prorata.api.models import OperatorKey, OperatorKeyScope

        return OperatorKey.objects.filter(principal_id=user.pk, revoked_at__isnull=True,
                                          scope=OperatorKeyScope.READ_WRITE).exists()
    if user.is_superuser:
        return True
    roles = staff_roles(user)
    return StaffRole.SUPPORT_AGENT in roles or (
        StaffRole.CORPORATE_ADVISOR in roles and account.advisor_id == user.pk
    )


def require_may_order(user: User | None, account: Account, *, by_staff: bool) -> None:
    """Refuse a quote or an order from someone who may not buy for ``account`` (NotPermitted)."""
    if by_staff:
        if not may_act_as_staff(user, account):
            raise NotPermitted(
                "Only a support agent or the account's advisor changes a subscription from the "
                "console.",
            )
    elif user is None or not can(user, Action.MANAGE_BILLING, account):
        raise NotPermitted(
            "Only the account's billing contact buys or changes its subscriptions; ask them.",
        )


# --- quotes -------------------------------------------------------------------------------------

def account_currency(account: Account, subscription: SubscriptionState | None = None) -> str:
    if subscription is not None:
        return subscription.currency
    return account.currency or default_currency(account.country)


def typed_vat_number(account: Account, raw: str | None) -> str | None:
    """A VAT number typed at checkout (or sent with a quote), normalised; ``None`` when none was
    typed (blank), so that the account's own is used. One rule for the quote and the checkout:
    :class:`~prorata.subscriptions.errors.VatNumberOutsideEu` for an account outside the EU,
    :class:`~prorata_core.errors.InvalidVatNumber` for a malformed one. Writes nothing."""
    if raw is None or not str(raw).strip():
        return None
    if account.country not in EU_COUNTRIES:
        raise VatNumberOutsideEu(
            f"A VAT number is only for accounts in the European Union; this account is in "
            f"{account.country}: leave the VAT number out.", country=account.country)
    return normalize_vat_number(str(raw), account.country)


def account_tax(account: Account, at: datetime, vat_number: str | None = None) -> TaxDecision:
    """The tax decision for the account at ``at``: its country and its VAT number (or the one given
    at checkout, ``vat_number``), the seller's country from the settings (DESIGN §3 "Tax")."""
    number = vat_number if vat_number is not None else account.vat_number
    return tax_decision(
        seller_country=settings.PRORATA_SELLER_COUNTRY,
        customer_country=account.country,
        customer_vat_number=number or None,
        at=at,
    )


def order_kind(subscription: SubscriptionState | None) -> OrderKind:
    """A first purchase (from nothing or a free trial), a reactivation or a change."""
    if subscription is None or subscription.status == SubscriptionStatus.TRIALING:
        return OrderKind.PURCHASE
    if subscription.status == SubscriptionStatus.EXPIRED:
        return OrderKind.REACTIVATION
    return OrderKind.CHANGE


def current_configuration(catalog: Catalog, subscription: SubscriptionState) -> Configuration:
    return Configuration(
        plan=catalog.plan(subscription.plan_code),
        cycle=catalog.cycle(subscription.cycle_code),
        quantity=subscription.quantity,
        unit_amount=Money(subscription.unit_amount, subscription.currency),
    )


def current_term(catalog: Catalog, subscription: SubscriptionState) -> Term:
    """The subscription's current period as the engine sees it."""
    return Term(
        configuration=current_configuration(catalog, subscription),
        period=Period(subscription.period_start, subscription.period_end),
        anchor=subscription.anchor,
        invoiced=Money(subscription.invoiced_amount, subscription.currency),
    )


def _contact(account: Account) -> str:
    advisor = account.advisor if account.advisor_id else None
    if advisor is None:
        return "Corporate Billing"
    name = advisor.get_full_name()
    return f"your advisor, {name} ({advisor.email})" if name else f"your advisor ({advisor.email})"


def _target(
    catalog: Catalog, item: CheckoutItem, currency: str, subscription: SubscriptionState | None,
    by_staff: bool,
) -> Configuration:
    if item.product_code not in catalog.products:
        raise NotInCatalog(f"There is no product {item.product_code!r}.", product=item.product_code)
    plan = catalog.plan(item.plan_code)
    if plan.product_code != item.product_code:
        raise NotInCatalog(
            f"{plan.name} is not a plan of {catalog.products[item.product_code].name}; choose one "
            "of its plans.",
            plan=item.plan_code, product=item.product_code,
        )
    cycle = catalog.cycle(item.cycle_code)
    if item.unit_amount is not None:
        if not by_staff:
            raise NotPermitted("Only staff set a price; choose a plan from the catalog.")
        if type(item.unit_amount) is not int or item.unit_amount < 0:
            raise ValidationError(
                "An advisor's price is a whole, non-negative number of minor units (cents).",
                unit_amount=repr(item.unit_amount),
            )
        unit = Money(item.unit_amount, currency)
    elif (plan.code, cycle.code, currency) in catalog.prices:
        unit = catalog.price(plan.code, cycle.code, currency).unit_amount
    elif (
        subscription is not None
        and (subscription.plan_code, subscription.cycle_code) == (plan.code, cycle.code)
        and subscription.status != SubscriptionStatus.TRIALING
    ):
        # An advisor-priced plan keeps its negotiated price when only the license count changes.
        unit = Money(subscription.unit_amount, currency)
    elif not plan.self_service and not by_staff:
        # No public price: the policy refuses it with "contact us" (AdvisorPriced) right after.
        unit = Money(0, currency)
    elif not plan.self_service:
        raise ValidationError(
            f"{plan.name} is priced by an advisor: enter the price per license per period.",
            plan=plan.code,
        )
    else:
        unit = catalog.price(plan.code, cycle.code, currency).unit_amount  # raises NotInCatalog
    return Configuration(plan=plan, cycle=cycle, quantity=item.quantity, unit_amount=unit)


def fingerprint(quote_parts: Iterable[object]) -> str:
    """A short stable hash of JSON-able parts."""
    text = json.dumps(list(quote_parts), separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _quote_fingerprint(item: CheckoutItem, order: Order, subscription: SubscriptionState | None,
                       credit: Money) -> str:
    # Instants are left out on purpose (the period starts "now", which moves every second); the
    # amounts they produce are in, so a cent that moved with time is a changed quote.
    target = order.configuration
    return fingerprint([
        item.product_code, order.kind.value,
        subscription.pk if subscription else None, subscription.version if subscription else None,
        target.plan.code, target.cycle.code, target.quantity, target.unit_amount.amount,
        order.currency, order.tax.rate_bp, order.tax.rule.value, credit.amount,
        [[line.kind.value, line.plan_code, line.cycle_code, line.quantity,
          line.unit_amount.amount, line.amount.amount, line.tax.amount] for line in order.lines],
        totals_json(order.totals),
        subscription.auto_renew if subscription and order.kind is OrderKind.CHANGE else True,
    ])


def price_items(
    *,
    account: Account,
    items: Sequence[CheckoutItem],
    subscriptions: dict[str, SubscriptionState],
    catalog: Catalog,
    at: datetime,
    tax: TaxDecision,
    credit: Money,
    by_staff: bool,
) -> CheckoutQuote:
    """Check and price ``items`` for ``account`` at ``at`` (the engine and the policy, nothing else).

    ``subscriptions`` maps product codes to the account's subscriptions (:func:`state_of` of the
    locked rows at checkout). Used by the quotes and,
    under row locks, by the checkout, so both compute exactly the same thing.
    """
    if not items:
        raise ValidationError("The order is empty: choose a plan first.")
    codes = [item.product_code for item in items]
    if len(set(codes)) != len(codes):
        raise ValidationError("Each product appears once in an order.")
    billing_mode = BillingMode(account.billing_mode)
    contact = _contact(account) if billing_mode is BillingMode.CORPORATE and not by_staff else ""
    quotes = []
    for item in items:
        subscription = subscriptions.get(item.product_code)
        currency = account_currency(account, subscription)
        if credit.currency != currency:
            raise ValidationError(
                f"This account is billed in {credit.currency}; it cannot buy in {currency}.",
            )
        target = _target(catalog, item, currency, subscription, by_staff)
        kind = order_kind(subscription)
        is_change = kind is OrderKind.CHANGE
        current = current_configuration(catalog, subscription) if is_change and subscription else None
        changes = check_order(
            kind=kind, billing_mode=billing_mode,
            status=Status(subscription.status) if subscription is not None else None,
            current=current, target=target, by_staff=by_staff,
            **({"contact": contact} if contact else {}),
        )
        order = price_order(
            kind=kind, at=at, target=target, tax=tax, credit_balance=credit,
            current=current_term(catalog, subscription) if is_change and subscription else None,
        )
        quotes.append(Quote(
            item=item, product_name=catalog.products[item.product_code].name, order=order,
            current=current, changes=changes,
            subscription_id=subscription.pk if subscription else None,
            subscription_version=subscription.version if subscription else None,
            credit_balance=credit,
            fingerprint=_quote_fingerprint(item, order, subscription, credit),
            at=at,
            renews=subscription.auto_renew if is_change and subscription else True,
        ))
    lines = tuple(line for quote in quotes for line in quote.order.lines)
    return CheckoutQuote(
        items=tuple(quotes), totals=settle(lines, credit), currency=credit.currency, tax=tax,
        credit_balance=credit, at=at,
    )


def _subscriptions_and_credit(
    account: Account, product_codes: Sequence[str]
) -> tuple[dict[str, SubscriptionState], Money]:
    """The account's subscriptions to these products and its credit balance, in one query (two
    when it has none of them yet): :func:`prorata.subscriptions.queries.subscription_states`."""
    codes = list(product_codes)
    if not codes:
        return {}, credit_balance(account, account_currency(account))
    rows = subscription_states(account_id=account.pk, product_codes=codes)
    if rows:
        states = {state.product_code: state for state, _ in rows}
        return states, Money(max(rows[-1][1] or 0, 0), rows[0][0].currency)
    return {}, credit_balance(account, account_currency(account))


#: How long quotes may reuse the catalog they read (seconds), by clock mode: in production a quote
#: is a display and the checkout prices again from a fresh read under its locks, so a price
#: changed in the last second can only surface as a changed quote; with the movable clock (demo,
#: tests) the catalog changes between steps at one frozen instant, so it is read every time.
QUOTE_CATALOG_SECONDS = {WALL: 1.0, MOVABLE: 0.0}
_catalog_cache: tuple[float, Catalog] | None = None


def quote_catalog(*, fresh: bool = False) -> Catalog:
    """The catalog for a quote: :func:`catalog_snapshot`, reused for up to
    ``QUOTE_CATALOG_SECONDS`` (4 queries saved per quote, DESIGN §8 "one indexed read")."""
    global _catalog_cache
    ttl = getattr(settings, "PRORATA_QUOTE_CATALOG_SECONDS", None)
    if ttl is None:
        ttl = QUOTE_CATALOG_SECONDS[clock_mode()]
    cached = _catalog_cache
    moment = time.monotonic()
    if not fresh and ttl > 0 and cached is not None and moment - cached[0] < ttl:
        return cached[1]
    catalog = catalog_snapshot()
    _catalog_cache = (moment, catalog)
    return catalog


def checkout_quote(
    *,
    account: Account,
    user: User | None,
    items: Sequence[CheckoutItem] | None = None,
    by_staff: bool = False,
    vat_number: str | None = None,
) -> CheckoutQuote:
    """The order summary of ``items`` (by default the account's cart), priced now, saving nothing.

    ``vat_number`` is one typed on the checkout page (validated here; the account's is used
    otherwise). Raises the policy's refusals (:mod:`prorata_core.policy`) with their messages.
    """
    require_may_order(user, account, by_staff=by_staff)
    if items is None:
        items = cart_items(account=account)
    at = now()
    tax = account_tax(account, at, typed_vat_number(account, vat_number))
    subscriptions, credit = _subscriptions_and_credit(account, [i.product_code for i in items])
    arguments = {"account": account, "items": items, "subscriptions": subscriptions, "at": at,
                 "tax": tax, "credit": credit, "by_staff": by_staff}
    try:
        return price_items(catalog=quote_catalog(), **arguments)
    except NotInCatalog:  # perhaps just added to the catalog: read it again before refusing
        return price_items(catalog=quote_catalog(fresh=True), **arguments)


def order_quote(
    *,
    account: Account,
    user: User | None,
    product_code: str,
    plan_code: str,
    cycle_code: str,
    quantity: int,
    by_staff: bool = False,
    vat_number: str | None = None,
    unit_amount: int | None = None,
) -> Quote:
    """The live order summary for one product: what buying or changing to this plan, billing
    period and license count costs now (DESIGN §3), with the account's credit applied.

    A read: nothing is saved. In production one or two queries (the membership, cached per
    request; the subscription with the balance); the catalog is reused for a second
    (:func:`quote_catalog`). With the movable clock, also the clock and the catalog's four.
    Pass the returned ``fingerprint`` to the checkout as what the customer saw.
    """
    item = CheckoutItem(product_code, plan_code, cycle_code, quantity, unit_amount)
    return checkout_quote(
        account=account, user=user, items=[item], by_staff=by_staff, vat_number=vat_number
    ).items[0]


# --- other reads --------------------------------------------------------------------------------

def cart_items(account: Account) -> list[CheckoutItem]:
    """The account's cart, oldest first, as checkout items."""
    return [
        CheckoutItem(product, plan, cycle, quantity)
        for product, plan, cycle, quantity in CartItem.objects.filter(account=account)
        .order_by("created_at", "id")
        .values_list("product__code", "plan__code", "cycle__code", "quantity")
    ]


def cart_count(*, account: Account) -> int:
    """How many items the account's cart holds (the billing center's sub-navigation shows it on
    every page): one count, where :func:`cart_items` joins three tables. The ORM's: a
    hand-written count saved nothing measurable (``benchmarks/README.md``, "Hand-written queries")."""
    return CartItem.objects.filter(account=account).count()


def subscriptions_for_account(*, account: Account) -> list[Subscription]:
    """The account's subscriptions with their product, plan and cycle (one query)."""
    return list(
        Subscription.objects.select_related("product", "plan", "cycle")
        .filter(account=account).order_by("product__code", "id")
    )


__all__ = [
    "CheckoutItem",
    "CheckoutQuote",
    "Quote",
    "TaxRule",
    "account_tax",
    "cart_count",
    "cart_items",
    "checkout_quote",
    "order_quote",
    "price_items",
    "subscriptions_for_account",
]


def subscription_expired_on(subscription: Subscription) -> datetime:
    """When ``subscription`` expired: the moment of its last expiry event (after the last
    dunning retry, the period the renewal opened lies ahead and was never paid), else the end of
    its period."""
    expired = (SubscriptionEvent.objects
               .filter(subscription=subscription, kind=SubscriptionEvent.Kind.EXPIRED)
               .order_by("-at").values_list("at", flat=True).first())
    return min(expired, subscription.period_end) if expired else subscription.period_end
