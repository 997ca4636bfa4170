"""Support requests (DESIGN §1 S11, S13): billing questions, refund and downgrade requests that
customers send from the billing center and staff answer in the console.

Written only by :mod:`prorata.support.services`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import Account


class SupportRequestKind(models.TextChoices):
    BILLING_QUESTION = "billing_question", _("billing question")
    REFUND_REQUEST = "refund_request", _("refund request")
    DOWNGRADE_REQUEST = "downgrade_request", _("downgrade request")


class SupportRequestStatus(models.TextChoices):
    OPEN = "open", _("open")
    CLOSED = "closed", _("closed")


class SupportRequest(models.Model):
    """One request of an account's member to the support team, and the staff's answer."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="support_requests",
        verbose_name=_("account"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("sent by"),
    )
    kind = models.CharField(_("kind"), max_length=24, choices=SupportRequestKind.choices)
    message = models.TextField(_("message"))
    status = models.CharField(_("status"), max_length=8, choices=SupportRequestStatus.choices,
                              default=SupportRequestStatus.OPEN)
    answer = models.TextField(_("answer"), blank=True, default="")
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="+", verbose_name=_("answered by"),
    )
    created_at = models.DateTimeField(_("created at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("support request")
        verbose_name_plural = _("support requests")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="support_request_open")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} ({self.account})"
