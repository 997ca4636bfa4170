"""Subscriptions, their history, the cart and orders (DESIGN §1 S4, S16–S21; §3).

Written only by :mod:`prorata.subscriptions.services`. Amounts are integer minor units of the row's
``currency``; instants are UTC; a period is ``[period_start, period_end)``.
"""

from __future__ import annotations

from functools import cached_property

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import Account
from prorata.catalog.models import BillingCycle, Plan, Product
from prorata.subscriptions.snapshot import OrderSnapshot
from prorata_core.orders import OrderKind
from prorata_core.policy import Status


class SubscriptionStatus(models.TextChoices):
    """The stored form of :class:`prorata_core.policy.Status`."""

    TRIALING = Status.TRIALING.value, _("free trial")
    ACTIVE = Status.ACTIVE.value, _("active")
    PAST_DUE = Status.PAST_DUE.value, _("past due")
    EXPIRED = Status.EXPIRED.value, _("expired")


class Subscription(models.Model):
    """One product subscribed by one account (at most one per product: a database constraint).

    The current billing period ``[period_start, period_end)`` belongs to the cycle that started at
    ``anchor`` (the last purchase or change). ``unit_amount`` is the price per license per period it
    is sold at (the catalog's, or an advisor's for advisor-priced plans); ``invoiced_amount`` is the
    pre-tax amount of its line on ``invoice``, the invoice of the current period (0 and no invoice
    for a free trial): the engine credits the unused part of it on a change.

    ``version`` goes up on every change, and when an order is placed against the subscription (it
    goes back if that order's payment fails): a quote carries the version it was made at, and a
    checkout whose version moved is refused (stale quote).
    """

    # Every renewal rewrites the row and so every index on it: only the indexes that queries use.
    # The account's is subscription_one_per_account_product, which starts with it; catalog rows
    # and invoices are never deleted, so nothing looks subscriptions up by them.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("account"),
        db_index=False,
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+",
                                db_index=False)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+", db_index=False)
    cycle = models.ForeignKey(BillingCycle, on_delete=models.PROTECT, related_name="+",
                              db_index=False)
    quantity = models.PositiveIntegerField(_("licenses"))
    currency = models.CharField(_("currency"), max_length=3)
    unit_amount = models.BigIntegerField(_("price per license per period (minor units)"))
    status = models.CharField(_("status"), max_length=16, choices=SubscriptionStatus.choices)
    auto_renew = models.BooleanField(_("renews automatically"), default=True)
    anchor = models.DateTimeField(_("cycle anchor"))
    period_start = models.DateTimeField(_("period start"))
    period_end = models.DateTimeField(_("period end"))
    invoiced_amount = models.BigIntegerField(_("invoiced for the period (minor units)"), default=0)
    invoice = models.ForeignKey(
        "billing.Document", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("invoice of the current period"), db_index=False,
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["account", "product", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "product"], name="subscription_one_per_account_product"
            ),
            models.CheckConstraint(
                condition=Q(period_start__lt=F("period_end")), name="subscription_period_ordered"
            ),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="subscription_quantity_min"),
            models.CheckConstraint(
                condition=Q(invoiced_amount__gte=0, unit_amount__gte=0),
                name="subscription_amounts_not_negative",
            ),
        ]
        indexes = [
            # The billing run's claim: due subscriptions by period end (DESIGN §8).
            models.Index(fields=["status", "period_end", "id"], name="subscription_due"),
        ]

    def __str__(self) -> str:
        return f"{self.account} · {self.plan} × {self.quantity} ({self.status})"


class SubscriptionEvent(models.Model):
    """One entry of a subscription's history: what it was (``before``) and became (``after``).

    A renewal by the billing run is recorded once, as its :class:`prorata.jobs.models.Renewal`
    (unique per period, with its invoice), not repeated here; :data:`Kind.RENEWED` stays for the
    entries written before the run stopped repeating it. Every status change is written by
    :func:`prorata.subscriptions.transitions.subscription_transition` (its ``kind`` is then a
    :class:`prorata_core.lifecycle.Event`); the renewal on/off entries change no status."""

    class Kind(models.TextChoices):
        TRIAL_STARTED = "trial_started", _("free trial started")
        PURCHASED = "purchased", _("purchased")
        CHANGED = "changed", _("changed")
        REACTIVATED = "reactivated", _("reactivated")
        RENEWED = "renewed", _("renewed")
        RENEWAL_CANCELLED = "renewal_stopped", _("renewal cancelled")
        RENEWAL_RESUMED = "renewal_resumed", _("renewal resumed")
        EXPIRED = "expired", _("expired")
        PAYMENT_FAILED = "payment_failed", _("payment failed")
        RENEWAL_PAID = "renewal_paid", _("renewal invoice paid")

    # Indexed by subscription_event_at, which starts with it: no index of its own to maintain.
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="events",
                                     db_index=False)
    at = models.DateTimeField(_("at"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"))
    # Empty on the billing run's events: partial indexes below.
    order = models.ForeignKey(
        "Order", null=True, blank=True, on_delete=models.PROTECT, related_name="events",
        db_index=False,
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        db_index=False,
    )

    class Meta:
        ordering = ["subscription", "at", "id"]
        indexes = [
            models.Index(fields=["subscription", "at", "id"], name="subscription_event_at"),
            models.Index(fields=["order"], condition=Q(order__isnull=False), name="event_order"),
            models.Index(fields=["actor"], condition=Q(actor__isnull=False), name="event_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.kind} at {self.at:%Y-%m-%d %H:%M}"


class CartItem(models.Model):
    """A change waiting in the account's cart (S18): at most one per product."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="cart_items")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="+")
    cycle = models.ForeignKey(BillingCycle, on_delete=models.CASCADE, related_name="+")
    quantity = models.PositiveIntegerField(_("licenses"))
    created_at = models.DateTimeField(_("added at"))

    class Meta:
        ordering = ["account", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "product"], name="cart_one_item_per_product"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="cart_quantity_min"),
        ]

    def __str__(self) -> str:
        return f"{self.account}: {self.plan} {self.cycle} × {self.quantity}"


class OrderKindChoice(models.TextChoices):
    PURCHASE = OrderKind.PURCHASE.value, _("purchase")
    CHANGE = OrderKind.CHANGE.value, _("change")
    REACTIVATION = OrderKind.REACTIVATION.value, _("reactivation")
    RENEWAL = OrderKind.RENEWAL.value, _("renewal")
    #: A checkout of several products whose items are of different kinds.
    MIXED = "mixed", _("several changes")


class OrderStatus(models.TextChoices):
    QUOTED = "quoted", _("quoted")
    #: Recorded, subscriptions reserved; the payment is in flight (or its outcome is unknown).
    PLACED = "placed", _("placed")
    #: Applied and paid (by card, by credit, or both).
    PAID = "paid", _("paid")
    #: Applied; its invoice awaits a bank transfer within the account's payment terms (corporate).
    INVOICED = "invoiced", _("invoiced")
    #: The payment failed: nothing was applied.
    FAILED = "failed", _("failed")


class Order(models.Model):
    """A checkout: the engine's computation exactly as the customer saw it, and what became of it.

    ``snapshot`` holds the priced items (lines with periods, exact ratios, tax) and the totals;
    the total columns repeat the engine's totals (minor units). ``expected_versions`` maps each
    existing subscription's id to the version the quote was made at (several products can be
    checked out together, so it is a map rather than one number). ``idempotency_key`` is the
    client's key, unique per account; ``request_fingerprint`` is the hash of the request it came
    with, so that a replay can be told from a different request under the same key.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="orders")
    kind = models.CharField(_("kind"), max_length=16, choices=OrderKindChoice.choices)
    status = models.CharField(_("status"), max_length=16, choices=OrderStatus.choices)
    currency = models.CharField(_("currency"), max_length=3)
    subtotal = models.BigIntegerField(_("subtotal"))
    tax = models.BigIntegerField(_("tax"))
    total = models.BigIntegerField(_("total"))
    credit_applied = models.BigIntegerField(_("credit applied"))
    amount_due = models.BigIntegerField(_("amount due"))
    credit_created = models.BigIntegerField(_("credit created"))
    snapshot = models.JSONField(_("order summary"))
    expected_versions = models.JSONField(_("subscription versions quoted"), default=dict)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("placed by"),
    )
    by_staff = models.BooleanField(_("placed by staff"), default=False)
    invoice = models.ForeignKey(
        "billing.Document", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("invoice"),
    )
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.TextField(blank=True, default="")
    #: The card typed at checkout, as the gateway made it a payment method (its id, brand, last
    #: four digits, expiry: never the card number): saved on the account once it has paid (a
    #: 3-D Secure payment pays after the request that placed the order).
    new_card = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"], name="order_idempotency_key_per_account"
            ),
            models.CheckConstraint(
                condition=Q(amount_due__gte=0, credit_created__gte=0, credit_applied__gte=0),
                name="order_settlement_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.kind}, {self.status})"

    @cached_property
    def summary(self) -> OrderSnapshot:
        """``snapshot`` as typed values (read once per instance; a snapshot never changes)."""
        return OrderSnapshot.from_json(self.snapshot)
