"""Credit that meets old debt: spent, in the open, on the account's invoices still open.

An account's balance nets everything (DESIGN §3): an open invoice of 330,00 € and a credit of
198,00 € created later give −132,00 €. Left there, the invoice would still show 330,00 € due while
the ledger says 132,00 € and the e-mail announcing the credit says "credit balance 0,00 €" (issue
12: old debt must never be offset silently). So every writer of new credit (a change that leaves
credit, a staff credit grant, a payment kept as credit) calls :func:`credit_settle_open_invoices`
in its transaction: the spare credit settles the open invoices, oldest first, each settlement a
:class:`~prorata.billing.models.CreditApplication` row and the invoice's ``credit_applied`` grown
by it, and the caller tells the customer which invoices it paid (:func:`settlements_json`).

Amounts are integer minor units, tax included; instants are the caller's (the project clock's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, Sum

from prorata.accounts.models import Account
from prorata.billing.models import (
    CreditApplication,
    Document,
    DocumentKind,
    DocumentStatus,
    Payment,
    PaymentStatus,
)
from prorata.billing.selectors import account_balance
from prorata.billing.services import (
    invoice_paid_emit,
    invoice_receipt_context,
    receipt_enqueue,
    refunds_pending,
)
from prorata.billing.writer import payment_applied
from prorata.notifications.context import money_json


def in_flight() -> Q:
    """The payments that may still take their invoice's amount at the gateway: pending, unknown,
    or awaiting an authentication the customer may still give (``requires_action``, not
    completed; a renewal's off-session attempt that ended there can never be charged). Their
    invoice is not settled by credit meanwhile (the charge would then pay it twice)."""
    return (Q(status__in=[PaymentStatus.PENDING, PaymentStatus.UNKNOWN])
            | Q(status=PaymentStatus.REQUIRES_ACTION, completed_at__isnull=True))


@dataclass(frozen=True, slots=True)
class Settlement:
    """``amount`` of credit spent on ``invoice``, which has ``invoice.amount_due`` left after it."""

    invoice: Document
    amount: int


def spare_credit(account: Account, currency: str) -> int:
    """The credit not yet spoken for (minor units, ≥ 0): the balance, plus what the open invoices
    still have due (their charge is in the balance already), minus refunds still pending (their
    amount is reserved, :func:`~prorata.billing.services.payment_refund`)."""
    balance = account_balance(account, currency).amount
    due = (Document.objects.filter(account=account, currency=currency, kind=DocumentKind.INVOICE,
                                   status=DocumentStatus.OPEN, number__isnull=False)
           .aggregate(total=Sum("amount_due"))["total"]) or 0
    return max(balance + due - refunds_pending(account, currency), 0)


def credit_settle_open_invoices(
    *, account: Account, currency: str, at: datetime, credit_note: Document | None = None,
) -> list[Settlement]:
    """Spend the account's spare credit (:func:`spare_credit`) on its open invoices in
    ``currency``, oldest first, skipping one whose card payment is still in flight; returns what
    each took (empty when there is no open invoice or no spare credit). ``credit_note``: the
    document that created the credit, recorded on each settlement.

    An invoice paid in full this way is ``paid``; a renewal invoice also ends its dunning (the
    renewal paid, the subscription active again) and gets its receipt. Call inside the caller's
    transaction, under the account's lock, after the credit's ledger row."""
    open_invoices = list(
        Document.objects.filter(account=account, currency=currency, kind=DocumentKind.INVOICE,
                                status=DocumentStatus.OPEN, number__isnull=False,
                                amount_due__gt=0)
        .exclude(pk__in=Payment.objects.filter(in_flight(), invoice__isnull=False)
                 .values("invoice_id"))
        .order_by("issued_at", "id"))
    if not open_invoices:
        return []
    spare = spare_credit(account, currency)
    settlements: list[Settlement] = []
    for invoice in open_invoices:
        if spare <= 0:
            break
        amount = min(spare, invoice.amount_due)
        _apply(invoice=invoice, amount=amount, at=at)
        CreditApplication.objects.create(account=account, currency=currency,
                                         credit_note=credit_note, invoice=invoice,
                                         amount=amount, at=at)
        spare -= amount
        settlements.append(Settlement(invoice=invoice, amount=amount))
        if invoice.amount_due == 0:
            _settled(account=account, invoice=invoice, at=at)
    return settlements


def settlements_json(settlements: list[Settlement]) -> list[dict[str, Any]]:
    """The e-mail context of what the new credit paid: each invoice's number, the amount it took
    and what it still has due (money JSON)."""
    return [{"number": item.invoice.number or "",
             "amount": money_json(item.amount, item.invoice.currency),
             "amount_due": money_json(item.invoice.amount_due, item.invoice.currency)}
            for item in settlements]


def _apply(*, invoice: Document, amount: int, at: datetime) -> None:
    """``invoice.credit_applied`` grows by ``amount`` (its due falls by as much; ``paid`` at
    ``at`` once nothing is due), saved; ``invoice.paid`` is announced once, as for a payment
    (:func:`~prorata.billing.services.invoice_apply_payment`)."""
    was = invoice.status
    applied = payment_applied(amount_paid=0, amount_due=invoice.amount_due, status=invoice.status,
                              paid_at=invoice.paid_at, amount=amount, at=at)
    invoice.credit_applied += applied.amount_paid
    invoice.amount_due, invoice.status, invoice.paid_at = (
        applied.amount_due, applied.status, applied.paid_at)
    invoice.save(update_fields=["credit_applied", "amount_due", "status", "paid_at"])
    invoice_paid_emit(invoice=invoice, was=was, at=at)


def _settled(*, account: Account, invoice: Document, at: datetime) -> None:
    """An invoice paid in full by credit: a renewal's dunning ends as if its retry had been paid
    (:func:`~prorata.billing.renewals.renewal_settled`); any invoice gets its receipt."""
    from prorata.billing.renewals import renewal_settled  # renewals builds on this module's peers

    if renewal_settled(account=account, invoice=invoice, at=at):
        return
    receipt_enqueue(account=account, document=invoice, context=invoice_receipt_context(invoice))
