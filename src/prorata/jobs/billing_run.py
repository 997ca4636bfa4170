"""The billing run: every auto-renewing subscription whose period has ended is renewed exactly once.

Two steps (DESIGN §8, "charging is not invoicing"):

1. **Invoicing, set-based.** Chunks of due subscriptions are claimed with their accounts
   (``FOR UPDATE … SKIP LOCKED`` on PostgreSQL, so concurrent runs and checkouts never wait on each
   other in a cycle), priced in Python by the one engine (``price_order(kind=RENEWAL)``, the account's
   credit applied first), and written in one transaction per chunk with bulk inserts: the invoice
   with its gapless number and snapshot, its line, its ledger entry, the balance, the
   :class:`~prorata.jobs.models.Renewal` row (unique per subscription period: the exactly-once rule),
   the pending card payment, the history event, and the subscription's next period. A chunk that
   fails is redone one renewal per transaction, so one bad subscription never blocks the rest.
2. **Charging, one payment at a time, outside any transaction.** The gateway is called with the
   payment's idempotency key; its outcome is then recorded in a short transaction. A payment whose
   outcome is unknown (timeout, crash) stays pending and is driven again with the *same* key, which
   the gateway answers with the first outcome: a card is never charged twice for one attempt.
   A failed charge puts the subscription ``past_due`` and retries 1, 3 and 7 days after the first
   failure, with an e-mail each time; after the last failure the subscription expires.

Who may call: the ``prorata bill-run`` command, the periodic job, tests. Every instant is the
project clock's, read once per run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.db.models.functions import Mod

from prorata.accounts.models import Account, BillingMode, Membership
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
)
from prorata.billing.services import (
    Movement,
    buyer_details,
    ledger_append,
    notify_billing_contacts,
    seller_details,
)
from prorata.catalog.selectors import catalog_snapshot
from prorata.common.clock import format_instant, now
from prorata.common.locks import lock_account, lock_counters
from prorata.jobs.models import Renewal, RenewalStatus
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.payments.gateway import ChargeOutcome, get_gateway
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Subscription, SubscriptionEvent, SubscriptionStatus
from prorata.subscriptions.selectors import account_tax
from prorata_core.catalog import Catalog
from prorata_core.errors import ProrataError
from prorata_core.money import Money
from prorata_core.numbering import INVOICE_SERIES, format_number
from prorata_core.orders import Configuration, Order, OrderKind, Term, price_order
from prorata_core.periods import Period
from prorata_core.tax import TaxDecision

logger = logging.getLogger(__name__)

#: Days after the first failed charge on which it is tried again (DESIGN §3 "Renewal").
RETRY_DAYS = (1, 3, 7)
#: Subscriptions renewed per transaction (DESIGN §8: ~1,000 per transaction).
CHUNK_SIZE = 1000


@dataclass
class RunStats:
    """What a run did. ``failed_ids`` are subscriptions whose renewal raised, left for the next run."""

    renewed: int = 0
    chunks: int = 0
    fallbacks: int = 0
    charged: int = 0
    declined: int = 0
    unknown: int = 0
    expired: int = 0
    failed_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "renewed": self.renewed, "chunks": self.chunks, "fallbacks": self.fallbacks,
            "charged": self.charged, "declined": self.declined, "unknown": self.unknown,
            "expired": self.expired, "failed": len(self.failed_ids),
        }


def bill_run(
    *,
    chunk_size: int = CHUNK_SIZE,
    partition: tuple[int, int] | None = None,
    charge: bool = True,
) -> RunStats:
    """Renew every due subscription (of ``partition`` = (index, count) if given), then charge.

    Safe to interrupt at any instant and to run twice at once: a renewal is committed whole or not
    at all, and a period is invoiced once (database constraint).
    """
    at = now()
    stats = RunStats()
    catalog = catalog_snapshot()
    while renew_chunk(at=at, catalog=catalog, chunk_size=chunk_size, partition=partition,
                      stats=stats):
        pass
    if charge:
        charge_due(at=at, stats=stats, partition=partition)
    return stats


# --- step 1: invoicing ------------------------------------------------------------------------


@dataclass(slots=True)
class _Due:
    """A claimed subscription with what pricing and writing need (one row of the claim)."""

    subscription: Subscription
    account: Account


def _claim(
    *, at: datetime, limit: int, partition: tuple[int, int] | None, skip: list[int]
) -> list[_Due]:
    queryset = (
        Subscription.objects.filter(
            status=SubscriptionStatus.ACTIVE, auto_renew=True, period_end__lte=at
        )
        .select_related("account")
        .order_by("period_end", "id")
    )
    if skip:
        queryset = queryset.exclude(id__in=skip)
    if partition is not None:
        index, count = partition
        queryset = queryset.annotate(_part=Mod("id", count)).filter(_part=index)
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self", "account"))
    return [_Due(s, s.account) for s in queryset[:limit]]


def renew_chunk(
    *,
    at: datetime,
    catalog: Catalog,
    chunk_size: int,
    partition: tuple[int, int] | None,
    stats: RunStats,
) -> int:
    """Claim and renew up to ``chunk_size`` due subscriptions in one transaction; return how many
    were claimed (0: nothing is due any more)."""
    with transaction.atomic():
        due = _claim(at=at, limit=chunk_size, partition=partition, skip=stats.failed_ids)
        if not due:
            return 0
        try:
            with transaction.atomic():
                _renew(due, at=at, catalog=catalog)
            stats.renewed += len(due)
            stats.chunks += 1
            return len(due)
        except (IntegrityError, ProrataError, ValueError, KeyError) as error:
            logger.warning("billing run: chunk of %d failed (%s); one by one", len(due), error)
    # One renewal per transaction: the good ones land, the bad one is skipped for this run.
    stats.fallbacks += 1
    for item in due:
        with transaction.atomic():
            again = _reclaim(item.subscription.pk, at=at)
            if again is None:
                continue  # renewed meanwhile by another run
            try:
                with transaction.atomic():
                    _renew([again], at=at, catalog=catalog)
                stats.renewed += 1
            except (IntegrityError, ProrataError, ValueError, KeyError) as error:
                logger.error("billing run: subscription %s not renewed: %s",
                             item.subscription.pk, error)
                stats.failed_ids.append(item.subscription.pk)
    return len(due)


def _reclaim(subscription_id: int, *, at: datetime) -> _Due | None:
    queryset = Subscription.objects.filter(
        pk=subscription_id, status=SubscriptionStatus.ACTIVE, auto_renew=True, period_end__lte=at
    ).select_related("account")
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self", "account"))
    subscription = queryset.first()
    return _Due(subscription, subscription.account) if subscription else None


def _credit_balances(account_ids: set[int]) -> dict[tuple[int, str], int]:
    return {
        (account_id, currency): balance
        for account_id, currency, balance in AccountBalance.objects.filter(
            account_id__in=account_ids
        ).values_list("account_id", "currency", "balance")
    }


def _default_cards(account_ids: set[int]) -> dict[int, PaymentMethod]:
    return {
        method.account_id: method
        for method in PaymentMethod.objects.filter(
            account_id__in=account_ids, is_default=True, removed_at__isnull=True
        )
    }


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def _renew(due: list[_Due], *, at: datetime, catalog: Catalog) -> None:
    """Price and write the renewals of ``due`` (claimed and locked by the caller)."""
    account_ids = {item.account.pk for item in due}
    balances = _credit_balances(account_ids)
    cards = _default_cards(account_ids)
    taxes: dict[tuple[str, str], TaxDecision] = {}
    seller = seller_details()
    priced: list[tuple[_Due, Order]] = []
    for item in due:
        sub, account = item.subscription, item.account
        key = (account.country, account.vat_number)
        if key not in taxes:
            taxes[key] = account_tax(account, at)
        unit = Money(sub.unit_amount, sub.currency)
        config = Configuration(catalog.plan(sub.plan.code), catalog.cycle(sub.cycle.code),
                               sub.quantity, unit)
        term = Term(config, Period(sub.period_start, sub.period_end), sub.anchor,
                    Money(sub.invoiced_amount, sub.currency))
        credit = max(balances.get((account.pk, sub.currency), 0), 0)
        order = price_order(kind=OrderKind.RENEWAL, at=at, target=config, tax=taxes[key],
                            credit_balance=Money(credit, sub.currency), current=term)
        balances[(account.pk, sub.currency)] = (
            balances.get((account.pk, sub.currency), 0) - order.totals.total.amount
        )
        priced.append((item, order))

    # Gapless numbers: the counter is locked after the accounts and subscriptions (locks.py).
    counters = lock_counters([(INVOICE_SERIES, at.year)])
    counter = counters[(INVOICE_SERIES, at.year)]
    first = counter.last + 1
    counter.last += len(priced)
    counter.save(update_fields=["last"])

    documents: list[Document] = []
    for offset, (item, order) in enumerate(priced):
        sub, account = item.subscription, item.account
        line = order.lines[0]
        totals = order.totals
        corporate = account.billing_mode == BillingMode.CORPORATE
        paid = totals.amount_due.amount == 0
        number = format_number(INVOICE_SERIES, at.year, first + offset)
        snapshot = {
            "kind": DocumentKind.INVOICE.value, "number": number,
            "issued_at": format_instant(at),
            "due_at": (format_instant(at + timedelta(days=account.payment_terms_days))
                       if corporate else None),
            "refers_to": None, "currency": order.currency, "seller": seller,
            "buyer": buyer_details(account),
            "lines": [{
                "kind": line.kind.value, "description": line.description,
                "period_start": format_instant(line.period.start),
                "period_end": format_instant(line.period.end), "quantity": line.quantity,
                "unit_amount": line.unit_amount.amount, "ratio": "1/1",
                "amount": line.amount.amount, "tax_rate_bp": line.tax_rate_bp,
                "tax": line.tax.amount,
            }],
            "subtotal": totals.subtotal.amount, "tax": totals.tax.amount,
            "total": totals.total.amount, "credit_applied": totals.credit_applied.amount,
            "amount_paid": 0, "amount_due": totals.amount_due.amount,
            "tax_rule": order.tax.rule.value, "mention": order.tax.mention,
            "status": DocumentStatus.PAID.value if paid else DocumentStatus.OPEN.value,
        }
        documents.append(Document(
            kind=DocumentKind.INVOICE, series=INVOICE_SERIES, year=at.year,
            sequence=first + offset, number=number, account_id=account.pk,
            status=DocumentStatus.PAID if paid else DocumentStatus.OPEN, issued_at=at,
            due_at=(at + timedelta(days=account.payment_terms_days)) if corporate else None,
            paid_at=at if paid else None, currency=order.currency,
            subtotal=totals.subtotal.amount, tax=totals.tax.amount, total=totals.total.amount,
            credit_applied=totals.credit_applied.amount, amount_paid=0,
            amount_due=totals.amount_due.amount, tax_rule=order.tax.rule.value,
            tax_mention=order.tax.mention or "", snapshot=snapshot,
        ))
    Document.objects.bulk_create(documents)

    lines, entries, renewals, payments, events = [], [], [], [], []
    deltas: dict[tuple[int, str], int] = defaultdict(int)
    for (item, order), document in zip(priced, documents, strict=True):
        sub, account = item.subscription, item.account
        line = order.lines[0]
        lines.append(DocumentLine(
            document=document, position=1, kind=line.kind.value, description=line.description,
            subscription_id=sub.pk, plan_code=line.plan_code, cycle_code=line.cycle_code,
            quantity=line.quantity, period_start=line.period.start, period_end=line.period.end,
            unit_amount=line.unit_amount.amount, ratio_numerator=1, ratio_denominator=1,
            amount=line.amount.amount, tax_rate_bp=line.tax_rate_bp, tax=line.tax.amount,
        ))
        entries.append(LedgerEntry(
            account_id=account.pk, currency=order.currency, at=at, kind=LedgerKind.INVOICE,
            amount=-document.total, document=document, memo=f"Invoice {document.number}",
        ))
        deltas[(account.pk, order.currency)] -= document.total
        corporate = account.billing_mode == BillingMode.CORPORATE
        if document.amount_due == 0:
            status = RenewalStatus.PAID
        elif corporate:
            status = RenewalStatus.INVOICED
        else:
            status = RenewalStatus.CHARGING
            card = cards.get(account.pk)
            payments.append(Payment(
                account_id=account.pk, invoice=document, method=PaymentMethodKind.CARD,
                payment_method=card,
                method_label=f"{card.brand} •••• {card.last4}" if card else "",
                currency=order.currency, amount=document.amount_due,
                status=PaymentStatus.PENDING,
                idempotency_key=_payment_key(sub.pk, order.period.start, 1), attempt=1,
                created_at=at,
            ))
        renewals.append(Renewal(
            subscription_id=sub.pk, account_id=account.pk, period_start=order.period.start,
            period_end=order.period.end, invoice=document, status=status,
            attempts=1 if status == RenewalStatus.CHARGING else 0, created_at=at,
        ))
        events.append(SubscriptionEvent(
            subscription_id=sub.pk, at=at, kind=SubscriptionEvent.Kind.RENEWED,
            before={"period_start": format_instant(sub.period_start),
                    "period_end": format_instant(sub.period_end)},
            after={"period_start": format_instant(order.period.start),
                   "period_end": format_instant(order.period.end), "invoice": document.number},
        ))
    DocumentLine.objects.bulk_create(lines)
    LedgerEntry.objects.bulk_create(entries)
    Renewal.objects.bulk_create(renewals)  # the unique constraint refuses a period twice
    Payment.objects.bulk_create(payments)
    SubscriptionEvent.objects.bulk_create(events)

    with connection.cursor() as cursor:
        cursor.executemany(
            "UPDATE subscriptions_subscription SET period_start = %s, period_end = %s, "
            "invoiced_amount = %s, invoice_id = %s, version = version + 1 WHERE id = %s",
            [(order.period.start, order.period.end, order.lines[0].amount.amount, document.pk,
              item.subscription.pk)
             for (item, order), document in zip(priced, documents, strict=True)],
        )
        cursor.executemany(
            "INSERT INTO billing_accountbalance (account_id, currency, balance) VALUES (%s, %s, %s) "
            "ON CONFLICT (account_id, currency) DO UPDATE "
            "SET balance = billing_accountbalance.balance + excluded.balance",
            [(account_id, currency, delta) for (account_id, currency), delta in deltas.items()],
        )
    _receipts_for_credit_paid(priced, documents, at=at)


def _payment_key(subscription_id: int, period_start: datetime, attempt: int) -> str:
    return f"renewal:{subscription_id}:{format_instant(period_start)}:{attempt}"


def _receipts_for_credit_paid(
    priced: list[tuple[_Due, Order]], documents: list[Document], *, at: datetime
) -> None:
    """Queue receipts for the renewals the account's credit paid in full (no charge step)."""
    settled = [(item, order, document) for (item, order), document in zip(priced, documents,
               strict=True) if document.amount_due == 0]
    if not settled:
        return
    contacts: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for account_id, email, language in Membership.objects.filter(
        account_id__in={item.account.pk for item, _, _ in settled}, is_billing_contact=True,
        user__is_active=True,
    ).values_list("account_id", "user__email", "user__language"):
        contacts[account_id].append((email, language))
    messages = [
        OutboxMessage(
            dedupe_key=f"receipt:invoice:{document.pk}:{email}"[:200], to=email,
            template="receipt", language=language or item.account.language,
            context={"kind": "renewal", "document_number": document.number,
                     "amount_paid": _money(0, document.currency),
                     "total": _money(document.total, document.currency),
                     "credit_applied": _money(document.credit_applied, document.currency),
                     "period_start": format_instant(order.period.start),
                     "period_end": format_instant(order.period.end),
                     "next_billing_date": format_instant(order.period.end)},
            attachments=[{"kind": "invoice", "id": document.pk}],
            status=OutboxStatus.PENDING, next_attempt_at=at, created_at=at,
        )
        for item, order, document in settled
        for email, language in contacts[item.account.pk]
    ]
    OutboxMessage.objects.bulk_create(messages, ignore_conflicts=True)


# --- step 2: charging -------------------------------------------------------------------------


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
    gateway = get_gateway()
    for payment in pending.select_related("payment_method", "invoice").order_by("id").iterator():
        if payment.payment_method is None or payment.payment_method.removed_at is not None:
            _record_failure(payment.pk, at=at, code="no_payment_method",
                            message="There is no card on file: add one to pay.", stats=stats)
            continue
        result = gateway.charge(
            token=payment.payment_method.token, amount=Money(payment.amount, payment.currency),
            idempotency_key=payment.idempotency_key,
            description=f"Invoice {payment.invoice.number}",
        )
        if result.outcome is ChargeOutcome.SUCCEEDED:
            _record_success(payment.pk, reference=result.reference, at=at, stats=stats)
        elif result.outcome is ChargeOutcome.UNKNOWN:
            stats.unknown += 1  # left pending: the next run asks again with the same key
        else:
            _record_failure(payment.pk, at=at, code=result.outcome.value, message=result.message,
                            stats=stats)


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
            card = _default_cards({renewal.account_id}).get(renewal.account_id)
            renewal.attempts += 1
            renewal.status = RenewalStatus.CHARGING
            renewal.save(update_fields=["attempts", "status"])
            Payment.objects.create(
                account_id=renewal.account_id, invoice=renewal.invoice,
                method=PaymentMethodKind.CARD, payment_method=card,
                method_label=f"{card.brand} •••• {card.last4}" if card else "",
                currency=renewal.invoice.currency, amount=renewal.invoice.amount_due,
                status=PaymentStatus.PENDING,
                idempotency_key=_payment_key(renewal.subscription_id, renewal.period_start,
                                             renewal.attempts),
                attempt=renewal.attempts, created_at=at,
            )


def _renewal_of(payment: Payment) -> Renewal:
    return Renewal.objects.select_related("subscription").get(invoice_id=payment.invoice_id)


def _record_success(payment_id: int, *, reference: str, at: datetime, stats: RunStats) -> None:
    with transaction.atomic():
        payment = Payment.objects.get(pk=payment_id)
        account = lock_account(payment.account_id)
        payment = Payment.objects.select_related("invoice").get(pk=payment_id)
        if payment.status != PaymentStatus.PENDING:
            return  # recorded by another run
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
        renewal = _renewal_of(payment)
        renewal.status, renewal.next_attempt_at = RenewalStatus.PAID, None
        renewal.save(update_fields=["status", "next_attempt_at"])
        Subscription.objects.filter(
            pk=renewal.subscription_id, status=SubscriptionStatus.PAST_DUE
        ).update(status=SubscriptionStatus.ACTIVE, version=F("version") + 1)
        notify_billing_contacts(
            account=account, template="receipt", dedupe_key=f"receipt:invoice:{invoice.pk}",
            attachments=[{"kind": "invoice", "id": invoice.pk}],
            context={"kind": "renewal", "document_number": invoice.number,
                     "amount_paid": _money(invoice.amount_paid, invoice.currency),
                     "total": _money(invoice.total, invoice.currency),
                     "credit_applied": _money(invoice.credit_applied, invoice.currency),
                     "period_start": format_instant(renewal.period_start),
                     "period_end": format_instant(renewal.period_end),
                     "next_billing_date": format_instant(renewal.period_end)},
        )
    stats.charged += 1


def _record_failure(
    payment_id: int, *, at: datetime, code: str, message: str, stats: RunStats
) -> None:
    """Record a failed attempt: past_due and a retry on the dunning schedule, or, after the last
    retry, the subscription expires. An e-mail each time."""
    with transaction.atomic():
        payment = Payment.objects.get(pk=payment_id)
        account = lock_account(payment.account_id)
        payment = Payment.objects.select_related("invoice").get(pk=payment_id)
        if payment.status != PaymentStatus.PENDING:
            return
        payment.status, payment.failure_code, payment.message, payment.completed_at = (
            PaymentStatus.FAILED, code, message[:2000], at)
        payment.save(update_fields=["status", "failure_code", "message", "completed_at"])
        renewal = _renewal_of(payment)
        first_failed = renewal.first_failed_at or at
        retries_done = renewal.attempts - 1
        if retries_done < len(RETRY_DAYS):
            renewal.status = RenewalStatus.RETRYING
            renewal.first_failed_at = first_failed
            renewal.next_attempt_at = first_failed + timedelta(days=RETRY_DAYS[retries_done])
            new_status = SubscriptionStatus.PAST_DUE
        else:
            renewal.status, renewal.next_attempt_at = RenewalStatus.FAILED, None
            new_status = SubscriptionStatus.EXPIRED
            stats.expired += 1
        renewal.save(update_fields=["status", "first_failed_at", "next_attempt_at"])
        Subscription.objects.filter(pk=renewal.subscription_id).update(
            status=new_status, version=F("version") + 1
        )
        context: dict[str, Any] = {
            "amount_due": _money(payment.invoice.amount_due, payment.currency),
            "document_number": payment.invoice.number, "reason": message,
        }
        if renewal.next_attempt_at is not None:
            context["next_retry_at"] = format_instant(renewal.next_attempt_at)
        notify_billing_contacts(
            account=account, template="payment_failed", context=context,
            dedupe_key=f"payment_failed:{payment.pk}",
        )
    stats.declined += 1
