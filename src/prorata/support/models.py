"""Support requests (DESIGN §1 S11, S13; S3, S14): billing questions, refund and downgrade requests
that customers send from the billing center, as threads of messages with the staff.

A request has a kind (billing question, refund request naming the invoice, plan downgrade request
naming the target plan, other), a status (open → waiting on customer → resolved; a customer's reply
reopens it), an optional assignee (the staff member handling it) and messages in both directions.
Written only by :mod:`prorata.support.services`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import Account


class SupportRequestKind(models.TextChoices):
    BILLING_QUESTION = "billing_question", _("billing question")
    REFUND_REQUEST = "refund_request", _("refund request")
    DOWNGRADE_REQUEST = "downgrade_request", _("plan downgrade request")
    OTHER = "other", _("other")


class SupportRequestStatus(models.TextChoices):
    #: Staff have to act (new, or the customer replied).
    OPEN = "open", _("open")
    #: Staff answered and wait for the customer.
    WAITING = "waiting", _("waiting on customer")
    RESOLVED = "resolved", _("resolved")


class SupportRequest(models.Model):
    """One request of an account's member to the support team (or to the account's advisor)."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="support_requests",
        verbose_name=_("account"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("sent by"),
    )
    kind = models.CharField(_("kind"), max_length=24, choices=SupportRequestKind.choices)
    status = models.CharField(_("status"), max_length=8, choices=SupportRequestStatus.choices,
                              default=SupportRequestStatus.OPEN)
    #: The invoice a refund request is about.
    invoice = models.ForeignKey(
        "billing.Document", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("invoice"),
    )
    #: What a downgrade request asks for: the product, plan, cycle and license count.
    product_code = models.CharField(_("product"), max_length=40, blank=True, default="")
    target_plan = models.CharField(_("target plan"), max_length=40, blank=True, default="")
    target_cycle = models.CharField(_("target billing period"), max_length=40, blank=True,
                                    default="")
    target_quantity = models.PositiveIntegerField(_("target licenses"), null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("assigned to"), limit_choices_to={"is_staff": True},
    )
    created_at = models.DateTimeField(_("created at"))
    #: The last message's instant: the queue shows the longest waiting first.
    updated_at = models.DateTimeField(_("last message at"))
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("support request")
        verbose_name_plural = _("support requests")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "created_at"], name="support_request_open"),
            models.Index(fields=["account", "created_at"], name="support_request_account"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="resolved") | Q(resolved_at__isnull=True),
                name="support_request_resolved_at_when_resolved",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} ({self.account})"

    @property
    def message(self) -> str:
        """The opening message's text."""
        first = self.messages.order_by("created_at", "id").first()
        return first.body if first is not None else ""


class SupportMessage(models.Model):
    """One message of a request's thread, from the customer's side or from staff."""

    request = models.ForeignKey(SupportRequest, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="+")
    from_staff = models.BooleanField(default=False)
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["request", "created_at"], name="support_message_thread")]

    def __str__(self) -> str:
        return f"#{self.request_id} {self.author} {self.created_at:%Y-%m-%d %H:%M}"
