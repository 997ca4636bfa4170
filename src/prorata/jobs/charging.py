"""The billing run's charge step and dunning: each pending renewal payment through the gateway.

Charging is not invoicing (DESIGN §8): the gateway is called with the payment's idempotency key,
one payment at a time, outside any database transaction; its outcome is then recorded in a short
transaction. A payment whose outcome is unknown (timeout, crash) stays pending and is driven again
with the *same* key, which the gateway answers with the first outcome: a card is never charged
twice for one attempt.

Dunning: a failed charge puts the subscription ``past_due`` and retries 1, 3 and 7 days after the
first failure (:data:`prorata_core.lifecycle.RETRY_DAYS`), with an e-mail each time; after the last failure the
subscription expires.

Who may call: :func:`~prorata.jobs.billing_run.bill_run`. A success is recorded by the same
service as Pay now's (:func:`prorata.billing.renewals.renewal_payment_succeeded`).
"""

from __future__ import annotations

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
)
from prorata.billing.services import invoice_payment_failed, notify_billing_contacts
from prorata.common.clock import format_instant
from prorata.common.db import JOB_ATTEMPTS, WriterPacer, retry_transient
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.context import money_json
from prorata.payments.gateway import ChargeOutcome, get_gateway
from prorata.subscriptions.models import Subscription
from prorata.subscriptions.transitions import subscription_transition
from prorata_core.lifecycle import Event, Status, is_allowed, next_attempt_at
from prorata_core.money import Money

if TYPE_CHECKING:
    from prorata.jobs.billing_run import RunStats

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
        result = gateway.charge(
            token=payment.payment_method.token, amount=Money(payment.amount, payment.currency),
            idempotency_key=payment.idempotency_key,
            description=f"Invoice {payment.invoice.number}", off_session=True,
        )
        if result.outcome is ChargeOutcome.SUCCEEDED:
            if renewal_payment_succeeded(payment_id=payment.pk, reference=result.reference, at=at):
                stats.charged += 1
        elif result.outcome is ChargeOutcome.UNKNOWN:
            stats.unknown += 1  # left pending: the next run asks again with the same key
        else:
            _record_failure(payment.pk, at=at, code=result.outcome.value, message=result.message,
                            stats=stats)


@retry_transient(attempts=JOB_ATTEMPTS)
def _start_retries(*, at: datetime, partition: tuple[int, int] | None) -> None:
    """A new payment attempt for every renewal whose retry is due, on the current default card."""
    due = Renewal.objects.filter(status=RenewalStatus.RETRYING, next_attempt_at__lte=at)
    if partition is not None:
        index, count = partition
        due = due.annotate(_part=Mod("account_id", count)).filter(_part=index)
    for renewal_id in due.values_list("id", flat=True):
        with transaction.atomic():
            renewal = Renewal.objects.select_related("invoice").get(pk=renewal_id)
            lock_account(renewal.account_id)
            renewal = Renewal.objects.select_related("invoice").get(pk=renewal_id)
            if renewal.status != RenewalStatus.RETRYING:
                continue
            card = default_cards({renewal.account_id}).get(renewal.account_id)
            renewal_attempt_create(renewal=renewal, card=card, at=at)


@retry_transient(attempts=JOB_ATTEMPTS)
def _record_failure(
    payment_id: int, *, at: datetime, code: str, message: str, stats: RunStats
) -> None:
    """Record a failed attempt: ``past_due`` and a retry on the dunning schedule, with a "payment
    failed" e-mail naming the item, the amount, the next attempt and the Pay now page; or, after
    the last retry, the end of dunning: the invoice voided by a credit note, the subscription
    expired, and an expiry e-mail saying how to come back (no "pay now": nothing is due)."""
    with transaction.atomic():
        payment = Payment.objects.get(pk=payment_id)
        account = lock_account(payment.account_id)
        payment = Payment.objects.select_related("invoice").get(pk=payment_id)
        if payment.status != PaymentStatus.PENDING:
            return
        payment.status, payment.failure_code, payment.message, payment.completed_at = (
            PaymentStatus.FAILED, code, message[:2000], at)
        payment.save(update_fields=["status", "failure_code", "message", "completed_at"])
        renewal = renewal_of_payment(payment)
        (subscription,) = lock_subscriptions(account_id=account.pk, ids=[renewal.subscription_id])
        invoice = payment.invoice
        first_failed = renewal.first_failed_at or at
        renewal.first_failed_at = first_failed
        renewal.next_attempt_at = next_attempt_at(first_failed_at=first_failed,
                                                  attempts_made=renewal.attempts)
        if renewal.next_attempt_at is not None:
            renewal.status, to, event = RenewalStatus.RETRYING, Status.PAST_DUE, Event.PAYMENT_FAILED
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
            notify_billing_contacts(
                account=account, template="payment_failed",
                dedupe_key=f"payment_failed:{payment.pk}",
                context={
                    "amount_due": money_json(invoice.amount_due, payment.currency),
                    "document_number": invoice.number, "reason": message,
                    "next_retry_at": format_instant(renewal.next_attempt_at),
                    "items": [subscription_item(subscription)],
                    "url": reverse("billing:pay", args=[account.pk, invoice.pk]),
                },
            )
    stats.declined += 1


def subscription_item(subscription: Subscription) -> dict[str, Any]:
    """A subscription as an e-mail names it (``outbox.TEMPLATES``' item shape)."""
    return {"product": subscription.product.name, "plan": subscription.plan.name,
            "licenses": subscription.quantity, "cycle": subscription.cycle.code,
            "previous": None}
