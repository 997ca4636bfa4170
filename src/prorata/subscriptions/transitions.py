"""The one writer of a subscription's status (STYLE: "a state machine needs a home").

:func:`subscription_transition` moves a subscription along :data:`prorata_core.lifecycle.TRANSITIONS`
and writes, together, its new ``status``, its ``version`` + 1 (a quote made before is stale) and
its history entry (:class:`~prorata.subscriptions.models.SubscriptionEvent`). A move the table does
not allow raises :class:`~prorata_core.errors.TransitionRefused` with nothing written. Adding a
state means adding it to the core table and, where it is entered, calling this service.

Who may call: services and jobs, inside ``transaction.atomic()``, with the subscription's row
locked (:mod:`prorata.billing.locks`) or created in that transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction

from prorata.accounts.models import User
from prorata.common.clock import format_instant
from prorata.subscriptions.models import Order, Subscription, SubscriptionEvent
from prorata.subscriptions.queries import subscription_move
from prorata.webhooks.events import WebhookBatch
from prorata.webhooks.payloads import subscription_object
from prorata_core.lifecycle import Event, Status, check_transition

__all__ = ["StaleSubscription", "subscription_describe", "subscription_transition",
           "transition_webhook"]


class StaleSubscription(RuntimeError):
    """The row's stored status or version is not the one the caller read: it was not locked."""


def subscription_describe(subscription: Subscription) -> dict[str, Any]:
    """What a history entry records of a subscription (amounts in minor units of ``currency``,
    instants as ISO 8601 UTC). Reads its plan and cycle: load them with it."""
    return {
        "plan": subscription.plan.code, "cycle": subscription.cycle.code,
        "quantity": subscription.quantity, "unit_amount": subscription.unit_amount,
        "currency": subscription.currency, "status": subscription.status,
        "period_start": format_instant(subscription.period_start),
        "period_end": format_instant(subscription.period_end),
        "invoiced_amount": subscription.invoiced_amount, "version": subscription.version,
    }


def subscription_transition(
    *,
    subscription: Subscription,
    to: Status,
    event: Event,
    at: datetime,
    actor: User | None = None,
    order: Order | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    also: Sequence[str] = (),
    webhooks: WebhookBatch | None = None,
) -> SubscriptionEvent:
    """Move ``subscription`` to ``to`` by ``event`` at ``at`` (UTC) and return its history entry.

    The state it moves from is ``subscription.status`` as read (locked) by the caller, or ``None``
    for a subscription not saved yet, which is then inserted with ``version`` 1. A saved one is
    updated only if its stored status and version are still those read (else
    :class:`StaleSubscription`, nothing written); ``also`` names the other fields the caller
    changed on it that are saved with the status (a change's plan, period, amounts…).

    ``before`` / ``after`` are what the entry records (by default :func:`subscription_describe`
    before and after the move; ``before`` is ``None`` for a new subscription); their ``status``
    is always the transition's. Raises :class:`~prorata_core.errors.TransitionRefused` for a move
    the lifecycle table does not allow, with nothing changed.

    Each move is also a webhook event (:func:`transition_webhook`), written in the caller's
    transaction: added to ``webhooks`` when given (the caller saves the batch, as the set-based
    expiry does), else written at once.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("A transition is written inside transaction.atomic(), under the "
                           "subscription's lock.")
    adding = subscription._state.adding
    current = None if adding else Status(subscription.status)
    check_transition(current, to, event)
    if adding:
        recorded_before = None
    else:
        recorded_before = {**(before if before is not None else subscription_describe(subscription)),
                           "status": current.value}
    read_version = subscription.version
    subscription.status = to.value
    if adding:
        subscription.version = 1
        subscription.save(force_insert=True)
    else:
        subscription.version = read_version + 1
    recorded_after = {**(after if after is not None else subscription_describe(subscription)),
                      "status": to.value}
    entry = SubscriptionEvent(
        subscription=subscription, at=at, kind=event.value, before=recorded_before,
        after=recorded_after, order=order, actor=actor,
    )
    if adding:
        entry.save(force_insert=True)
    else:
        fields = {name: getattr(subscription, name) for name in also
                  if name not in ("status", "version")}
        # The guarded update and the entry: one statement on PostgreSQL.
        if not subscription_move(subscription=subscription, current=current.value,
                                 read_version=read_version, fields=fields, entry=entry):
            subscription.status, subscription.version = current, read_version
            raise StaleSubscription(
                f"Subscription {subscription.pk} is no longer {current} at version {read_version}: "
                "lock it (prorata.billing.locks) and read it again before changing its status.")
    batch = webhooks if webhooks is not None else WebhookBatch()
    transition_webhook(batch, subscription=subscription, event=event.value, adding=adding, at=at,
                       entry_id=entry.pk)
    if webhooks is None:
        batch.save()
    return entry


#: The webhook event of each lifecycle event (a subscription's first move is ``created``).
WEBHOOK_TYPES = {
    Event.REACTIVATED.value: "subscription.reactivated",
    Event.EXPIRED.value: "subscription.expired",
}


def transition_webhook(webhooks: WebhookBatch, *, subscription: Subscription, event: str,
                       adding: bool, at: datetime, entry_id: int) -> None:
    """Queue the webhook event of ``subscription``'s move by ``event`` (a lifecycle event, or
    ``renewal_cancelled`` / ``renewal_resumed``): ``subscription.created`` for a new one,
    ``.reactivated``, ``.expired``, ``.renewal_cancelled``, else ``subscription.updated``
    (a change, a failed renewal payment, a past-due renewal paid, a trial bought, the renewal
    resumed). ``data`` is the subscription as it is now, with ``cause``: ``event``. The key
    names the move's history entry (``entry_id``: one per move)."""
    kind = "subscription.created" if adding else WEBHOOK_TYPES.get(event) or (
        "subscription.renewal_cancelled" if event == "renewal_cancelled"
        else "subscription.updated")
    webhooks.add(kind, key=f"{kind}:{entry_id}", at=at,
                 data=lambda: {**subscription_object(subscription), "cause": event})
