"""Stripe's webhooks into Prorata: asynchronous outcomes of PaymentIntents and refunds.

Stripe posts each event to ``/payments/stripe/v1/webhook`` (:mod:`prorata.payments.stripe_views`)
with a ``Stripe-Signature`` header. :func:`stripe_webhook_handle`:

1. verifies the signature with the endpoint's secret (``PRORATA_STRIPE_WEBHOOK_SECRET``) by the
   library's ``stripe.Webhook.construct_event``, and the signature's timestamp against the
   project clock (five minutes either way: :data:`TOLERANCE`; the wall clock in production);
   a bad or missing signature is refused (:class:`StripeSignatureInvalid`, 400) with nothing done;
2. answers an event id already handled at once (Stripe delivers at least once, and retries);
3. for ``payment_intent.succeeded``, ``payment_intent.payment_failed``,
   ``payment_intent.requires_action`` and ``payment_intent.canceled``: settles the Prorata
   payment whose idempotency key is in the PaymentIntent's metadata through
   :func:`prorata.subscriptions.services.payment_settle`, the reconciliation's own writer, which
   asks the gateway for the current state and applies an order once (never charges);
   for ``charge.refunded``: completes a Prorata refund still pending by the same road
   (:func:`prorata.billing.services.refunds_settle`); other types are acknowledged and ignored;
4. records the event (:class:`~prorata.payments.models.StripeEvent`) with what was done.

Handling before recording: an event whose handling failed is not marked seen, so Stripe's retry
handles it again; two deliveries at once are both safe, the writers being idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from prorata.common.clock import now
from prorata.payments.errors import StripeSignatureInvalid
from prorata.payments.models import StripeEvent
from prorata.payments.stripe_gateway import METADATA_KEY

logger = logging.getLogger(__name__)

#: How far a signature's timestamp may be from the project clock (Stripe's default: 5 minutes).
TOLERANCE = timedelta(minutes=5)

PAYMENT_EVENTS = {
    "payment_intent.succeeded", "payment_intent.payment_failed",
    "payment_intent.requires_action", "payment_intent.canceled",
}
REFUND_EVENTS = {"charge.refunded", "refund.updated"}


@dataclass(frozen=True)
class Handled:
    """What became of one delivery: the event's id and type, what was done, and whether the
    event had been handled before (a replay)."""

    event_id: str
    type: str
    outcome: str
    replayed: bool = False


def stripe_webhook_handle(*, payload: bytes, signature: str | None) -> Handled:
    """Verify, handle once and record one delivery (see the module's docstring). Raises
    :class:`StripeSignatureInvalid` for a delivery that is not Stripe's, with nothing done."""
    event = _verified(payload, signature).to_dict()
    event_id, kind = str(event.get("id") or ""), str(event.get("type") or "")
    if not event_id:
        raise StripeSignatureInvalid("The event has no id.", reason="malformed")
    if StripeEvent.objects.filter(event_id=event_id).exists():
        return Handled(event_id, kind, "replayed", replayed=True)
    obj = (event.get("data") or {}).get("object") or {}
    object_id = str(obj.get("id") or "")
    if kind in PAYMENT_EVENTS:
        outcome = _payment_event(obj)
    elif kind in REFUND_EVENTS:
        outcome = _refund_event(kind, obj)
    else:
        outcome = "ignored"
    try:
        with transaction.atomic():
            StripeEvent.objects.create(event_id=event_id[:255], type=kind[:100],
                                       object_id=object_id[:255], outcome=outcome[:100],
                                       received_at=now())
    except IntegrityError:
        return Handled(event_id, kind, "replayed", replayed=True)  # delivered twice at once
    logger.info("Stripe event %s (%s) on %s: %s", event_id, kind, object_id, outcome)
    return Handled(event_id, kind, outcome)


def _verified(payload: bytes, signature: str | None) -> stripe.Event:
    secret = settings.PRORATA_STRIPE_WEBHOOK_SECRET
    if not secret:
        raise StripeSignatureInvalid("No webhook secret is configured.", reason="no_secret")
    try:
        # tolerance=0: the library would compare with the wall clock; the project clock is
        # compared below instead (they are the same in production).
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=0)
    except (stripe.SignatureVerificationError, ValueError) as bad:
        raise StripeSignatureInvalid(
            "The Stripe-Signature header does not match this body.", reason="signature"
        ) from bad
    stamp = _timestamp(signature or "")
    if stamp is None or abs(now() - stamp) > TOLERANCE:
        raise StripeSignatureInvalid(
            "The signature's timestamp is more than five minutes away from now.",
            reason="timestamp")
    return event


def _timestamp(header: str) -> datetime | None:
    for item in header.split(","):
        name, _equals, value = item.strip().partition("=")
        if name == "t" and value.isdigit():
            return datetime.fromtimestamp(int(value), tz=UTC)
    return None


def _payment_event(intent: dict[str, object]) -> str:
    from prorata.subscriptions.services import payment_settle

    metadata = intent.get("metadata") or {}
    key = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
    if not key:
        return "not_prorata"  # a PaymentIntent made elsewhere (the dashboard, another app)
    return payment_settle(idempotency_key=str(key))


def _refund_event(kind: str, obj: dict[str, object]) -> str:
    from prorata.billing.services import refunds_settle

    intent = obj.get("payment_intent")  # a Charge's or a Refund's PaymentIntent
    if not intent:
        return "not_prorata"
    return refunds_settle(reference=str(intent))
