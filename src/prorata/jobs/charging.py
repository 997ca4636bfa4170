"""The billing run's charge step and dunning: each pending renewal payment through the gateway.

Charging is not invoicing (DESIGN §8): the gateway is called with the payment's idempotency key,
one payment at a time, outside any database transaction; its outcome is then recorded in a short
transaction. A payment whose outcome is unknown (timeout, crash) stays pending and is driven again
with the *same* key, which the gateway answers with the first outcome: a card is never charged
twice for one attempt.

Dunning: a failed charge puts the subscription ``past_due`` and retries 1, 3 and 7 days after the
first failure (:data:`prorata_core.lifecycle.RETRY_DAYS`), with an e-mail each time; after the last failure the
subscription expires. A charge the customer's bank wants them to authenticate (3-D Secure: off
session nobody can) is not a refusal: the payment and the renewal say ``requires_action``, the
e-mail asks the customer to confirm the payment on Pay now (where they authenticate it), and the
schedule goes on exactly as after a refusal if they do not. The customer's own attempts between
two retries (Pay now) never move the schedule: it counts by the instants it planned.

Who may call: :func:`~prorata.jobs.billing_run.bill_run`. A success is recorded by the same
service as Pay now's (:func:`prorata.billing.renewals.renewal_payment_succeeded`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models.functions import Mod
from django.urls import reverse

from prorata.billing.locks import lock_account, lock_subscriptions
from prorata.billing.models import Payment, PaymentStatus
from prorata.billing.renewals import (
    default_cards,
    renewal_attempt_create,
    renewal_dunning_ended,
    renewal_of_payment,
    renewal_payment_succeeded,
    subscription_item,
)
from prorata.billing.services import invoice_payment_failed, notify_billing_contacts
from prorata.common import faults
from prorata.common.clock import format_instant
from prorata.common.db import JOB_ATTEMPTS, WriterPacer, retry_transient
from prorata.jobs.models import BETWEEN_ATTEMPTS, Renewal, RenewalStatus
from prorata.notifications.context import money_json
from prorata.payments.gateway import ChargeOutcome, get_gateway
from prorata.subscriptions.transitions import subscription_transition
from prorata_core.errors import ProrataError
from prorata_core.lifecycle import Event, Status, attempts_made_by, is_allowed, next_attempt_at
from prorata_core.money import Money

if TYPE_CHECKING:
    from prorata.jobs.billing_run import RunStats

logger = logging.getLogger(__name__)


def charge_due(*, at: datetime, stats: RunStats, partition: tuple[int, int] | None = None) -> None:
    """Start the dunning retries that are due, then drive every pending renewal payment through
    the gateway, one at a time, outside any transaction."""
    _start_retries(at=at, partition=partition)
    pending = Payment.objects.filter(
        status=PaymentStatus.PENDING, idempotency_key__startswith="renewal:"
    )
    if partition is not None:
        index, count = partition
        pending = pending.annotate(_part=Mod("account_id", count)).filter(_part=index)
    gateway, pacer = get_gateway(), WriterPacer()
    for payment in pending.select_related("payment_method", "invoice").order_by("id").iterator():
        pacer.pause()
        if payment.payment_method is None or payment.payment_method.removed_at is not None:
            _record_failure(payment.pk, at=at, code="no_payment_method",
                            message="There is no card on file: add one to pay.", stats=stats)
            continue
        try:
            result = gateway.charge(
                token=payment.payment_method.token,
                amount=Money(payment.amount, payment.currency),
                idempotency_key=payment.idempotency_key,
                description=f"Invoice {payment.invoice.number}", off_session=True,
            )
        except ProrataError:
            raise  # refused by the gateway before any money moved: a defect to see, not retry
        except Exception:
            # No answer (a timeout, an HTTP 500, a lost connection): maybe charged. Left pending
            # like an unknown outcome, and the next payments charged: one payment's silence must
            # not stop the run's charge step (it did: the exception ended the run).
            logger.exception("Gateway charge for renewal payment %s did not answer", payment.pk)
            stats.unknown += 1
            continue
        faults.point("after_gateway_call")
        if result.outcome is ChargeOutcome.SUCCEEDED:
            if renewal_payment_succeeded(payment_id=payment.pk, reference=result.reference, at=at):
                stats.charged += 1
            faults.point("after_payment_commit")
        elif result.outcome is ChargeOutcome.UNKNOWN:
            stats.unknown += 1  # left pending: the next run asks again with the same key
        elif result.outcome is ChargeOutcome.REQUIRES_ACTION:
            # Off session nobody can authenticate: the customer is asked to, on Pay now.
            _record_failure(payment.pk, at=at, code=AUTHENTICATION_REQUIRED,
                            message=result.message, stats=stats, requires_action=True,
                            reference=result.reference)
        else:
            _record_failure(payment.pk, at=at, code=result.outcome.value, message=result.message,
                            stats=stats, reference=result.reference)


@retry_transient(attempts=JOB_ATTEMPTS)
def _start_retries(*, at: datetime, partition: tuple[int, int] | None) -> None:
    """A new payment attempt for every renewal whose retry is due, on the current default card."""
    due = Renewal.objects.filter(status__in=BETWEEN_ATTEMPTS, next_attempt_at__lte=at)
    if partition is not None:
        index, count = partition
        due = due.annotate(_part=Mod("account_id", count)).filter(_part=index)
    for renewal_id in due.values_list("id", flat=True):
        with transaction.atomic():
            renewal = Renewal.objects.select_related("invoice").get(pk=renewal_id)
            lock_account(renewal.account_id)
            renewal = Renewal.objects.select_related("invoice").get(pk=renewal_id)
            if renewal.status not in BETWEEN_ATTEMPTS:
                continue
            card = default_cards({renewal.account_id}).get(renewal.account_id)
            renewal_attempt_create(renewal=renewal, card=card, at=at)


#: The failure code of an attempt the customer's bank wants authenticated (Stripe's word for it).
AUTHENTICATION_REQUIRED = "authentication_required"


@retry_transient(attempts=JOB_ATTEMPTS)
def _record_failure(
    payment_id: int, *, at: datetime, code: str, message: str, stats: RunStats,
    requires_action: bool = False, reference: str = "",
) -> None:
    """Record an attempt that was not charged: refused (``failed``), or (``requires_action``)
    waiting for an authentication that nobody was there to give. Either way the subscription is
    ``past_due`` and retried on the dunning schedule (:func:`_next_attempt`), with an e-mail
    naming the item, the amount, the next attempt and the Pay now page: "payment failed", or
    "your bank asks you to confirm the payment". After the last retry, the end of dunning: the
    invoice voided by a credit note, the subscription expired, and an expiry e-mail saying how
    to come back (no "pay now": nothing is due)."""
    with transaction.atomic():
        payment = Payment.objects.get(pk=payment_id)
        account = lock_account(payment.account_id)
        payment = Payment.objects.select_related("invoice").get(pk=payment_id)
        if payment.status != PaymentStatus.PENDING:
            return
        payment.status = PaymentStatus.REQUIRES_ACTION if requires_action else PaymentStatus.FAILED
        # completed_at set: this attempt is over (a requires_action one too: off session, its
        # authentication is asked for by a new attempt on Pay now, never by this one).
        payment.failure_code, payment.message, payment.completed_at = code, message[:2000], at
        payment.reference = reference[:255]  # the gateway's id of the attempt, if it made one
        payment.save(update_fields=["status", "failure_code", "message", "completed_at",
                                    "reference"])
        renewal = renewal_of_payment(payment)
        (subscription,) = lock_subscriptions(account_id=account.pk, ids=[renewal.subscription_id])
        invoice = payment.invoice
        renewal.next_attempt_at = _next_attempt(renewal, payment, at=at)
        renewal.first_failed_at = renewal.first_failed_at or at
        if renewal.next_attempt_at is not None:
            renewal.status = (RenewalStatus.REQUIRES_ACTION if requires_action
                              else RenewalStatus.RETRYING)
            to, event = Status.PAST_DUE, Event.PAYMENT_FAILED
        else:
            renewal.status, to, event = RenewalStatus.FAILED, Status.EXPIRED, Event.EXPIRED
            stats.expired += 1
        renewal.save(update_fields=["status", "first_failed_at", "next_attempt_at"])
        invoice_payment_failed(invoice=invoice, payment=payment)
        # A subscription that ended meanwhile (its renewal cancelled while past due) stays ended.
        if is_allowed(Status(subscription.status), to, event):
            subscription_transition(
                subscription=subscription, to=to, event=event, at=at,
                before={"invoice": invoice.number, "attempt": renewal.attempts},
                after={"reason": code})
        if renewal.next_attempt_at is None:
            amount_due = invoice.amount_due
            note = renewal_dunning_ended(renewal=renewal, account=account, at=at)
            context: dict[str, Any] = {
                "product": subscription.product.name, "period_end": format_instant(at),
                "reason": "payment_failed", "document_number": invoice.number,
                "amount_due": money_json(amount_due, payment.currency),
                "url": reverse("billing:account", args=[account.pk]),
            }
            if note is not None:
                context["credit_note_number"] = note.number
            notify_billing_contacts(
                account=account, template="subscription_expired", context=context,
                dedupe_key=f"expired:{subscription.pk}:{format_instant(renewal.period_start)}",
            )
        else:
            template = "payment_requires_action" if requires_action else "payment_failed"
            context = {
                "amount_due": money_json(invoice.amount_due, payment.currency),
                "document_number": invoice.number,
                "next_retry_at": format_instant(renewal.next_attempt_at),
                "items": [subscription_item(subscription)],
                "url": reverse("billing:pay", args=[account.pk, invoice.pk]),
            }
            if not requires_action:
                context["reason"] = message
            notify_billing_contacts(account=account, template=template, context=context,
                                    dedupe_key=f"{template}:{payment.pk}")
    if requires_action:
        stats.requires_action += 1
    else:
        stats.declined += 1


def _next_attempt(renewal: Renewal, payment: Payment, *, at: datetime) -> datetime | None:
    """When the charge step tries ``renewal`` again after ``payment`` failed at ``at`` (or
    required an authentication): the dunning schedule from the first failure
    (:func:`~prorata_core.lifecycle.next_attempt_at`), counted by the retries it planned, not by
    attempts made, so that the customer's own attempts on Pay now (refused, or an authentication
    failed or abandoned) never bring a retry or the expiry closer. A customer's attempt made
    before the planned retry was due, whose refusal is recorded here (its answer was unknown at
    first), leaves the schedule as it was."""
    if renewal.first_failed_at is None:
        return next_attempt_at(first_failed_at=at, attempts_made=1)
    planned = renewal.next_attempt_at
    if planned is None or payment.created_at < planned:
        return planned
    try:
        made = attempts_made_by(first_failed_at=renewal.first_failed_at, retry_at=planned)
    except ValueError:  # planned by another schedule than today's: count the attempts instead
        made = renewal.attempts
    return next_attempt_at(first_failed_at=renewal.first_failed_at, attempts_made=made)
