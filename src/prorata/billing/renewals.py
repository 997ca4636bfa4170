"""The card payments of renewal invoices: an attempt, its success, and Pay now.

A renewal invoice (written by the billing run, :mod:`prorata.jobs.invoicing`) is paid by card
attempts, each a pending :class:`~prorata.billing.models.Payment` with its own idempotency key
(:func:`renewal_payment_key`). The billing run's charge step (:mod:`prorata.jobs.charging`) and a
billing contact's Pay now (:func:`renewal_pay_now`) both record a success with
:func:`renewal_payment_succeeded`: the invoice paid, its ledger entry, the renewal settled, the
subscription out of ``past_due`` and the receipt queued, in one transaction.

Amounts are integer minor units; every instant is the caller's (the project clock's).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from django.db import transaction
from django.db.models import F

from prorata.accounts.models import Account, User
from prorata.accounts.services import audit_record
from prorata.billing.errors import NothingToPay
from prorata.billing.locks import lock_account
from prorata.billing.models import (
    Document,
    DocumentStatus,
    LedgerKind,
    Payment,
    PaymentMethodKind,
    PaymentStatus,
)
from prorata.billing.services import Movement, ledger_append, notify_billing_contacts
from prorata.common.clock import format_instant, now
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.context import money_json
from prorata.payments.gateway import ChargeOutcome, get_gateway
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata_core.money import Money


class Card(NamedTuple):
    """An account's default card as a payment attempt names it."""

    pk: int
    brand: str
    last4: str

    @property
    def label(self) -> str:
        return f"{self.brand} •••• {self.last4}"


def renewal_payment_key(subscription_id: int, period_start: datetime, attempt: int) -> str:
    """The idempotency key of card attempt ``attempt`` (1 = the first) for the renewal of
    ``subscription_id`` starting at ``period_start``: the gateway answers a key it has seen
    with its first outcome, so a retried call never charges twice."""
    return f"renewal:{subscription_id}:{format_instant(period_start)}:{attempt}"


def default_cards(account_ids: set[int]) -> dict[int, Card]:
    """Each account's default card (id, brand, last four digits), if it has one."""
    return {
        account_id: Card(pk, brand, last4)
        for account_id, pk, brand, last4 in PaymentMethod.objects.filter(
            account_id__in=account_ids, is_default=True, removed_at__isnull=True
        ).values_list("account_id", "id", "brand", "last4")
    }


def renewal_attempt_create(*, renewal: Renewal, card: Card | None, at: datetime) -> Payment:
    """A new pending card attempt for the amount due on ``renewal``'s invoice (``card`` None: no
    card on file, which the charge step records as a failure). Counts the attempt and marks the
    renewal ``charging``. Call inside a transaction, under the account's lock."""
    renewal.attempts += 1
    renewal.status = RenewalStatus.CHARGING
    renewal.save(update_fields=["attempts", "status"])
    return Payment.objects.create(
        account_id=renewal.account_id, invoice=renewal.invoice, method=PaymentMethodKind.CARD,
        payment_method_id=card.pk if card else None, method_label=card.label if card else "",
        currency=renewal.invoice.currency, amount=renewal.invoice.amount_due,
        status=PaymentStatus.PENDING,
        idempotency_key=renewal_payment_key(renewal.subscription_id, renewal.period_start,
                                            renewal.attempts),
        attempt=renewal.attempts, created_at=at,
    )


def renewal_of_payment(payment: Payment) -> Renewal:
    """The renewal whose invoice ``payment`` pays."""
    return Renewal.objects.select_related("subscription").get(invoice_id=payment.invoice_id)


def renewal_payment_succeeded(*, payment_id: int, reference: str, at: datetime) -> bool:
    """Record that the gateway took pending renewal payment ``payment_id``: the payment
    succeeded, the invoice paid by its amount, a ledger entry, the renewal paid, the subscription
    ``active`` again if it was ``past_due``, and a receipt to the billing contacts. Returns False
    when the payment was no longer pending (another run recorded it). Takes its own transaction
    and the account's lock."""
    with transaction.atomic():
        payment = Payment.objects.get(pk=payment_id)
        account = lock_account(payment.account_id)
        payment = Payment.objects.select_related("invoice").get(pk=payment_id)
        if payment.status != PaymentStatus.PENDING:
            return False
        payment.status, payment.reference, payment.completed_at = (
            PaymentStatus.SUCCEEDED, reference, at)
        payment.save(update_fields=["status", "reference", "completed_at"])
        invoice = payment.invoice
        invoice.amount_paid += payment.amount
        invoice.amount_due -= payment.amount
        if invoice.amount_due == 0:
            invoice.status, invoice.paid_at = DocumentStatus.PAID, at
        invoice.save(update_fields=["amount_paid", "amount_due", "status", "paid_at"])
        ledger_append(account=account, currency=payment.currency, at=at, movements=[
            Movement(LedgerKind.PAYMENT, payment.amount, document=invoice, payment=payment,
                     memo=f"Card payment for invoice {invoice.number}"),
        ])
        renewal = renewal_of_payment(payment)
        renewal.status, renewal.next_attempt_at = RenewalStatus.PAID, None
        renewal.save(update_fields=["status", "next_attempt_at"])
        Subscription.objects.filter(
            pk=renewal.subscription_id, status=SubscriptionStatus.PAST_DUE
        ).update(status=SubscriptionStatus.ACTIVE, version=F("version") + 1)
        notify_billing_contacts(
            account=account, template="receipt", dedupe_key=f"receipt:invoice:{invoice.pk}",
            attachments=[{"kind": "invoice", "id": invoice.pk}],
            context={"kind": "renewal", "document_number": invoice.number,
                     "amount_paid": money_json(invoice.amount_paid, invoice.currency),
                     "total": money_json(invoice.total, invoice.currency),
                     "credit_applied": money_json(invoice.credit_applied, invoice.currency),
                     "period_start": format_instant(renewal.period_start),
                     "period_end": format_instant(renewal.period_end),
                     "next_billing_date": format_instant(renewal.period_end)},
        )
    return True


def renewal_payable(*, account_id: int, invoice: Document) -> bool:
    """Whether Pay now can pay ``invoice`` of ``account_id``: a renewal invoice between two
    dunning attempts with something left to pay."""
    return invoice.amount_due > 0 and Renewal.objects.filter(
        account_id=account_id, invoice_id=invoice.pk, status=RenewalStatus.RETRYING
    ).exists()


def renewal_pay_now(*, account: Account, user: User, invoice_id: int) -> str:
    """Pay the open invoice of a past-due renewal now, with the account's default card (a billing
    contact, from the billing center). Returns ``"paid"``, or ``"pending"`` when the bank's answer
    is unknown (the next run settles it with the same idempotency key).

    Success ends ``past_due`` (the same recording as the billing run's). A refused card raises
    :class:`~prorata.subscriptions.errors.PaymentFailed`, and the dunning schedule goes on as it
    was: a customer's own attempt does not bring the expiry closer.
    """
    from prorata.subscriptions.errors import PaymentFailed, PaymentMethodRequired

    at = now()
    with transaction.atomic():
        lock_account(account.pk)
        renewal = (Renewal.objects.select_related("invoice")
                   .filter(account_id=account.pk, invoice_id=invoice_id).first())
        if renewal is None:
            raise NothingToPay("There is no renewal invoice with this number on the account.",
                               invoice=invoice_id)
        if renewal.status != RenewalStatus.RETRYING or renewal.invoice.amount_due == 0:
            raise NothingToPay(f"Invoice {renewal.invoice.number} has nothing left to pay now.",
                               invoice=renewal.invoice.number)
        card = default_cards({account.pk}).get(account.pk)
        if card is None:
            raise PaymentMethodRequired(
                "Add a card in Payment methods first: it becomes your default card.")
        payment = renewal_attempt_create(renewal=renewal, card=card, at=at)
        audit_record(actor=user, action="renewal.pay_now", account=account, obj=payment,
                     after={"invoice": renewal.invoice.number, "amount": payment.amount,
                            "currency": payment.currency})
    result = get_gateway().charge(
        token=PaymentMethod.objects.get(pk=card.pk).token,
        amount=Money(payment.amount, payment.currency), idempotency_key=payment.idempotency_key,
        description=f"Invoice {renewal.invoice.number}",
    )
    if result.outcome is ChargeOutcome.SUCCEEDED:
        renewal_payment_succeeded(payment_id=payment.pk, reference=result.reference, at=at)
        return "paid"
    if result.outcome is ChargeOutcome.UNKNOWN:
        return "pending"
    with transaction.atomic():
        lock_account(account.pk)
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.FAILED, failure_code=result.outcome.value,
            message=result.message[:2000], completed_at=at,
        )
        Renewal.objects.filter(pk=renewal.pk, status=RenewalStatus.CHARGING).update(
            status=RenewalStatus.RETRYING
        )
    raise PaymentFailed(result.message, code=result.outcome.value, invoice=renewal.invoice.number)
