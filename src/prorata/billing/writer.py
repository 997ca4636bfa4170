"""The one builder of billing facts: the rows of a document, its ledger entries, a payment and its
application, a renewal, and the receipt e-mails, for any order or renewal.

Two persisters save what this module builds, never a second definition of it (STYLE, "two roads
writing one fact drift apart"):

- the services save the rows through the ORM (:mod:`prorata.billing.services`:
  :func:`~prorata.billing.services.document_draft`, ``documents_finalize``, ``ledger_append``,
  ``receipt_enqueue``; :mod:`prorata.billing.renewals` for a renewal, one at a time);
- the billing run writes them set-based (:mod:`prorata.jobs.invoicing`: ``COPY`` on PostgreSQL,
  ``executemany`` on SQLite, outbox rows in one ``bulk_create``).

A parity test (``tests/app/billing/test_writer_parity.py``) renews one subscription through each
road and compares every row field by field.

Everything here is computed from its arguments: no database, no clock. Rows are named tuples in
the column order of their table (the set-based persister sends them as they are; the ORM one
unpacks them with ``_asdict()``). Amounts are integer minor units; the ledger's sign is the
customer's point of view (positive in their favour); instants are aware UTC datetimes, written
into snapshots and e-mail contexts by :func:`~prorata.common.clock.format_instant` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from prorata.billing.models import (
    DocumentKind,
    DocumentStatus,
    LedgerKind,
    LineKind,
    PaymentMethodKind,
    PaymentStatus,
)
from prorata.common.clock import format_instant
from prorata.jobs.models import RenewalStatus
from prorata.notifications.context import money_json
from prorata.notifications.models import OutboxMessage
from prorata_core.catalog import Catalog
from prorata_core.errors import InvalidAmount, ValidationError
from prorata_core.money import Money
from prorata_core.numbering import CREDIT_NOTE_SERIES, INVOICE_SERIES
from prorata_core.numbering import document_year as year_in_zone
from prorata_core.orders import Configuration, Order, OrderKind, OrderLine, Term, price_order
from prorata_core.periods import Period
from prorata_core.tax import TaxDecision

SERIES = {DocumentKind.INVOICE.value: INVOICE_SERIES,
          DocumentKind.CREDIT_NOTE.value: CREDIT_NOTE_SERIES}

#: :func:`~prorata.common.clock.format_instant`, remembered: a billing run's chunk formats the
#: same few instants (its ``at``, clustered period ends) thousands of times.
_instant = lru_cache(maxsize=4096)(format_instant)

# The choices' values, read once: a billing run's chunk builds thousands of rows with them (an
# enum member's ``.value`` is a property call).
_INVOICE, _CREDIT_NOTE = DocumentKind.INVOICE.value, DocumentKind.CREDIT_NOTE.value
_PAID, _OPEN = DocumentStatus.PAID.value, DocumentStatus.OPEN.value
_CARD, _PENDING = PaymentMethodKind.CARD.value, PaymentStatus.PENDING.value
_RENEWAL_PAID, _RENEWAL_INVOICED, _RENEWAL_CHARGING = (
    RenewalStatus.PAID.value, RenewalStatus.INVOICED.value, RenewalStatus.CHARGING.value)


# --- documents ----------------------------------------------------------------------------------

class DraftLine(NamedTuple):
    """An engine line to put on a document, and the subscription it bills (if any)."""

    line: OrderLine
    subscription_id: int | None = None


class LineRow(NamedTuple):
    """A document line, in the column order of ``billing_documentline`` after ``document_id``."""

    position: int
    kind: str
    description: str
    subscription_id: int | None
    plan_code: str
    cycle_code: str
    quantity: int
    period_start: datetime
    period_end: datetime
    unit_amount: int
    ratio_numerator: int
    ratio_denominator: int
    amount: int
    tax_rate_bp: int
    tax: int


#: ``billing_documentline``'s columns as the set-based persister writes them.
LINE_COLUMNS = ("document_id", *LineRow._fields)


class DocumentHead(NamedTuple):
    """A document before its number, in the column order of ``billing_document`` (its id,
    sequence, number and snapshot are the persister's: written with the number)."""

    kind: str
    series: str
    year: int
    account_id: int
    order_id: int | None
    refers_to_id: int | None
    status: str
    issued_at: datetime
    due_at: datetime | None
    paid_at: datetime | None
    currency: str
    subtotal: int
    tax: int
    total: int
    credit_applied: int
    amount_paid: int
    amount_due: int
    tax_rule: str
    tax_mention: str


#: ``billing_document``'s columns as the set-based persister writes them.
DOCUMENT_COLUMNS = ("id", "sequence", "number", *DocumentHead._fields, "snapshot")


class DocumentRows(NamedTuple):
    """A document's head and lines, as built; the snapshot waits for the number."""

    head: DocumentHead
    lines: tuple[LineRow, ...]


def line_rows(lines: Sequence[DraftLine]) -> tuple[LineRow, ...]:
    """Engine lines as document lines, numbered from 1 in the order given."""
    rows = []
    for position, (line, subscription_id) in enumerate(lines, start=1):
        period, ratio = line.period, line.ratio
        rows.append(LineRow(
            position, line.kind.value, line.description[:300], subscription_id, line.plan_code,
            line.cycle_code, line.quantity, period.start, period.end, line.unit_amount.amount,
            ratio.numerator, ratio.denominator, line.amount.amount, line.tax_rate_bp,
            line.tax.amount))
    return tuple(rows)


def document_build(
    *,
    account_id: int,
    kind: str,
    lines: Sequence[DraftLine],
    at: datetime,
    tax: TaxDecision,
    currency: str,
    order_id: int | None = None,
    refers_to_id: int | None = None,
    credit_applied: int = 0,
    amount_paid: int = 0,
    due_at: datetime | None = None,
    year: int | None = None,
) -> DocumentRows:
    """A document issued at ``at``: totals summed from its lines (each rounded once by the engine).
    ``year``: its numbering year, :func:`document_year` of ``at`` (a caller issuing many documents
    at one instant, the billing run's chunk, reads it once).

    An invoice's ``amount_due`` is ``total − credit_applied − amount_paid``; it is ``paid`` (at
    ``at``) when that is zero, ``open`` otherwise. A credit note (negative lines) is ``paid``: its
    credit goes to the account's balance. Raises :class:`ValidationError` without lines and
    :class:`InvalidAmount` when credit and payment exceed the total.
    """
    if not lines:
        raise ValidationError("A document needs at least one line.")
    rows = line_rows(lines)
    subtotal = sum(row.amount for row in rows)
    tax_total = sum(row.tax for row in rows)
    total = subtotal + tax_total
    if kind == _CREDIT_NOTE:
        credit_applied = amount_paid = amount_due = 0
        status = _PAID
    else:
        amount_due = total - credit_applied - amount_paid
        if amount_due < 0 or credit_applied < 0 or amount_paid < 0:
            raise InvalidAmount(
                f"An invoice of {total} cannot take {credit_applied} of credit and {amount_paid} "
                "paid.", total=total,
            )
        status = _PAID if amount_due == 0 else _OPEN
    head = DocumentHead(
        kind, SERIES[kind], document_year(at) if year is None else year, account_id, order_id, refers_to_id, status, at, due_at,
        at if status == _PAID else None, currency, subtotal, tax_total, total,
        credit_applied, amount_paid, amount_due, tax.rule.value, tax.mention or "",
    )
    return DocumentRows(head, rows)


def credit_note_voiding(invoice: DocumentRows, *, invoice_id: int, at: datetime) -> DocumentRows:
    """The credit note that voids ``invoice`` (id ``invoice_id``) whole, issued at ``at``: each of
    its lines credited in full (same period, quantity and price; amount and tax negated), so the
    credit note's total is exactly minus the invoice's. Its credit goes to the account's balance,
    which gives back what the invoice took from it (its ``credit_applied`` included)."""
    lines = tuple(
        line._replace(kind=LineKind.CREDIT.value, amount=-line.amount, tax=-line.tax)
        for line in invoice.lines
    )
    subtotal = sum(line.amount for line in lines)
    tax_total = sum(line.tax for line in lines)
    head = invoice.head._replace(
        kind=DocumentKind.CREDIT_NOTE.value, series=SERIES[DocumentKind.CREDIT_NOTE.value],
        year=document_year(at), order_id=None, refers_to_id=invoice_id, status=DocumentStatus.PAID.value,
        issued_at=at, due_at=None, paid_at=at, subtotal=subtotal, tax=tax_total,
        total=subtotal + tax_total, credit_applied=0, amount_paid=0, amount_due=0,
    )
    return DocumentRows(head, lines)


def document_year(at: datetime) -> int:
    """The numbering year of a document issued at ``at``: its year in the seller's time zone
    (``PRORATA_SELLER_TIME_ZONE``). Every writer of a document number (the services, the billing
    run's set-based writer) takes its year from here, so that the series and the counter agree."""
    from django.conf import settings

    return year_in_zone(at, ZoneInfo(settings.PRORATA_SELLER_TIME_ZONE))


def seller_of(settings: Any) -> dict[str, str]:
    """The seller as documents name it, from the project's settings."""
    return {
        "name": settings.PRORATA_SELLER_NAME,
        "address": settings.PRORATA_SELLER_ADDRESS,
        "country": settings.PRORATA_SELLER_COUNTRY,
        "vat_number": settings.PRORATA_SELLER_VAT_NUMBER,
    }


def buyer_of(*, name: str, address: str, country: str, vat_number: str,
             email: str = "") -> dict[str, str]:
    """The buyer as documents name it (the account's billing details when the document is issued);
    ``email``, the account's billing e-mail, only when it has one."""
    buyer = {"name": name, "address": address, "country": country, "vat_number": vat_number}
    if email:
        buyer["email"] = email
    return buyer


def document_snapshot(
    rows: DocumentRows, *, seller: Mapping[str, str], buyer: Mapping[str, str],
    refers_to_number: str | None,
) -> dict[str, Any]:
    """The document as issued, in the shape the PDF is rendered from (amounts in minor units,
    instants ISO 8601 UTC), without its ``number``: each persister adds the number it assigns
    (:func:`snapshot_with_number`)."""
    head = rows.head
    return {
        "kind": head.kind,
        "issued_at": _instant(head.issued_at),
        "due_at": _instant(head.due_at) if head.due_at else None,
        "refers_to": refers_to_number,
        "currency": head.currency,
        "seller": dict(seller),
        "buyer": dict(buyer),
        "lines": [
            {
                "kind": line.kind,
                "description": line.description,
                "period_start": _instant(line.period_start),
                "period_end": _instant(line.period_end),
                "quantity": line.quantity,
                "unit_amount": line.unit_amount,
                "ratio": f"{line.ratio_numerator}/{line.ratio_denominator}",
                "amount": line.amount,
                "tax_rate_bp": line.tax_rate_bp,
                "tax": line.tax,
            }
            for line in (rows.lines if len(rows.lines) == 1 else
                         sorted(rows.lines, key=lambda line: line.position))
        ],
        "subtotal": head.subtotal,
        "tax": head.tax,
        "total": head.total,
        "credit_applied": head.credit_applied,
        "amount_paid": head.amount_paid,
        "amount_due": head.amount_due,
        "tax_rule": head.tax_rule,
        "mention": head.tax_mention or None,
        "status": head.status,
    }


def snapshot_with_number(snapshot: Mapping[str, Any], number: str) -> dict[str, Any]:
    """The stored snapshot: :func:`document_snapshot` with the document's number first."""
    return {"number": number, **snapshot}


# --- the ledger ---------------------------------------------------------------------------------

def ledger_memo(kind: str, *, number: str, label: str = "") -> str:
    """The one memo rule of ledger entries: ``Invoice 2026-000012``, ``Credit note C2026-000003``,
    and a payment as ``<how it was paid> · <invoice number>`` (``Visa •••• 4242 · 2026-000012``,
    ``Bank transfer TR-1 · 2026-000012``). At most 300 characters (the column's length)."""
    if kind == LedgerKind.INVOICE.value:
        memo = f"Invoice {number}"
    elif kind == LedgerKind.CREDIT_NOTE.value:
        memo = f"Credit note {number}"
    else:
        memo = f"{label or 'Payment'} · {number}"
    return memo[:300]


def document_entry_amount(head: DocumentHead) -> int:
    """The ledger amount a document posts: an invoice is owed (−total), a credit note's total is
    already negative (its lines are)."""
    return -head.total


# --- payments -----------------------------------------------------------------------------------

class PaymentRow(NamedTuple):
    """A payment, in the column order of ``billing_payment`` after ``invoice_id``."""

    account_id: int
    method: str
    payment_method_id: int | None
    method_label: str
    currency: str
    amount: int
    status: str
    reference: str
    idempotency_key: str
    attempt: int
    failure_code: str
    message: str
    created_at: datetime


#: ``billing_payment``'s columns as the set-based persister writes them.
PAYMENT_COLUMNS = ("invoice_id", *PaymentRow._fields)


def card_attempt(
    *, account_id: int, currency: str, amount: int, card_id: int | None, card_label: str,
    idempotency_key: str, attempt: int, at: datetime,
) -> PaymentRow:
    """A pending card attempt of ``amount`` (``card_id`` None: no card on file, which the charge
    step records as a failure)."""
    return PaymentRow(account_id, _CARD, card_id, card_label, currency, amount, _PENDING, "",
                      idempotency_key, attempt, "", "", at)


class Applied(NamedTuple):
    """An invoice's payment state after a payment is applied to it."""

    amount_paid: int
    amount_due: int
    status: str
    paid_at: datetime | None


def payment_applied(
    *, amount_paid: int, amount_due: int, status: str, paid_at: datetime | None, amount: int,
    at: datetime,
) -> Applied:
    """Apply a payment of ``amount`` at ``at`` to an invoice that has ``amount_paid`` and
    ``amount_due``: paid in full, it is ``paid`` at ``at``. The invoice takes at most what it has
    due (a payment the gateway took for more, after the invoice was paid otherwise, stays whole in
    the ledger: the excess is the account's credit). Raises :class:`InvalidAmount` for a payment
    of nothing."""
    if amount <= 0:
        raise InvalidAmount(f"A payment of {amount} pays nothing.", amount=amount)
    taken = min(amount, amount_due)
    due = amount_due - taken
    if due == 0:
        return Applied(amount_paid + taken, 0, DocumentStatus.PAID.value, paid_at or at)
    return Applied(amount_paid + taken, due, status, paid_at)


# --- renewals -----------------------------------------------------------------------------------

def renewal_order(
    *, catalog: Catalog, plan_code: str, cycle_code: str, quantity: int, unit_amount: int,
    currency: str, period: Period, anchor: datetime, invoiced_amount: int, tax: TaxDecision,
    credit: int, at: datetime, configuration: Configuration | None = None,
) -> Order:
    """The engine's renewal of a subscription for the period after ``period``, the account's
    credit (``credit`` ≥ 0, minor units) applied first. ``configuration``: the same one, already
    built (the billing run shares one per plan, cycle, quantity and price)."""
    config = configuration or Configuration(catalog.plan(plan_code), catalog.cycle(cycle_code),
                                            quantity, Money(unit_amount, currency))
    term = Term(config, period, anchor, Money(invoiced_amount, currency))
    return price_order(kind=OrderKind.RENEWAL, at=at, target=config, tax=tax,
                       credit_balance=Money(max(credit, 0), currency), current=term)


def renewal_payment_key(subscription_id: int, period_start: datetime, attempt: int) -> str:
    """The idempotency key of card attempt ``attempt`` (1 = the first) for the renewal of
    ``subscription_id`` starting at ``period_start``: the gateway answers a key it has seen
    with its first outcome, so a retried call never charges twice."""
    return f"renewal:{subscription_id}:{_instant(period_start)}:{attempt}"


class RenewalRow(NamedTuple):
    """A renewal, in the column order of ``jobs_renewal`` (the invoice id is the persister's)."""

    subscription_id: int
    account_id: int
    period_start: datetime
    period_end: datetime
    status: str
    attempts: int
    created_at: datetime


#: ``jobs_renewal``'s columns as the set-based persister writes them.
RENEWAL_COLUMNS = ("invoice_id", *RenewalRow._fields)


class RenewalRows(NamedTuple):
    """Everything a renewal writes: its invoice, the first card attempt (None when credit paid it
    all or the account pays on terms), the renewal row, and the subscription's new invoiced
    amount for the new period (``order.period``)."""

    document: DocumentRows
    payment: PaymentRow | None
    renewal: RenewalRow
    order: Order

    @property
    def settled(self) -> bool:
        """Paid in full by the account's credit: its receipt goes out now (no charge step)."""
        return self.document.head.amount_due == 0

    @property
    def invoiced_amount(self) -> int:
        return self.order.lines[0].amount.amount


def renewal_build(
    *, order: Order, subscription_id: int, account_id: int, corporate: bool,
    payment_terms_days: int, card_id: int | None, card_label: str, at: datetime,
    year: int | None = None,
) -> RenewalRows:
    """The rows of a renewal priced as ``order`` (:func:`renewal_order`), issued at ``at``: an
    invoice of one line for the new period; a corporate account's is due ``payment_terms_days``
    later and is not charged; otherwise what the credit did not pay is a pending card attempt
    on the default card (``card_id``, None: none on file)."""
    totals = order.totals
    document = document_build(
        account_id=account_id, kind=_INVOICE,
        lines=[DraftLine(line, subscription_id) for line in order.lines], at=at, tax=order.tax,
        currency=order.currency, credit_applied=totals.credit_applied.amount,
        due_at=at + timedelta(days=payment_terms_days) if corporate else None, year=year,
    )
    due = document.head.amount_due
    payment = None
    if due == 0:
        status, attempts = _RENEWAL_PAID, 0
    elif corporate:
        status, attempts = _RENEWAL_INVOICED, 0
    else:
        status, attempts = _RENEWAL_CHARGING, 1
        payment = card_attempt(
            account_id=account_id, currency=order.currency, amount=due, card_id=card_id,
            card_label=card_label, at=at, attempt=1,
            idempotency_key=renewal_payment_key(subscription_id, order.period.start, 1))
    renewal = RenewalRow(subscription_id, account_id, order.period.start, order.period.end,
                         status, attempts, at)
    return RenewalRows(document, payment, renewal, order)


# --- receipts -----------------------------------------------------------------------------------

class Recipient(NamedTuple):
    """A reader of an account's billing e-mails, in their language (else the account's): a
    billing contact (``user_id``), or the account's billing e-mail from its billing details
    (``user_id`` None: an accounts department's mailbox, greeted without a name)."""

    user_id: int | None
    email: str
    language: str
    name: str
    #: The account's time zone (IANA), in which the e-mail's dates are written and named.
    time_zone: str = ""


def billing_recipients(*, contacts: Sequence[Recipient], billing_email: str,
                       language: str) -> list[Recipient]:
    """Who gets an account's billing e-mails: its billing contacts and, in addition, the billing
    e-mail of its billing details in the account's language, unless a contact already has that
    address (case-insensitive: one e-mail per mailbox)."""
    recipients = list(contacts)
    address = billing_email.strip()
    if address and address.casefold() not in {r.email.casefold() for r in recipients}:
        recipients.append(Recipient(None, address, language, ""))
    return recipients


def _reader_context(recipient: Recipient) -> dict[str, Any]:
    """What an e-mail's context says of its reader: the greeting's name, the account's zone,
    and whether the reader is the account's billing e-mail (the footer says why it is sent)."""
    context: dict[str, Any] = {"name": recipient.name}
    if recipient.time_zone:
        context["time_zone"] = recipient.time_zone
    if recipient.user_id is None:
        context["to_billing_email"] = True
    return context


def recipient_name(*, first_name: str, last_name: str, email: str) -> str:
    """How an e-mail greets its reader: their full name, else their address."""
    return f"{first_name} {last_name}".strip() or email


@dataclass(frozen=True, slots=True)
class ReceiptConfiguration:
    """What a product was before a change, as a receipt names it: plan name, licenses, cycle code."""

    plan: str
    licenses: int
    cycle: str

    def to_json(self) -> dict[str, Any]:
        return {"plan": self.plan, "licenses": self.licenses, "cycle": self.cycle}


@dataclass(frozen=True, slots=True)
class ReceiptItem:
    """One product of a receipt (``outbox.TEMPLATES``' item shape): its product and plan names,
    licenses and cycle code, the period ``[start, end)`` the document pays for, the next billing
    date (None: it does not renew) and, for a change, what it was (``previous``).

    Both roads of a renewal build it from the invoice's charge line (:func:`receipt_items`), the
    services of an order from its summary: so a receipt says the same whoever wrote it."""

    product: str
    plan: str
    licenses: int
    cycle: str
    period: Period
    next_billing_date: datetime | None
    previous: ReceiptConfiguration | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "product": self.product, "plan": self.plan, "licenses": self.licenses,
            "cycle": self.cycle,
            "previous": None if self.previous is None else self.previous.to_json(),
            "period_start": _instant(self.period.start),
            "period_end": _instant(self.period.end),
            "next_billing_date": (None if self.next_billing_date is None
                                  else _instant(self.next_billing_date)),
        }


class _ChargeLine(Protocol):
    """A document line as both roads hold it: :class:`LineRow` (the billing run) or a saved
    ``DocumentLine`` (the services) have these attributes."""

    position: int
    kind: str
    plan_code: str
    cycle_code: str
    quantity: int
    period_start: datetime
    period_end: datetime


def receipt_items(lines: Iterable[_ChargeLine], catalog: Catalog, *,
                  renews: bool = True) -> list[ReceiptItem]:
    """The items of a receipt for a document's ``lines``: one per charge line, in position order,
    named from ``catalog``, with the line's period; billed next at its end when ``renews``."""
    items = []
    for line in sorted(lines, key=lambda line: line.position):
        if line.kind != LineKind.CHARGE.value:
            continue
        plan = catalog.plan(line.plan_code)
        items.append(ReceiptItem(
            product=catalog.products[plan.product_code].name, plan=plan.name,
            licenses=line.quantity, cycle=line.cycle_code,
            period=Period(line.period_start, line.period_end),
            next_billing_date=line.period_end if renews else None))
    return items


def receipt_context(
    *, kind: str, number: str, currency: str, amount_paid: int, total: int, credit_applied: int,
    period: Period | None = None, next_billing_date: datetime | None = None,
    items: Sequence[ReceiptItem] | None = None,
) -> dict[str, Any]:
    """The ``receipt`` e-mail's context (``kind``: purchase, change, renewal or refund), without the
    reader's ``name`` (:func:`receipt_messages` adds it). ``items``: each product with its own
    period and next billing date."""
    context: dict[str, Any] = {
        "kind": kind, "document_number": number,
        "amount_paid": money_json(amount_paid, currency),
        "total": money_json(total, currency),
        "credit_applied": money_json(credit_applied, currency),
    }
    if items is not None:
        context["items"] = [item.to_json() for item in items]
    if period is not None:
        context["period_start"] = _instant(period.start)
        context["period_end"] = _instant(period.end)
    if next_billing_date is not None:
        context["next_billing_date"] = _instant(next_billing_date)
    return context


class _Totals(Protocol):
    """A document's head as both roads hold it (:class:`DocumentHead`, a saved ``Document``)."""

    currency: str
    amount_paid: int
    total: int
    credit_applied: int


def receipt_context_for_renewal(
    *, number: str, head: _Totals, lines: Iterable[_ChargeLine], catalog: Catalog,
    period: Period,
) -> dict[str, Any]:
    """A renewal's receipt: the invoice's amounts as they stand, the period it pays for, renewed
    again at its end, and its item (from the invoice's charge line) with that period. The one
    context of a renewal receipt, whichever road writes it (the billing run's, a charge, Pay
    now)."""
    return receipt_context(kind="renewal", number=number, currency=head.currency,
                           amount_paid=head.amount_paid, total=head.total,
                           credit_applied=head.credit_applied, period=period,
                           next_billing_date=period.end, items=receipt_items(lines, catalog))


def event_key(event: str, recipient: Recipient) -> str:
    """The one dedupe-key rule of billing e-mails: the event's key, then the reader's user id
    (``receipt:invoice:42:7``), or ``billing`` for the account's billing e-mail
    (``receipt:invoice:42:billing``): each reader gets each event's e-mail once."""
    return f"{event}:{recipient.user_id if recipient.user_id is not None else 'billing'}"


def receipt_context_for_refund(
    *, number: str, currency: str, amount_refunded: int, invoice_number: str, method: str = "",
) -> dict[str, Any]:
    """A refund's receipt (kind ``refund``): credit note ``number`` refunding ``amount_refunded``
    (minor units, tax included) of invoice ``invoice_number`` to ``method`` (the card's label).
    The amount is the receipt's ``amount_paid``: what moved, here back to the customer."""
    context = receipt_context(kind="refund", number=number, currency=currency,
                              amount_paid=amount_refunded, total=amount_refunded,
                              credit_applied=0)
    context["invoice_number"] = invoice_number
    if method:
        context["method"] = method
    return context


def receipt_event(document_kind: str, document_id: int) -> str:
    """The event of a document's receipt (``receipt:invoice:42``, ``receipt:credit_note:9``)."""
    return f"receipt:{document_kind}:{document_id}"


def contact_messages(
    *, recipients: Iterable[Recipient], template: str, context: Mapping[str, Any], event: str,
    at: datetime, attachments: list[dict[str, Any]] | None = None,
) -> list[OutboxMessage]:
    """One outbox row of ``template`` per recipient (validated by the outbox's contract,
    :func:`~prorata.notifications.outbox.outbox_message`), not saved."""
    from prorata.notifications.outbox import outbox_message

    return [
        outbox_message(to=recipient.email, template=template,
                       context={**context, **_reader_context(recipient)},
                       language=recipient.language,
                       dedupe_key=event_key(event, recipient), attachments=attachments or [],
                       at=at)
        for recipient in recipients
    ]


def document_path(account_id: int, document_id: int) -> str:
    """The site path of a document's page in the billing center (its PDF, for its account's
    members), which a receipt links to."""
    from django.urls import reverse

    return reverse("billing:document", args=[account_id, document_id])


def receipt_messages(
    *, recipients: Iterable[Recipient], account_id: int, document_kind: str, document_id: int,
    context: Mapping[str, Any], at: datetime,
    credit_note_ids: Sequence[int] = (),
) -> list[OutboxMessage]:
    """The receipt of document ``document_id`` of account ``account_id`` to each recipient, the
    document attached (and the credit notes issued with it), linking to the document's page."""
    context = {**context, "url": document_path(account_id, document_id)}
    attachments = [{"kind": document_kind, "id": document_id}] + [
        {"kind": DocumentKind.CREDIT_NOTE.value, "id": pk} for pk in credit_note_ids]
    return contact_messages(recipients=recipients, template="receipt", context=context,
                            event=receipt_event(document_kind, document_id), at=at,
                            attachments=attachments)
