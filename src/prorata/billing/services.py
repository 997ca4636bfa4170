"""Writes of documents, the ledger, payments and refunds: the only code that writes billing rows.

Every function here that takes no lock itself must run inside the caller's transaction, under the
account's row lock (:func:`prorata.billing.locks.lock_account`): the checkout and the billing run call
them that way. Amounts are integer minor units; the ledger's sign is the customer's point of view
(positive in their favour; :mod:`prorata.billing.models`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import FilteredRelation, Q, Sum

from prorata.accounts.billing_details import zone_name
from prorata.accounts.models import Account, User
from prorata.accounts.services import audit_record
from prorata.billing.errors import RefundRefused, TransferAlreadyRecorded
from prorata.billing.locks import counters_take, lock_account
from prorata.billing.models import (
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
from prorata.billing.queries import ContactRow, account_lock_with_readers, ledger_post
from prorata.billing.selectors import credit_balance
from prorata.billing.writer import (
    DocumentHead,
    DocumentRows,
    DraftLine,
    LineRow,
    Recipient,
    billing_recipients,
    buyer_of,
    contact_messages,
    document_build,
    ledger_memo,
    payment_applied,
    receipt_context,
    receipt_context_for_renewal,
    receipt_items,
    receipt_messages,
    recipient_name,
    seller_of,
    snapshot_with_number,
)
from prorata.billing.writer import document_snapshot as build_snapshot
from prorata.catalog.selectors import catalog_snapshot
from prorata.common import faults
from prorata.common.clock import now
from prorata.common.db import retry_transient
from prorata.jobs.models import Renewal
from prorata.notifications.outbox import outbox_save_many
from prorata.webhooks.events import WebhookBatch, webhook_emit
from prorata.webhooks.payloads import document_object, payment_object, refund_object
from prorata_core.errors import InvalidAmount, ValidationError
from prorata_core.money import Money
from prorata_core.numbering import format_number
from prorata_core.periods import Period
from prorata_core.tax import TaxDecision

__all__ = ["DraftLine"]  # re-exported: the checkout builds its lines with it

logger = logging.getLogger(__name__)


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
    *, account: Account, currency: str, at: datetime, movements: Sequence[Movement],
    payment: Payment | None = None, payment_fields: Sequence[str] = (),
) -> list[LedgerEntry]:
    """Append ``movements`` to the account's ledger and move its stored balance by their sum.

    Call inside the caller's transaction, under the account lock (the balance row is moved in
    the database and created on the first entry, which the lock makes race-free): one statement
    on PostgreSQL (:func:`~prorata.billing.queries.ledger_post`), two on SQLite. ``payment``
    (saved) has its ``payment_fields`` saved in the same statement.
    """
    return ledger_post([
        LedgerEntry(account=account, currency=currency, at=at, kind=move.kind, amount=move.amount,
                    document=move.document, payment=move.payment, refund=move.refund,
                    memo=move.memo[:300])
        for move in movements
    ], payment=payment, payment_fields=payment_fields)


# --- documents (the ORM persister of :mod:`prorata.billing.writer`'s rows) ----------------------

def seller_details() -> dict[str, str]:
    return seller_of(settings)


def buyer_details(account: Account) -> dict[str, str]:
    return buyer_of(name=account.name, address=account.billing_address, country=account.country,
                    vat_number=account.vat_number, email=account.billing_email)


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
    """Save a draft document (no number yet) and its lines, as
    :func:`~prorata.billing.writer.document_build` builds them (totals summed from the lines;
    an invoice ``paid`` when nothing is left due, ``open`` otherwise; a credit note ``paid``).
    Finalise with :func:`documents_finalize` in the same transaction."""
    rows = document_build(
        account_id=account.pk, kind=str(kind), lines=lines, at=at, tax=tax, currency=currency,
        order_id=order.pk if order is not None else None,
        refers_to_id=refers_to.pk if refers_to is not None else None,
        credit_applied=credit_applied, amount_paid=amount_paid, due_at=due_at,
    )
    return document_save(rows, account=account, order=order, refers_to=refers_to)


def document_save(
    rows: DocumentRows, *, account: Account, order: Any = None, refers_to: Document | None = None,
) -> Document:
    """Save built rows as a draft document and its lines (the ORM road)."""
    fields = rows.head._asdict()
    del fields["account_id"], fields["order_id"], fields["refers_to_id"]
    document = Document.objects.create(account=account, order=order, refers_to=refers_to,
                                       **fields)
    document._draft_lines = DocumentLine.objects.bulk_create([  # type: ignore[attr-defined]
        DocumentLine(document=document, **line._asdict()) for line in rows.lines
    ])
    return document


def document_rows(document: Document, lines: Sequence[DocumentLine]) -> DocumentRows:
    """A saved document's rows as the builder shapes them (its head and lines as issued)."""
    head = DocumentHead(*(getattr(document, name) for name in DocumentHead._fields))
    return DocumentRows(head, tuple(
        LineRow(*(getattr(line, name) for name in LineRow._fields))
        for line in sorted(lines, key=lambda line: line.position)))


def document_snapshot(document: Document, lines: Sequence[DocumentLine]) -> dict[str, Any]:
    """The document as issued (:func:`prorata.billing.writer.document_snapshot`), with its
    number. Built once, when the number is assigned."""
    snapshot = build_snapshot(
        document_rows(document, lines), seller=seller_details(), buyer=buyer_details(document.account),
        refers_to_number=document.refers_to.number if document.refers_to_id else None)
    return snapshot_with_number(snapshot, document.number or "")


@dataclass(frozen=True)
class DocumentDraft:
    """A document built by :func:`~prorata.billing.writer.document_build`, with the rows it
    points to, before :func:`documents_issue` numbers and saves it."""

    rows: DocumentRows
    account: Account
    order: Any = None
    refers_to: Document | None = None


def documents_issue(drafts: Sequence[DocumentDraft], *,
                    webhooks: WebhookBatch | None = None) -> list[Document]:
    """Number, freeze and save ``drafts`` at once, in the order given: their gapless numbers
    (:func:`~prorata.billing.locks.counters_take`: one statement per counter, locked until the
    caller's transaction ends), then every document with its number and snapshot in one insert
    and every line in another. What :func:`document_draft` then :func:`documents_finalize` do,
    in 2 + counters statements instead of 3 per document + 3 to 5 per counter: the road of the
    checkout and of every staff order. Events as :func:`documents_finalize`. Inside the
    caller's transaction, under the account lock."""
    keys = [(draft.rows.head.series, draft.rows.head.year) for draft in drafts]
    following = counters_take(Counter(keys))
    faults.point("after_number")
    documents = []
    for draft, key in zip(drafts, keys, strict=True):
        head = draft.rows.head
        sequence = following[key]
        following[key] += 1
        number = format_number(head.series, head.year, sequence)
        fields = head._asdict()
        del fields["account_id"], fields["order_id"], fields["refers_to_id"]
        snapshot = build_snapshot(
            draft.rows, seller=seller_details(), buyer=buyer_details(draft.account),
            refers_to_number=draft.refers_to.number if draft.refers_to is not None else None)
        documents.append(Document(
            account=draft.account, order=draft.order, refers_to=draft.refers_to,
            sequence=sequence, number=number, snapshot=snapshot_with_number(snapshot, number),
            **fields))
    Document.objects.bulk_create(documents)
    faults.point("after_invoice")
    lines = DocumentLine.objects.bulk_create([
        DocumentLine(document=document, **line._asdict())
        for document, draft in zip(documents, drafts, strict=True) for line in draft.rows.lines
    ])
    batch = webhooks if webhooks is not None else WebhookBatch()
    start = 0
    for document, draft in zip(documents, drafts, strict=True):
        # bulk_create keeps the order given: each document's lines follow one another.
        mine = lines[start:start + len(draft.rows.lines)]
        start += len(mine)
        document._draft_lines = mine  # type: ignore[attr-defined]
        document_events(batch, document_id=document.pk, number=document.number or "",
                        head=document, lines=mine)
    if webhooks is None:
        batch.save()
    return documents


def documents_finalize(*, documents: Sequence[Document],
                       webhooks: WebhookBatch | None = None) -> None:
    """Give each draft its gapless number and freeze it with its snapshot (DESIGN §3, §8).

    Reserves the numbers of every (series, year) involved, in sorted order (after the account and
    subscription locks the caller holds), in this transaction: if it rolls back, so do the
    numbers. Documents are numbered in the order given. Each issued document is a webhook event
    (``invoice.created`` or ``credit_note.created``, and ``invoice.paid`` for an invoice paid when
    issued: :func:`document_events`), written in the same transaction: added to ``webhooks`` when
    given (the caller saves it with the rest of its transaction's events). Documents built in
    this transaction are better issued by :func:`documents_issue` (fewer statements).
    """
    if any(document.number is not None for document in documents):
        raise ValidationError("A finalised document keeps its number.")
    following = counters_take(Counter((document.series, document.year) for document in documents))
    batch = webhooks if webhooks is not None else WebhookBatch()
    for document in documents:
        key = (document.series, document.year)
        document.sequence = following[key]
        following[key] += 1
        document.number = format_number(document.series, document.year, document.sequence)
        lines = getattr(document, "_draft_lines", None)
        if lines is None:
            lines = list(document.lines.all())
        document.snapshot = document_snapshot(document, lines)
        document.save(update_fields=["sequence", "number", "snapshot"])
        document_events(batch, document_id=document.pk, number=document.number,
                        head=document, lines=lines)
    if webhooks is None:
        batch.save()


def document_events(webhooks: WebhookBatch, *, document_id: int, number: str, head: Any,
                    lines: Sequence[Any]) -> None:
    """The webhook events of a document just issued (both roads: the ORM's
    :func:`documents_finalize` and the billing run's set-based invoicing): ``invoice.created``
    or ``credit_note.created``, then ``invoice.paid`` if nothing is left due. ``head``: the
    document or its built :class:`~prorata.billing.writer.DocumentHead`."""
    def data() -> dict[str, Any]:
        return document_object(document_id=document_id, number=number, head=head, lines=lines)

    if head.kind == DocumentKind.CREDIT_NOTE:
        webhooks.add("credit_note.created", key=f"credit_note.created:{document_id}", data=data,
                     at=head.issued_at)
        return
    webhooks.add("invoice.created", key=f"invoice.created:{document_id}", data=data,
                 at=head.issued_at)
    if head.status == "paid":
        webhooks.add("invoice.paid", key=f"invoice.paid:{document_id}", data=data,
                     at=head.issued_at)


# --- e-mails -------------------------------------------------------------------------------------

def billing_contacts(account_ids: Iterable[int]) -> dict[int, list[Recipient]]:
    """Who gets each account's billing e-mails (receipts, changes, renewals, failed payments,
    expiries…), in one query: its active billing contacts, each in their language (else the
    account's) with the name an e-mail greets them by, then the billing e-mail of its billing
    details (:func:`~prorata.billing.writer.billing_recipients`); each with the account's time
    zone (:func:`~prorata.accounts.billing_details.zone_name`), in which their e-mail's dates are
    written."""
    rows = (
        Account.objects.filter(pk__in=list(account_ids))
        .annotate(contact=FilteredRelation(
            "memberships", condition=Q(memberships__is_billing_contact=True)))
        .order_by("id", "contact__user_id")
        .values_list("id", "billing_email", "language", "time_zone", "country",
                     "contact__user_id", "contact__user__email", "contact__user__first_name",
                     "contact__user__last_name", "contact__user__language",
                     "contact__user__is_active")
    )
    accounts: dict[int, tuple[str, str, str, str]] = {}
    contacts: dict[int, list[ContactRow]] = defaultdict(list)
    for (account_id, billing_email, account_language, time_zone, country, *contact) in rows:
        accounts[account_id] = (billing_email, account_language, time_zone, country)
        if contact[0] is not None:
            contacts[account_id].append(tuple(contact))  # type: ignore[arg-type]
    return {account_id: _recipients(*details, contacts=contacts[account_id])
            for account_id, details in accounts.items()}


def _recipients(billing_email: str, language: str, time_zone: str, country: str, *,
                contacts: Iterable[ContactRow]) -> list[Recipient]:
    """An account's readers (:func:`billing_contacts`) from its billing details and its billing
    contacts' rows (:data:`~prorata.billing.queries.ContactRow`, by user id; inactive users are
    left out)."""
    zone = zone_name(time_zone, country)
    found = [Recipient(user_id, email, user_language or language,
                       recipient_name(first_name=first, last_name=last, email=email))
             for user_id, email, first, last, user_language, active in contacts if active]
    return [recipient._replace(time_zone=zone) for recipient in billing_recipients(
        contacts=found, billing_email=billing_email, language=language)]


@dataclass(frozen=True)
class OrderAccount:
    """The account locked for applying an order (:func:`lock_account_for_order`), with the
    webhook endpoints subscribed to each event type and the readers of its billing e-mails."""

    account: Account
    subscribed: dict[str, list[int]]
    recipients: list[Recipient]
    #: The credit the account may spend (S8) in the order's currency, when the caller read it
    #: under the lock (:func:`~prorata.billing.selectors.credit_balance`).
    credit: Money | None = None


def lock_account_for_order(account_id: int) -> OrderAccount:
    """Lock the account (first lock of the transaction, as
    :func:`~prorata.billing.locks.lock_account`) and read who will hear of what the transaction
    does: one statement on PostgreSQL
    (:func:`~prorata.billing.queries.account_lock_with_readers`), three on SQLite. Inside
    ``transaction.atomic()``; the checkout's second transaction (and any that applies an order)."""
    account, subscribed, contacts = account_lock_with_readers(account_id)
    return OrderAccount(account=account, subscribed=subscribed, recipients=_recipients(
        account.billing_email, account.language, account.time_zone, account.country,
        contacts=contacts))


def notify_billing_contacts(
    *, account: Account, template: str, context: dict[str, Any], dedupe_key: str,
    attachments: list[dict[str, Any]] | None = None,
    recipients: Sequence[Recipient] | None = None,
) -> None:
    """Queue ``template`` to every active billing contact of ``account`` in the outbox, inside the
    caller's transaction, each in their language (else the account's). ``dedupe_key`` names the
    event; the recipient's user id is appended to it (:func:`prorata.billing.writer.event_key`).
    ``recipients``: the account's readers when the caller has them (:func:`lock_account_for_order`);
    else read."""
    if recipients is None:
        recipients = billing_contacts([account.pk]).get(account.pk, [])
    # One insert for every reader (a key queued before keeps its first row).
    outbox_save_many(list(contact_messages(
        recipients=recipients, template=template,
        context=context, event=dedupe_key, at=now(), attachments=attachments,
    )))


def receipt_enqueue(
    *, account: Account, document: Document, context: dict[str, Any],
    credit_notes: Sequence[Document] = (), recipients: Sequence[Recipient] | None = None,
) -> None:
    """Queue the receipt of ``document`` (context: :func:`~prorata.billing.writer.receipt_context`)
    to the account's billing contacts (``recipients`` when the caller has them, from
    :func:`lock_account_for_order`; else read), the document and ``credit_notes`` attached;
    once per document and reader (S12). Inside the caller's transaction."""
    if recipients is None:
        recipients = billing_contacts([account.pk]).get(account.pk, [])
    # One insert for every reader (a key queued before keeps its first row).
    outbox_save_many(list(receipt_messages(
        recipients=recipients, account_id=account.pk,
        document_kind=document.kind, document_id=document.pk, context=context, at=now(),
        credit_note_ids=[note.pk for note in credit_notes],
    )))


# --- payments received outside the gateway (corporate bank transfers) -------------------------

def invoice_apply_payment(*, invoice: Document, amount: int, at: datetime) -> None:
    """Apply a succeeded payment of ``amount`` to ``invoice`` (saved): its paid and due amounts,
    and ``paid`` at ``at`` once nothing is due (:func:`~prorata.billing.writer.payment_applied`).
    Inside the caller's transaction, under the account lock."""
    applied = payment_applied(amount_paid=invoice.amount_paid, amount_due=invoice.amount_due,
                              status=invoice.status, paid_at=invoice.paid_at, amount=amount, at=at)
    was = invoice.status
    invoice.amount_paid, invoice.amount_due, invoice.status, invoice.paid_at = applied
    invoice.save(update_fields=["amount_paid", "amount_due", "status", "paid_at"])
    invoice_paid_emit(invoice=invoice, was=was, at=at)


def invoice_paid_emit(*, invoice: Document, was: str, at: datetime) -> None:
    """The webhook event ``invoice.paid``, once: when ``invoice`` (saved) has just become paid
    from status ``was``, by a payment or by credit (:mod:`prorata.billing.credit`). Inside the
    transaction that paid it."""
    if invoice.status == DocumentStatus.PAID and was != DocumentStatus.PAID:
        webhook_emit("invoice.paid", key=f"invoice.paid:{invoice.pk}", at=at,
                     data=lambda: document_object(document_id=invoice.pk,
                                                  number=invoice.number or "", head=invoice,
                                                  lines=list(invoice.lines.all())))


def refunds_pending(account: Account, currency: str) -> int:
    """What the account's refunds still pending at the gateway will take (minor units): not in
    the ledger yet, so reserved by whoever spends the account's credit meanwhile."""
    return Refund.objects.filter(
        account=account, currency=currency, status=PaymentStatus.PENDING,
    ).aggregate(total=Sum("amount"))["total"] or 0


def invoice_payment_failed(*, invoice: Document, payment: Payment) -> None:
    """The webhook event ``invoice.payment_failed`` of a failed card attempt on ``invoice``
    (a renewal's charge, a retry, Pay now): the invoice, with the ``payment`` that failed.
    Inside the transaction that records the failure."""
    webhook_emit("invoice.payment_failed", key=f"invoice.payment_failed:{payment.pk}",
                 at=payment.completed_at, data=lambda: {
                     **document_object(document_id=invoice.pk, number=invoice.number or "",
                                       head=invoice, lines=list(invoice.lines.all())),
                     "payment": payment_object(payment)})


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
        key = f"transfer:{invoice.pk}:{reference}"[:255]
        # The same transfer typed twice (the key is unique: an IntegrityError, a 500, otherwise);
        # under the account lock, so two submissions at once cannot both pass.
        if Payment.objects.filter(idempotency_key=key).exists():
            raise TransferAlreadyRecorded(
                f"A transfer with the bank reference {reference} is already recorded on invoice "
                f"{invoice.number}.", reference=reference, number=invoice.number)
        at = now()
        payment = Payment.objects.create(
            account=account, invoice=invoice, method=PaymentMethodKind.BANK_TRANSFER,
            method_label="Bank transfer", currency=amount.currency, amount=amount.amount,
            status=PaymentStatus.SUCCEEDED, reference=reference[:255],
            idempotency_key=key,
            attempt=invoice.payments.count() + 1, created_at=at, completed_at=at,
        )
        invoice_apply_payment(invoice=invoice, amount=amount.amount, at=at)
        ledger_append(account=account, currency=amount.currency, at=at, movements=[
            Movement(LedgerKind.PAYMENT, amount.amount, document=invoice, payment=payment,
                     memo=ledger_memo(LedgerKind.PAYMENT.value, number=invoice.number,
                                      label=f"Bank transfer {reference}")),
        ])
        audit_record(actor=actor, action="payment.record_transfer", account=account, obj=payment,
                     after={"invoice": invoice.number, "amount": amount.amount,
                            "currency": amount.currency, "reference": reference})
        if invoice.amount_due == 0:  # now a receipt (S12)
            receipt_enqueue(account=account, document=invoice,
                            context=invoice_receipt_context(invoice))
    return payment


def invoice_receipt_context(invoice: Document) -> dict[str, Any]:
    """The receipt of an invoice paid after it was issued (by transfer, by credit created later):
    a renewal's as the billing run words it
    (:func:`~prorata.billing.writer.receipt_context_for_renewal`), else a purchase's; each with
    its items and their periods, from its charge lines."""
    catalog, lines = catalog_snapshot(), list(invoice.lines.all())
    renewal = Renewal.objects.filter(invoice_id=invoice.pk).first()
    if renewal is not None:
        return receipt_context_for_renewal(
            number=invoice.number or "", head=invoice, lines=lines, catalog=catalog,
            period=Period(renewal.period_start, renewal.period_end))
    return receipt_context(
        kind="purchase", number=invoice.number or "", currency=invoice.currency,
        amount_paid=invoice.amount_paid, total=invoice.total,
        credit_applied=invoice.credit_applied, items=receipt_items(lines, catalog))


# --- refunds ------------------------------------------------------------------------------------

def payment_refund(*, payment: Payment, amount: Money, actor: User, memo: str = "") -> Refund:
    """Pay back ``amount`` of the account's credit to the card of ``payment`` (staff only, S11).

    A refund gives back spendable credit: at most the account's credit balance (issue a credit
    note first to refund part of a paid invoice) and at most what is left of the payment. The
    refund is recorded pending, sent to the gateway outside any transaction with its own
    idempotency key, then completed: ledger entry ``−amount`` and audit entry.
    """
    from prorata.payments.gateway import ChargeOutcome, get_gateway

    refund = _refund_begin(payment=payment, amount=amount, actor=actor, memo=memo)
    result = get_gateway().refund(reference=payment.reference, amount=amount,
                                  idempotency_key=refund.idempotency_key)
    if result.outcome == ChargeOutcome.UNKNOWN:
        # No answer yet: the refund stays pending (its amount reserved), completed by
        # :func:`refunds_settle` when the gateway tells (a Stripe ``charge.refunded`` event).
        return refund
    return _refund_complete(refund_id=refund.pk, succeeded=result.succeeded,
                            reference=result.reference, message=result.message, actor=actor)


def refunds_settle(*, reference: str) -> str:
    """Complete the refunds still pending on the card payment the gateway knows as
    ``reference``, from what the gateway says of each (``lookup`` by the refund's idempotency
    key): a provider's webhook announced a refund (:mod:`prorata.payments.stripe_webhooks`).
    The writers are the ones that record a refund's answer (:func:`_refund_complete`; a staff
    refund's: :func:`prorata.console.services.staff_refund_answered`), each once, under the
    account's lock. Never refunds. Returns ``no_pending_refund``, ``settled`` (with the count)
    or ``not_known_yet``."""
    from prorata.console.services import staff_refund_answered
    from prorata.payments.gateway import ChargeOutcome, get_gateway

    pending = list(Refund.objects.filter(payment__reference=str(reference or "")[:255],
                                         status=PaymentStatus.PENDING).order_by("id"))
    if not pending:
        return "no_pending_refund"
    gateway, settled = get_gateway(), 0
    for refund in pending:
        try:
            found = gateway.lookup(idempotency_key=refund.idempotency_key)
        except Exception:
            logger.exception("Gateway lookup for refund %s did not answer", refund.pk)
            continue
        if found is None or found.outcome == ChargeOutcome.UNKNOWN:
            continue
        if staff_refund_answered(refund=refund, succeeded=found.succeeded,
                                 reference=found.reference, message=found.message):
            settled += 1
            continue
        try:
            _refund_complete(refund_id=refund.pk, succeeded=found.succeeded,
                             reference=found.reference, message=found.message,
                             actor=refund.actor)  # type: ignore[arg-type]
        except RefundRefused:
            pass  # recorded as failed: the refusal is the answer
        settled += 1
    return f"settled:{settled}" if settled else "not_known_yet"


@retry_transient
def _refund_begin(*, payment: Payment, amount: Money, actor: User, memo: str) -> Refund:
    with transaction.atomic():
        account = lock_account(payment.account_id)
        payment = Payment.objects.get(pk=payment.pk)
        refunded = Refund.objects.filter(
            payment=payment, status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PENDING]
        ).aggregate(total=Sum("amount"))["total"] or 0
        # Refunds still pending on the account's other payments have not reached the ledger yet:
        # they are reserved here, under the same lock, so two refunds at once cannot both spend
        # the same credit.
        pending = refunds_pending(account, payment.currency)
        available = Money(max(credit_balance(account, payment.currency).amount - pending, 0),
                          payment.currency)
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
            webhook_emit("refund.succeeded", key=f"refund.succeeded:{refund.pk}",
                         data=lambda: refund_object(refund))
        audit_record(actor=actor, action="payment.refund", account=account, obj=refund,
                     after={"amount": refund.amount, "currency": refund.currency,
                            "status": refund.status, "message": message})
    if not succeeded:
        raise RefundRefused(message or "The refund was refused by the payment provider.")
    return refund
