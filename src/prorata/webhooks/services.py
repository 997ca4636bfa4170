"""Writes of the operators' webhook endpoints and of replays (the console calls these).

Each is one transaction with its audit entry (``webhook.endpoint.create`` / ``.change`` /
``.rotate_secret``, ``webhook.delivery.replay``); a secret is never written to the audit log.
Bad input raises :class:`~prorata_core.errors.ValidationError` with nothing written.
Who may call: the console's webhook pages (operators and superusers), tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.db import transaction

from prorata.accounts.models import User
from prorata.accounts.services import audit_record
from prorata.common.cardnumbers import mask_card_numbers
from prorata.common.clock import format_instant, now
from prorata.webhooks.events import EVENT_TYPES
from prorata.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from prorata.webhooks.signing import new_secret
from prorata_core.errors import ValidationError

#: How long the old secret still signs deliveries after a rotation, by default.
ROTATION_OVERLAP = timedelta(hours=24)
#: The longest overlap an operator may choose.
LONGEST_OVERLAP = timedelta(days=7)


def checked_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise ValidationError(
            "Enter the endpoint's full URL, starting with https:// (or http://), such as "
            "https://billing.example.com/prorata/webhooks.", url=url)
    if parts.username or parts.password:
        raise ValidationError("Leave user names and passwords out of the URL: deliveries are "
                              "signed instead.", url=url)
    return url


def checked_event_types(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    unknown = [kind for kind in chosen if kind not in EVENT_TYPES]
    if unknown or not chosen:
        raise ValidationError(
            f"Choose at least one event type among {', '.join(sorted(EVENT_TYPES))}"
            + (f" ({', '.join(unknown)} is not one)." if unknown else "."),
            event_types=chosen)
    return chosen


def _described(endpoint: WebhookEndpoint) -> dict[str, object]:
    return {"url": endpoint.url, "description": endpoint.description,
            "event_types": list(endpoint.event_types), "is_active": endpoint.is_active}


@dataclass(frozen=True)
class EndpointWithSecret:
    """A created or rotated endpoint, and its new signing secret (shown once to the operator)."""

    endpoint: WebhookEndpoint
    secret: str


def webhook_endpoint_create(*, actor: User, url: str, event_types: Iterable[str],
                            description: str = "", ip: str | None = None) -> EndpointWithSecret:
    """Register an endpoint receiving ``event_types``, with a fresh signing secret; audited."""
    url, types = checked_url(url), checked_event_types(event_types)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            url=url, event_types=types, description=mask_card_numbers(description.strip()[:200]),
            secret=new_secret(), created_at=now(), created_by=actor if actor.pk else None)
        audit_record(actor=actor, action="webhook.endpoint.create", obj=endpoint,
                     after=_described(endpoint), ip=ip)
    return EndpointWithSecret(endpoint, endpoint.secret)


def webhook_endpoint_update(*, actor: User, endpoint_id: int, url: str,
                            event_types: Iterable[str], description: str = "",
                            is_active: bool = True, ip: str | None = None) -> WebhookEndpoint:
    """Change an endpoint's URL, event types, description or whether it is active; audited.
    A deactivated endpoint gets no new events and its pending deliveries wait."""
    url, types = checked_url(url), checked_event_types(event_types)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        before = _described(endpoint)
        endpoint.url, endpoint.event_types, endpoint.is_active = url, types, is_active
        endpoint.description = mask_card_numbers(description.strip()[:200])
        after = _described(endpoint)
        if before != after:
            endpoint.save(update_fields=["url", "event_types", "is_active", "description"])
            audit_record(actor=actor, action="webhook.endpoint.change", obj=endpoint,
                         before=before, after=after, ip=ip)
    return endpoint


def webhook_endpoint_rotate_secret(*, actor: User, endpoint_id: int,
                                   overlap: timedelta = ROTATION_OVERLAP,
                                   ip: str | None = None) -> EndpointWithSecret:
    """Give the endpoint a new signing secret; for ``overlap`` (0 to 7 days) deliveries are
    signed with both, the new one first, so that the receiver can switch without a refusal.
    The previous secret of an earlier rotation stops signing now. Audited (without secrets)."""
    if not timedelta(0) <= overlap <= LONGEST_OVERLAP:
        raise ValidationError("Choose an overlap between 0 and 7 days.",
                              hours=overlap.total_seconds() / 3600)
    at = now()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        endpoint.previous_secret = endpoint.secret if overlap else ""
        endpoint.previous_secret_until = at + overlap if overlap else None
        endpoint.secret = new_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
        audit_record(actor=actor, action="webhook.endpoint.rotate_secret", obj=endpoint,
                     after={"url": endpoint.url, "previous_secret_until": (
                         format_instant(endpoint.previous_secret_until)
                         if endpoint.previous_secret_until else None)}, ip=ip)
    return EndpointWithSecret(endpoint, endpoint.secret)


def webhook_deliveries_replay(*, actor: User, ids: Iterable[int], ip: str | None = None) -> int:
    """Send these deliveries again at the next run, whatever their status (the same event id:
    the receiver recognises the repeat); a given-up one gets three more days. Audited; returns
    how many."""
    wanted = sorted(set(ids))
    at = now()
    with transaction.atomic():
        rows = list(WebhookDelivery.objects.select_for_update().filter(pk__in=wanted)
                    .values_list("id", "status"))
        if not rows:
            return 0
        WebhookDelivery.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            status=DeliveryStatus.PENDING, next_attempt_at=at, delivered_at=None)
        # A delivery given up had its three days: the replay starts them again.
        WebhookDelivery.objects.filter(
            pk__in=[pk for pk, status in rows if status == DeliveryStatus.FAILED]
        ).update(created_at=at)
        audit_record(actor=actor, action="webhook.delivery.replay",
                     after={"deliveries": [pk for pk, _ in rows],
                            "statuses": sorted({status for _, status in rows})}, ip=ip)
    return len(rows)
