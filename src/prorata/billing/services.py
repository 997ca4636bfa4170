"""Writes of documents, the ledger, payments and refunds: the only code that writes billing rows.

Every function here that takes no lock itself must run inside the caller's transaction, under the
account's row lock (:func:`prorata.billing.locks.lock_account`): the checkout and the billing run call
them that way. Amounts are integer minor units; the ledger's sign is the customer's point of view
(positive in their favour; :mod:`prorata.billing.models`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum

from prorata.accounts.models import Account, Membership, User
from prorata.accounts.services import audit_record
from prorata.billing.errors import RefundRefused
from prorata.billing.locks import lock_account, lock_counters
from prorata.billing.models import (
    AccountBalance,
    Document,
    DocumentKind,
    DocumentLine,
    DocumentStatus,
    LedgerEntry,
    LedgerKind,
    Payment,
    PaymentMethodKind,
    PaymentStatus,
    Refund,
)
from prorata.billing.selectors import credit_balance
from prorata.common.clock import format_instant, now
from prorata.common.db import retry_transient
from prorata.notifications.context import money_json
from prorata_core.errors import InvalidAmount, ValidationError
from prorata_core.money import Money
from prorata_core.numbering import CREDIT_NOTE_SERIES, INVOICE_SERIES, format_number
from prorata_core.orders import OrderLine
from prorata_core.tax import TaxDecision

SERIES = {DocumentKind.INVOICE: INVOICE_SERIES, DocumentKind.CREDIT_NOTE: CREDIT_NOTE_SERIES}


# --- the ledger ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Movement:
    """One ledger entry to write: ``amount`` signed minor units, positive in the customer's favour."""

    kind: LedgerKind
    amount: int
    document: Document | None = None
    payment: Payment | None = None
    refund: Refund | None = None
    memo: str = ""


def ledger_append(
    *, account: Account, currency: str, at: datetime, movements: Sequence[Movement]
) -> list[LedgerEntry]:
    """Append ``movements`` to the account's ledger and move its stored balance by their sum.

    Call inside the caller's transaction, under the account lock (the balance row is updated with
    ``F()`` and created on the first entry, which the lock makes race-free).
    """
    entries = LedgerEntry.objects.bulk_create([
        LedgerEntry(account=account, currency=currency, at=at, kind=move.kind, amount=move.amount,
                    document=move.document, payment=move.payment, refund=move.refund,
                    memo=move.memo[:300])
        for move in movements
    ])
    delta = sum(move.amount for move in movements)
    updated = AccountBalance.objects.filter(account=account, currency=currency).update(
        balance=F("balance") + delta
    )
    if not updated:
        AccountBalance.objects.create(account=account, currency=currency, balance=delta)
    return entries


# --- documents ----------------------------------------------------------------------------------

def seller_details() -> dict[str, str]:
    return {
        "name": settings.PRORATA_SELLER_NAME,
        "address": settings.PRORATA_SELLER_ADDRESS,
        "country": settings.PRORATA_SELLER_COUNTRY,
        "vat_number": settings.PRORATA_SELLER_VAT_NUMBER,
    }


def buyer_details(account: Account) -> dict[str, str]:
    return {"name": account.name, "address": account.billing_address,
            "country": account.country, "vat_number": account.vat_number}


@dataclass(frozen=True, slots=True)
class DraftLine:
    """An engine line to put on a document, and the subscription it bills (if any)."""

    line: OrderLine
    subscription_id: int | None = None


def document_draft(
    *,
    account: Account,
    kind: DocumentKind,
    lines: Sequence[DraftLine],
    at: datetime,
    tax: TaxDecision,
    currency: str,
    order: Any = None,
    refers_to: Document | None = None,
    credit_applied: int = 0,
    amount_paid: int = 0,
    due_at: datetime | None = None,
) -> Document:
    """Write a draft document (no number yet) and its lines, totals summed from the lines.

    An invoice's ``amount_due`` is ``total − credit_applied − amount_paid`` and it is ``paid`` when
    that is zero, ``open`` otherwise; a credit note (negative lines) is ``paid``: its credit goes to
    the account's balance. Finalise with :func:`documents_finalize` in the same transaction.
    """
    if not lines:
        raise ValidationError("A document needs at least one line.")
    subtotal = sum(draft.line.amount.amount for draft in lines)
    tax_total = sum(draft.line.tax.amount for draft in lines)
    total = subtotal + tax_total
    if kind == DocumentKind.CREDIT_NOTE:
        credit_applied = amount_paid = amount_due = 0
        status = DocumentStatus.PAID
    else:
        amount_due = total - credit_applied - amount_paid
        if amount_due < 0 or credit_applied < 0 or amount_paid < 0:
            raise InvalidAmount(
                f"An invoice of {total} cannot take {credit_applied} of credit and {amount_paid} "
                "paid.", total=total,
            )
        status = DocumentStatus.PAID if amount_due == 0 else DocumentStatus.OPEN
    document = Document.objects.create(
        kind=kind, series=SERIES[kind], year=at.year, account=account, order=order,
        refers_to=refers_to, status=status, issued_at=at, due_at=due_at,
        paid_at=at if status == DocumentStatus.PAID else None, currency=currency,
        subtotal=subtotal, tax=tax_total, total=total, credit_applied=credit_applied,
        amount_paid=amount_paid, amount_due=amount_due, tax_rule=tax.rule.value,
        tax_mention=tax.mention or "",
    )
    document._draft_lines = DocumentLine.objects.bulk_create([  # type: ignore[attr-defined]
        DocumentLine(
            document=document, position=position, kind=draft.line.kind.value,
            description=draft.line.description[:300], subscription_id=draft.subscription_id,
            plan_code=draft.line.plan_code, cycle_code=draft.line.cycle_code,
            quantity=draft.line.quantity, period_start=draft.line.period.start,
            period_end=draft.line.period.end, unit_amount=draft.line.unit_amount.amount,
            ratio_numerator=draft.line.ratio.numerator,
            ratio_denominator=draft.line.ratio.denominator, amount=draft.line.amount.amount,
            tax_rate_bp=draft.line.tax_rate_bp, tax=draft.line.tax.amount,
        )
        for position, draft in enumerate(lines, start=1)
    ])
    return document


def document_snapshot(document: Document, lines: Sequence[DocumentLine]) -> dict[str, Any]:
    """The document as issued, in the shape the PDF is rendered from (amounts in minor units,
    instants ISO 8601 UTC). Built once, when the number is assigned."""
    return {
        "kind": document.kind,
        "number": document.number,
        "issued_at": format_instant(document.issued_at),
        "due_at": format_instant(document.due_at) if document.due_at else None,
        "refers_to": document.refers_to.number if document.refers_to_id else None,
        "currency": document.currency,
        "seller": seller_details(),
        "buyer": buyer_details(document.account),
        "lines": [
            {
                "kind": line.kind,
                "description": line.description,
                "period_start": format_instant(line.period_start),
                "period_end": format_instant(line.period_end),
                "quantity": line.quantity,
                "unit_amount": line.unit_amount,
                "ratio": f"{line.ratio_numerator}/{line.ratio_denominator}",
                "amount": line.amount,
                "tax_rate_bp": line.tax_rate_bp,
                "tax": line.tax,
            }
            for line in sorted(lines, key=lambda line: line.position)
        ],
        "subtotal": document.subtotal,
        "tax": document.tax,
        "total": document.total,
        "credit_applied": document.credit_applied,
        "amount_paid": document.amount_paid,
        "amount_due": document.amount_due,
        "tax_rule": document.tax_rule,
        "mention": document.tax_mention or None,
        "status": document.status,
    }


def documents_finalize(*, documents: Sequence[Document]) -> None:
    """Give each draft its gapless number and freeze it with its snapshot (DESIGN §3, §8).

    Locks the counters of every (series, year) involved, in sorted order (after the account and
    subscription locks the caller holds), and increments them in this transaction: if it rolls
    back, so do the numbers. Documents are numbered in the order given.
    """
    if any(document.number is not None for document in documents):
        raise ValidationError("A finalised document keeps its number.")
    counters = lock_counters((document.series, document.year) for document in documents)
    for document in documents:
        counter = counters[(document.series, document.year)]
        counter.last += 1
        document.sequence = counter.last
        document.number = format_number(document.series, document.year, counter.last)
        lines = getattr(document, "_draft_lines", None)
        if lines is None:
            lines = list(document.lines.all())
        document.snapshot = document_snapshot(document, lines)
        document.save(update_fields=["sequence", "number", "snapshot"])
    for counter in counters.values():
        counter.save(update_fields=["last"])


# --- e-mails -------------------------------------------------------------------------------------

def notify_billing_contacts(
    *, account: Account, template: str, context: dict[str, Any], dedupe_key: str,
    attachments: list[dict[str, Any]] | None = None,
) -> None:
    """Queue ``template`` to every active billing contact of ``account`` in the outbox, inside the
    caller's transaction, each in their language (else the account's). ``dedupe_key`` names the
    event; the recipient is appended to it."""
    from prorata.notifications.outbox import outbox_enqueue

    contacts = Membership.objects.filter(
        account=account, is_billing_contact=True, user__is_active=True
    ).select_related("user")
    for member in contacts:
        user = member.user
        outbox_enqueue(
            to=user.email, template=template,
            context={**context, "name": user.get_full_name() or user.email},
            language=user.language or account.language,
            dedupe_key=f"{dedupe_key}:{user.pk}", attachments=attachments or [],
        )



# --- payments received outside the gateway (corporate bank transfers) -------------------------

@retry_transient
def invoice_record_payment(
    *, invoice: Document, amount: Money, reference: str, actor: User
) -> Payment:
    """Record a bank transfer received for an open invoice (staff, S14): a succeeded payment, its
    ledger entry, and the invoice's paid amount and status. At most the amount due."""
    with transaction.atomic():
        account = lock_account(invoice.account_id)
        invoice = Document.objects.get(pk=invoice.pk)
        if invoice.kind != DocumentKind.INVOICE or invoice.number is None:
            raise ValidationError("Payments are recorded against an issued invoice.")
        if amount.currency != invoice.currency or not 0 < amount.amount <= invoice.amount_due:
            raise InvalidAmount(
                f"Record between 0.01 and {Money(invoice.amount_due, invoice.currency)} on "
                f"invoice {invoice.number}, in {invoice.currency}.",
                amount=str(amount),
            )
        at = now()
        payment = Payment.objects.create(
            account=account, invoice=invoice, method=PaymentMethodKind.BANK_TRANSFER,
            method_label="Bank transfer", currency=amount.currency, amount=amount.amount,
            status=PaymentStatus.SUCCEEDED, reference=reference[:255],
            idempotency_key=f"transfer:{invoice.pk}:{reference}"[:255],
            attempt=invoice.payments.count() + 1, created_at=at, completed_at=at,
        )
        invoice.amount_paid += amount.amount
        invoice.amount_due -= amount.amount
        if invoice.amount_due == 0:
            invoice.status = DocumentStatus.PAID
            invoice.paid_at = at
        invoice.save(update_fields=["amount_paid", "amount_due", "status", "paid_at"])
        ledger_append(account=account, currency=amount.currency, at=at, movements=[
            Movement(LedgerKind.PAYMENT, amount.amount, document=invoice, payment=payment,
                     memo=f"Bank transfer {reference} for invoice {invoice.number}"),
        ])
        audit_record(actor=actor, action="payment.record_transfer", account=account, obj=payment,
                     after={"invoice": invoice.number, "amount": amount.amount,
                            "currency": amount.currency, "reference": reference})
        if invoice.amount_due == 0:  # now a receipt (S12)
            notify_billing_contacts(
                account=account, template="receipt", dedupe_key=f"receipt:invoice:{invoice.pk}",
                attachments=[{"kind": "invoice", "id": invoice.pk}],
                context={"kind": "purchase", "document_number": invoice.number,
                         "amount_paid": money_json(invoice.amount_paid, invoice.currency),
                         "total": money_json(invoice.total, invoice.currency),
                         "credit_applied": money_json(invoice.credit_applied, invoice.currency)},
            )
    return payment


# --- refunds ------------------------------------------------------------------------------------

def payment_refund(*, payment: Payment, amount: Money, actor: User, memo: str = "") -> Refund:
    """Pay back ``amount`` of the account's credit to the card of ``payment`` (staff only, S11).

    A refund gives back spendable credit: at most the account's credit balance (issue a credit
    note first to refund part of a paid invoice) and at most what is left of the payment. The
    refund is recorded pending, sent to the gateway outside any transaction with its own
    idempotency key, then completed: ledger entry ``−amount`` and audit entry.
    """
    from prorata.payments.gateway import get_gateway

    refund = _refund_begin(payment=payment, amount=amount, actor=actor, memo=memo)
    result = get_gateway().refund(reference=payment.reference, amount=amount,
                                  idempotency_key=refund.idempotency_key)
    return _refund_complete(refund_id=refund.pk, succeeded=result.succeeded,
                            reference=result.reference, message=result.message, actor=actor)


@retry_transient
def _refund_begin(*, payment: Payment, amount: Money, actor: User, memo: str) -> Refund:
    with transaction.atomic():
        account = lock_account(payment.account_id)
        payment = Payment.objects.get(pk=payment.pk)
        refunded = Refund.objects.filter(
            payment=payment, status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PENDING]
        ).aggregate(total=Sum("amount"))["total"] or 0
        available = credit_balance(account, payment.currency)
        if (payment.status != PaymentStatus.SUCCEEDED or payment.method != PaymentMethodKind.CARD
                or amount.currency != payment.currency):
            raise RefundRefused("Only a succeeded card payment can be refunded, in its currency.")
        if not 0 < amount.amount <= min(payment.amount - refunded, available.amount):
            raise RefundRefused(
                f"At most {Money(min(payment.amount - refunded, available.amount), payment.currency)}"
                " can be refunded: the account's credit, within what is left of this payment. "
                "Issue a credit note first to refund an invoice.",
            )
        refund = Refund.objects.create(
            account=account, payment=payment, currency=amount.currency, amount=amount.amount,
            status=PaymentStatus.PENDING, idempotency_key="", memo=memo[:300], actor=actor,
            created_at=now(),
        )
        refund.idempotency_key = f"prorata:refund:{refund.pk}"
        refund.save(update_fields=["idempotency_key"])
    return refund


@retry_transient
def _refund_complete(
    *, refund_id: int, succeeded: bool, reference: str, message: str, actor: User
) -> Refund:
    with transaction.atomic():
        refund = Refund.objects.get(pk=refund_id)
        account = lock_account(refund.account_id)
        refund = Refund.objects.get(pk=refund_id)
        if refund.status != PaymentStatus.PENDING:
            return refund
        refund.status = PaymentStatus.SUCCEEDED if succeeded else PaymentStatus.FAILED
        refund.reference = reference[:255]
        refund.save(update_fields=["status", "reference"])
        if succeeded:
            ledger_append(account=account, currency=refund.currency, at=now(), movements=[
                Movement(LedgerKind.REFUND, -refund.amount, payment=refund.payment, refund=refund,
                         memo=refund.memo or "Refund"),
            ])
        audit_record(actor=actor, action="payment.refund", account=account, obj=refund,
                     after={"amount": refund.amount, "currency": refund.currency,
                            "status": refund.status, "message": message})
    if not succeeded:
        raise RefundRefused(message or "The refund was refused by the payment provider.")
    return refund
