"""The transactional outbox (DESIGN §7, §8): e-mails written in the business transaction, delivered
at least once by a job (:func:`prorata.notifications.outbox.outbox_deliver`).

A row names a template and holds plain JSON context, so the e-mail is rendered at delivery, in the
recipient's ``language``. ``dedupe_key`` is unique: enqueueing the same key twice keeps one row, and the
key travels in the e-mail's headers so that a receiver can drop a repeated delivery.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")


class OutboxMessage(models.Model):
    """One e-mail to send. Written by ``outbox_enqueue``, updated by ``outbox_deliver`` only.

    ``attachments`` is a list of ``{"kind": "invoice" | "credit_note", "id": int}``, rendered at delivery
    by the registered attachment renderers. ``attempts`` counts delivery attempts made so far;
    ``next_attempt_at`` is when a pending message is due (project clock).
    """

    dedupe_key = models.CharField(_("deduplication key"), max_length=200, unique=True)
    to = models.EmailField(_("to"))
    template = models.CharField(_("template"), max_length=64)
    context = models.JSONField(_("context"), default=dict)
    language = models.CharField(_("language"), max_length=8)
    attachments = models.JSONField(_("attachments"), default=list)
    status = models.CharField(
        _("status"), max_length=8, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    last_error = models.TextField(_("last error"), blank=True, default="")
    created_at = models.DateTimeField(_("created at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("outgoing e-mail")
        verbose_name_plural = _("outgoing e-mails")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The delivery job's claim: due pending rows, oldest first.
            models.Index(
                fields=["next_attempt_at", "id"], condition=Q(status="pending"),
                name="outbox_due_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} → {self.to} ({self.status})"
