"""Webhooks out: the operators' endpoints, the events written with the business change, and one
delivery per (event, endpoint) driven by the delivery job (:mod:`prorata.webhooks.delivery`).

An event is written in the transaction of the change it reports (:mod:`prorata.webhooks.events`),
with one :class:`WebhookDelivery` per active endpoint subscribed to its type: a rollback takes them
with it, a crash after the commit leaves them to deliver. ``event_id`` (``evt_…``) is the id the
receiver sees, the same on every attempt and replay, so that it can drop a repeat.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    """Every event type an endpoint may subscribe to (docs/webhooks.md says what each carries)."""

    INVOICE_CREATED = "invoice.created", "invoice.created"
    INVOICE_PAID = "invoice.paid", "invoice.paid"
    INVOICE_PAYMENT_FAILED = "invoice.payment_failed", "invoice.payment_failed"
    CREDIT_NOTE_CREATED = "credit_note.created", "credit_note.created"
    REFUND_SUCCEEDED = "refund.succeeded", "refund.succeeded"
    SUBSCRIPTION_CREATED = "subscription.created", "subscription.created"
    SUBSCRIPTION_UPDATED = "subscription.updated", "subscription.updated"
    SUBSCRIPTION_RENEWAL_CANCELLED = ("subscription.renewal_cancelled",
                                      "subscription.renewal_cancelled")
    SUBSCRIPTION_EXPIRED = "subscription.expired", "subscription.expired"
    SUBSCRIPTION_REACTIVATED = "subscription.reactivated", "subscription.reactivated"
    LICENSE_ASSIGNED = "license.assigned", "license.assigned"
    LICENSE_UNASSIGNED = "license.unassigned", "license.unassigned"
    ENTITLEMENT_CHANGED = "entitlement.changed", "entitlement.changed"
    CUSTOMER_CREATED = "customer.created", "customer.created"


class WebhookEndpoint(models.Model):
    """A URL of the operator's backend that receives the events of ``event_types``, signed with
    ``secret`` (and, until ``previous_secret_until``, also with ``previous_secret``: the overlap
    of a rotation). Written by :mod:`prorata.webhooks.services` only (audited).

    ``failing_since``: set when a delivery to it was given up after three days of failures (the
    console flags it), cleared by its next successful delivery.
    """

    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=200, blank=True, default="")
    event_types = models.JSONField(_("event types"), default=list)
    secret = models.CharField(_("signing secret"), max_length=100)
    previous_secret = models.CharField(_("previous signing secret"), max_length=100, blank=True,
                                       default="")
    previous_secret_until = models.DateTimeField(_("previous secret valid until"), null=True,
                                                 blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """One event, as every endpoint receives it: ``{"id", "type", "created", "api_version",
    "data"}``. ``dedupe_key`` names the fact (``invoice.created:42``): written twice, one row."""

    event_id = models.CharField(_("event id"), max_length=40, unique=True)
    dedupe_key = models.CharField(_("deduplication key"), max_length=200, unique=True)
    type = models.CharField(_("type"), max_length=64, choices=EventType.choices)
    api_version = models.CharField(_("API version"), max_length=20)
    created_at = models.DateTimeField(_("created at"))
    data = models.JSONField(_("data"), default=dict)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")


class WebhookDelivery(models.Model):
    """The delivery of one event to one endpoint. ``attempts`` counts the attempts made;
    ``next_attempt_at`` is when a pending one is due (project clock; while an attempt is in
    flight, the end of its lease). ``created_at`` is the event's: retries stop three days after
    it (:data:`prorata.webhooks.delivery.RETRY_FOR`)."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE,
                                 related_name="deliveries")
    status = models.CharField(_("status"), max_length=10, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    created_at = models.DateTimeField(_("created at"))
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("last HTTP status"), null=True,
                                                        blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"],
                                    name="webhook_delivery_once_per_endpoint"),
        ]
        indexes = [
            # Each endpoint's claim: its due pending deliveries, oldest first.
            models.Index(fields=["endpoint", "next_attempt_at", "id"],
                         condition=Q(status="pending"), name="webhook_due_pending"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"
