"""Saved payment methods, and the offline sandbox gateway's own records.

No table here holds a card number or a security code: a :class:`PaymentMethod` keeps the gateway's
token, the brand, the last four digits and the expiry (DESIGN §1 S20, §7). Written only by
:mod:`prorata.payments.services` (payment methods) and :mod:`prorata.payments.sandbox` (sandbox rows).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import Account


class PaymentMethod(models.Model):
    """A card saved on an account. At most one active card per account is the default (a database
    constraint); a removed card keeps its row (``removed_at``) for the history of past payments."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="payment_methods", verbose_name=_("account")
    )
    token = models.CharField(_("gateway token"), max_length=255)
    brand = models.CharField(_("brand"), max_length=32)
    last4 = models.CharField(_("last four digits"), max_length=4)
    exp_month = models.PositiveSmallIntegerField(_("expiry month"))
    exp_year = models.PositiveSmallIntegerField(_("expiry year"))
    is_default = models.BooleanField(_("default"), default=False)
    created_at = models.DateTimeField(_("added at"))
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment method")
        verbose_name_plural = _("payment methods")
        ordering = ["account", "-is_default", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(is_default=True, removed_at__isnull=True),
                name="payment_method_one_default_per_account",
            ),
            models.CheckConstraint(
                condition=Q(exp_month__gte=1, exp_month__lte=12),
                name="payment_method_exp_month_valid",
            ),
            models.CheckConstraint(
                condition=Q(removed_at__isnull=True) | Q(is_default=False),
                name="payment_method_removed_is_not_default",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand} •••• {self.last4} ({self.expiry})"

    @property
    def expiry(self) -> str:
        """``"12/2030"``."""
        return f"{self.exp_month:02d}/{self.exp_year}"


class SandboxBehaviour(models.TextChoices):
    """What the sandbox does when a token made from a test card is charged."""

    SUCCEED = "succeed", _("succeeds")
    DECLINE = "decline", _("is declined")
    INSUFFICIENT_FUNDS = "insufficient_funds", _("has insufficient funds")
    #: The charge is made but its answer is lost: ``charge`` says unknown, ``lookup`` says succeeded.
    UNKNOWN_THEN_SUCCEEDED = "unknown_then_succeeded", _("times out (but is charged)")
    #: 3-D Secure: every charge asks the customer to authenticate (off session: requires action).
    AUTHENTICATE = "authenticate", _("requires authentication")


class SandboxCard(models.Model):
    """A card tokenised by the sandbox gateway: its tokens and test behaviour, never its number.

    The card form gets ``single_use_token`` (``tok_…``); :meth:`SandboxGateway.payment_method_create`
    exchanges it, once, for ``token`` (``pm_…``, the reusable payment method that is charged).
    Cards saved before the card form existed have no single-use token."""

    token = models.CharField(max_length=64, unique=True)
    single_use_token = models.CharField(max_length=64, unique=True, null=True, blank=True)
    #: When the single-use token was exchanged (``None``: not yet; it can be used once).
    attached_at = models.DateTimeField(null=True, blank=True)
    brand = models.CharField(max_length=32)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    behaviour = models.CharField(max_length=32, choices=SandboxBehaviour.choices)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "sandbox card"

    def __str__(self) -> str:
        return f"{self.token} ({self.brand} •••• {self.last4}, {self.behaviour})"


class SandboxCharge(models.Model):
    """One charge attempt received by the sandbox, keyed by its idempotency key.

    ``outcome`` is the true outcome (what ``lookup`` answers); a declined attempt is kept too, so
    that a replay returns the same decline.
    """

    idempotency_key = models.CharField(max_length=255, unique=True)
    reference = models.CharField(max_length=64, unique=True)
    token = models.CharField(max_length=64)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=500, blank=True, default="")
    outcome = models.CharField(max_length=32)
    #: The answer ``charge`` gave the first time (``unknown`` for a simulated timeout).
    first_answer = models.CharField(max_length=32)
    #: The customer-facing message of a decline decided later (a failed or expired challenge).
    message = models.CharField(max_length=500, blank=True, default="")
    off_session = models.BooleanField(default=False)
    #: A 3-D Secure challenge: its secret (in the challenge page's URL), its end, where it returns.
    action_secret = models.CharField(max_length=64, unique=True, null=True, blank=True)
    action_expires_at = models.DateTimeField(null=True, blank=True)
    return_url = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "sandbox charge"

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency} {self.outcome}"


class SandboxRefund(models.Model):
    """One refund attempt received by the sandbox, keyed by its idempotency key."""

    idempotency_key = models.CharField(max_length=255, unique=True)
    reference = models.CharField(max_length=64, unique=True)
    charge_reference = models.CharField(max_length=64, db_index=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    outcome = models.CharField(max_length=32)
    message = models.CharField(max_length=500)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "sandbox refund"

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency} {self.outcome}"


class StripeAttemptKind(models.TextChoices):
    CHARGE = "charge", "charge"
    REFUND = "refund", "refund"


class StripeAttempt(models.Model):
    """One charge or refund the Stripe gateway sent, recorded *before* the request leaves
    (:mod:`prorata.payments.stripe_gateway`), keyed by Prorata's idempotency key.

    It is what lets ``lookup`` find an attempt whose answer was lost (a timeout) without Stripe's
    search, which is only eventually consistent: the customer is listed, whose PaymentIntents carry
    the key in their metadata. No row: the request never left, so Stripe never saw it. Once
    Stripe's id of what was made (``pi_…``, ``re_…``) is known it is kept, so that the same key
    sent again, even after Stripe forgets its idempotency keys (24 hours), reads that object back
    instead of creating another."""

    idempotency_key = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=8, choices=StripeAttemptKind.choices)
    #: A charge's Stripe customer and PaymentMethod (``cus_…``, ``pm_…``).
    customer = models.CharField(max_length=255, blank=True, default="")
    payment_method = models.CharField(max_length=255, blank=True, default="")
    #: A refund's PaymentIntent (``pi_…``).
    refunded_intent = models.CharField(max_length=255, blank=True, default="")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    #: What Stripe made: the PaymentIntent or Refund id (empty until an answer names it).
    stripe_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "Stripe attempt"

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key} {self.stripe_id or '(no answer)'}"


class StripeEvent(models.Model):
    """A Stripe webhook event received and handled, by Stripe's event id (unique): a replayed or
    re-delivered event is answered at once without being handled again."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    #: The Stripe object the event is about (``pi_…``, ``ch_…``) and what Prorata did with it.
    object_id = models.CharField(max_length=255, blank=True, default="")
    outcome = models.CharField(max_length=100, blank=True, default="")
    received_at = models.DateTimeField()

    class Meta:
        verbose_name = "Stripe event"

    def __str__(self) -> str:
        return f"{self.event_id} {self.type} ({self.outcome})"
