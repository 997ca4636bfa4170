"""The staff's money actions and their limits (DESIGN §5; issue 14).

- :class:`StaffLimits`: per currency, set by operators in the console (audited as
  ``setting.staff_limits.*``): the refund amount above which a second staff member approves, and
  the largest credit adjustment a support agent or an advisor may grant.
- :class:`StaffRefund`: one refund of a paid invoice asked by a staff member: who, on whose behalf,
  why, from which IP; its approval by someone else when over the threshold; the credit note and
  the gateway refund it produced. While it waits for approval its amount is reserved: the checks
  of every later refund of the invoice count it.
- :class:`CreditAdjustment`: credit granted to an account by staff, with the reason, as a credit
  note on the account's latest invoice.

Written only by :mod:`prorata.console.services`. Amounts are integer minor units of ``currency``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import Account


class StaffLimits(models.Model):
    currency = models.CharField(_("currency"), max_length=3, unique=True)
    refund_approval_above = models.BigIntegerField(
        _("refunds above this need a second approval (minor units)"), default=50_000)
    agent_credit_cap = models.BigIntegerField(
        _("largest credit adjustment by a support agent (minor units)"), default=10_000)
    advisor_credit_cap = models.BigIntegerField(
        _("largest credit adjustment by an advisor (minor units)"), default=50_000)

    class Meta:
        verbose_name = _("staff limits")
        verbose_name_plural = _("staff limits")
        constraints = [
            models.CheckConstraint(
                condition=Q(refund_approval_above__gte=0, agent_credit_cap__gte=0,
                            advisor_credit_cap__gte=0),
                name="staff_limits_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Staff limits in {self.currency}"


class StaffRefundStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting", _("awaiting approval")
    #: Credit note issued, the gateway refund sent (or about to be).
    PENDING = "pending", _("pending")
    REFUNDED = "refunded", _("refunded")
    #: The gateway refused: the credit note stays unpaid, its amount stays as account credit.
    FAILED = "failed", _("refund failed")
    REJECTED = "rejected", _("rejected")


class StaffRefund(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey("billing.Document", on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=StaffRefundStatus.choices)
    #: From the form shown to the agent: the same submission twice refunds once.
    idempotency_key = models.CharField(max_length=100, unique=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     related_name="+")
    requested_ip = models.GenericIPAddressField(null=True, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    approved_ip = models.GenericIPAddressField(null=True, blank=True)
    support_request = models.ForeignKey("support.SupportRequest", null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="+")
    credit_note = models.ForeignKey("billing.Document", null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    refund = models.ForeignKey("billing.Refund", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    message = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="staff_refund_positive"),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=models.F("requested_by")),
                name="staff_refund_four_eyes"),
        ]
        indexes = [models.Index(fields=["invoice", "status"], name="staff_refund_invoice")]

    def __str__(self) -> str:
        return f"Refund of {self.amount} {self.currency} on {self.invoice} ({self.status})"


class CreditAdjustment(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    reason = models.CharField(max_length=500)
    idempotency_key = models.CharField(max_length=100, unique=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="+")
    ip = models.GenericIPAddressField(null=True, blank=True)
    credit_note = models.ForeignKey("billing.Document", on_delete=models.PROTECT,
                                    related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_adjustment_positive"),
        ]

    def __str__(self) -> str:
        return f"Credit of {self.amount} {self.currency} to {self.account}"
