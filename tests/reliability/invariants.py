"""The reliability suite's invariants (issue 18, RELIABILITY-PLAN §2), checked after every test.

:func:`check_all` reads the whole database (the test's, so it is small) and answers every
:class:`Violation` it finds; :func:`assert_invariants` fails with all of them listed. Each check
is a plain statement of a rule that holds whatever the code did before, so that a fault test can
end with "and nothing is lost, doubled or left unreconciled":

- **I1 no double charge**: per invoice and per order, the succeeded payments are at most what was
  due; the sandbox gateway's own record of succeeded charges (by idempotency key) has, for each
  charge, one payment of the same key and amount that is succeeded (or still being reconciled),
  and every succeeded sandbox-card payment has its succeeded charge.
- **I2 exactly-once renewal**: at most one renewal invoice (an invoice without an order, not void)
  per (subscription, period start); a subscription's invoiced periods do not overlap, except where
  a credit line of the same subscription gives back exactly the overlapped part (a change ends the
  old period at the change instant: DESIGN §3), or the overlap is worth 0.00 (a change in the
  period's last second: no credit note of nothing is issued).
- **I3 ledger balanced**: the ledger here is single-entry per account (positive in the customer's
  favour), so "each transaction sums to zero" is: every issued document, succeeded payment and
  succeeded refund has exactly one ledger row of its signed amount, in its account and currency,
  and nothing else has one; each stored balance equals the sum of its account's rows; and the
  books' identity of :func:`prorata.billing.selectors.books_balance` holds, checked both ways.
- **I4 documents reconcile**: an invoice's subtotal and tax are the sums of its lines; an invoice
  that is not void has ``total = amount_paid + credit_applied + amount_due`` with nothing negative,
  ``paid`` exactly when nothing is due; refunds of a payment (succeeded or still pending) are at
  most what it captured; a credit note corrects an issued invoice of the same account and currency.
- **I5 gapless numbers**: per (series, year) the sequences are exactly 1..N, the counter's last is
  N, and only finalised documents have a number.
- **I6 nothing lost**: every outbox e-mail and webhook delivery is sent, or visibly failed (an
  error recorded), or pending with nothing hidden (an attempt made has its error recorded).
- **I10 time tiles**: every period ``[start, end)`` (a document line's, a subscription's) is
  non-empty; a renewal (an invoice without an order) starts exactly where an invoiced period of
  the same subscription ended (unless it is the first period invoiced here), so that renewals
  leave no gap and overlap nothing; and a
  document's numbering year is the year of its issue in the seller's time zone
  (``PRORATA_SELLER_TIME_ZONE``). Instants are stored and read as UTC (``USE_TZ``): no check of
  its own.
- **I11 no card number**: no Luhn-valid 13-19 digit card number (contiguous, or in groups split by
  spaces or dashes) in any text or JSON column of any table.

Who may call: tests (and a future ``prorata_check`` command). Read-only; amounts in minor units.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise
from typing import Any

from django.apps import apps
from django.db import models

from prorata.billing.models import (
    AccountBalance,
    Document,
    DocumentCounter,
    DocumentKind,
    DocumentLine,
    DocumentStatus,
    LedgerEntry,
    LedgerKind,
    LineKind,
    Payment,
    PaymentMethodKind,
    PaymentStatus,
    Refund,
)
from prorata.billing.queries import books_imbalances_sql
from prorata.billing.selectors import books_balance
from prorata.common.cardnumbers import card_numbers_in as _card_numbers_in
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.payments.models import SandboxCharge
from prorata.subscriptions.models import Order, Subscription
from prorata.webhooks.models import DeliveryStatus, WebhookDelivery
from prorata_core.money import Money
from prorata_core.periods import seconds_between


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: the invariant's id (``"I1"`` …) and what was found, with the row ids."""

    invariant: str
    message: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.message}"


class InvariantsBroken(AssertionError):
    def __init__(self, violations: list[Violation]) -> None:
        self.violations = violations
        super().__init__("invariants broken:\n" + "\n".join(f"  {v}" for v in violations))


# --- I1 ------------------------------------------------------------------------------------------

def check_no_double_charge() -> list[Violation]:
    found = []
    paid: dict[int, int] = defaultdict(int)
    by_order: dict[int, int] = defaultdict(int)
    for invoice_id, order_id, amount in Payment.objects.filter(
            status=PaymentStatus.SUCCEEDED).values_list("invoice_id", "order_id", "amount"):
        if invoice_id is not None:
            paid[invoice_id] += amount
        if order_id is not None:
            by_order[order_id] += amount
    dues = {pk: total - credit for pk, total, credit in Document.objects.filter(
        pk__in=paid).values_list("pk", "total", "credit_applied")}
    for invoice_id, amount in sorted(paid.items()):
        if amount > max(dues.get(invoice_id, 0), 0):
            found.append(Violation("I1", f"invoice {invoice_id} received {amount} in succeeded "
                                         f"payments for {dues.get(invoice_id)} due after credit"))
    order_dues = dict(Order.objects.filter(pk__in=by_order).values_list("pk", "amount_due"))
    for order_id, amount in sorted(by_order.items()):
        if amount > max(order_dues.get(order_id, 0), 0):
            found.append(Violation("I1", f"order {order_id} received {amount} in succeeded "
                                         f"payments for {order_dues.get(order_id)} due"))
    payments = {row[0]: row[1:] for row in Payment.objects.values_list(
        "idempotency_key", "status", "amount", "pk")}
    charged = set()
    for key, amount in SandboxCharge.objects.filter(outcome="succeeded").values_list(
            "idempotency_key", "amount"):
        charged.add(key)
        payment = payments.get(key)
        if payment is None:
            found.append(Violation("I1", f"the gateway charged {amount} with key {key!r} and no "
                                         "payment records it (money taken, nothing owed)"))
        elif payment[0] == PaymentStatus.FAILED or payment[1] != amount:
            found.append(Violation("I1", f"payment {payment[2]} (key {key!r}) is {payment[0]} "
                                         f"for {payment[1]}, the gateway charged {amount}"))
    sandbox_paid = Payment.objects.filter(
        status=PaymentStatus.SUCCEEDED, method=PaymentMethodKind.CARD,
        payment_method__token__startswith="pm_sandbox_",
    ).values_list("pk", "idempotency_key")
    for pk, key in sandbox_paid:
        if key not in charged:
            found.append(Violation("I1", f"payment {pk} (key {key!r}) is succeeded but the "
                                         "gateway has no succeeded charge for it"))
    return found


# --- I2 ------------------------------------------------------------------------------------------

def check_renewals_once() -> list[Violation]:
    found = []
    lines = list(DocumentLine.objects.filter(
        document__kind=DocumentKind.INVOICE, document__number__isnull=False,
        subscription__isnull=False,
    ).exclude(document__status=DocumentStatus.VOID).values_list(
        "subscription_id", "kind", "period_start", "period_end", "document_id",
        "document__order_id", "amount", "document__currency"))
    renewals = Counter((sub, start) for sub, kind, start, _end, _doc, order, _amount, _cur in lines
                       if kind == LineKind.CHARGE and order is None)
    for (sub, start), count in sorted(renewals.items()):
        if count > 1:
            found.append(Violation("I2", f"subscription {sub} has {count} renewal invoices for "
                                         f"the period starting {start:%Y-%m-%dT%H:%M:%SZ}"))
    credits: dict[int, set[tuple[Any, Any]]] = defaultdict(set)
    for sub, start, end in DocumentLine.objects.filter(
            kind=LineKind.CREDIT, subscription__isnull=False,
            document__number__isnull=False).values_list("subscription_id", "period_start",
                                                         "period_end"):
        credits[sub].add((start, end))
    charges: dict[int, list[tuple[Any, Any, int, Money]]] = defaultdict(list)
    for sub, kind, start, end, doc, _order, amount, currency in lines:
        if kind == LineKind.CHARGE:
            charges[sub].append((start, end, doc, Money(amount, currency)))
    for sub, periods in sorted(charges.items()):
        # In the order the periods were charged (start, then document): a later document's
        # period replaces the earlier one's from its start, whose rest a credit must give back,
        # whether the new period is shorter (annual to monthly) or longer.
        periods.sort(key=lambda period: (period[0], period[2]))
        for (start, end, doc, amount), (next_start, next_end, next_doc, _) in pairwise(periods):
            if next_start >= end or credits[sub] & {(next_start, min(end, next_end)),
                                                    (next_start, end)}:
                continue
            if not amount.scaled(Fraction(seconds_between(next_start, end),
                                          seconds_between(start, end))):
                continue  # the overlap is worth 0.00: no credit note of nothing is issued
            found.append(Violation(
                "I2", f"subscription {sub}: period [{start:%Y-%m-%d %H:%M}, "
                      f"{end:%Y-%m-%d %H:%M}) of document {doc} overlaps "
                      f"[{next_start:%Y-%m-%d %H:%M}, …) of document {next_doc} "
                      "with no credit for the overlap"))
    return found


# --- I3 ------------------------------------------------------------------------------------------

def check_ledger_balanced() -> list[Violation]:
    found = []
    expected: dict[tuple[str, int], tuple[int, str, int]] = {}
    for pk, kind, account, currency, total in Document.objects.filter(
            number__isnull=False).values_list("pk", "kind", "account_id", "currency", "total"):
        expected[(kind, pk)] = (account, currency, -total)
    for pk, account, currency, amount in Payment.objects.filter(
            status=PaymentStatus.SUCCEEDED).values_list("pk", "account_id", "currency", "amount"):
        expected[(LedgerKind.PAYMENT, pk)] = (account, currency, amount)
    for pk, account, currency, amount in Refund.objects.filter(
            status=PaymentStatus.SUCCEEDED).values_list("pk", "account_id", "currency", "amount"):
        expected[(LedgerKind.REFUND, pk)] = (account, currency, -amount)
    posted: dict[tuple[str, int], list[tuple[int, str, int]]] = defaultdict(list)
    sums: dict[tuple[int, str], int] = defaultdict(int)
    for pk, kind, account, currency, amount, document, payment, refund in (
            LedgerEntry.objects.values_list("pk", "kind", "account_id", "currency", "amount",
                                            "document_id", "payment_id", "refund_id")):
        sums[(account, currency)] += amount
        source = {LedgerKind.INVOICE: document, LedgerKind.CREDIT_NOTE: document,
                  LedgerKind.PAYMENT: payment, LedgerKind.REFUND: refund}.get(kind)
        if source is None:
            found.append(Violation("I3", f"ledger row {pk} ({kind}) refers to no source"))
            continue
        posted[(str(kind), source)].append((account, currency, amount))
    for source, rows in sorted(posted.items()):
        want = expected.get(source)
        if want is None:
            found.append(Violation("I3", f"{source[0]} {source[1]} has ledger rows {rows} but "
                                         "is not an issued document or a succeeded movement"))
        elif rows != [want]:
            found.append(Violation("I3", f"{source[0]} {source[1]} should post exactly "
                                         f"{[want]}, the ledger has {rows}"))
    for source, want in sorted(expected.items()):
        if source not in posted:
            found.append(Violation("I3", f"{source[0]} {source[1]} ({want[2]} {want[1]}) "
                                         "has no ledger row"))
    for account, currency, balance in AccountBalance.objects.values_list(
            "account_id", "currency", "balance"):
        if balance != sums.get((account, currency), 0):
            found.append(Violation("I3", f"account {account} stores a balance of {balance} "
                                         f"{currency}, its ledger rows sum to "
                                         f"{sums.get((account, currency), 0)}"))
    found += [Violation("I3", f"books: {imbalance}") for imbalance in books_balance()]
    found += [Violation("I3", f"books (SQL): {row}") for row in books_imbalances_sql()]
    return found


# --- I4 ------------------------------------------------------------------------------------------

def check_documents_reconcile() -> list[Violation]:
    found = []
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for document, amount, tax in DocumentLine.objects.values_list("document_id", "amount", "tax"):
        sums[document][0] += amount
        sums[document][1] += tax
    issued = {}
    for row in Document.objects.values_list(
            "pk", "kind", "status", "number", "account_id", "currency", "subtotal", "tax",
            "total", "amount_paid", "credit_applied", "amount_due", "refers_to_id"):
        (pk, kind, status, number, account, currency, subtotal, tax, total, paid, credit, due,
         refers_to) = row
        issued[pk] = (number, account, currency, kind)
        if [subtotal, tax] != sums.get(pk, [0, 0]):
            found.append(Violation("I4", f"document {pk}: subtotal {subtotal} and tax {tax}, "
                                         f"its lines sum to {sums.get(pk, [0, 0])}"))
        if kind == DocumentKind.INVOICE and status != DocumentStatus.VOID:
            if total != paid + credit + due or min(paid, credit, due) < 0:
                found.append(Violation("I4", f"invoice {pk}: total {total} is not paid {paid} "
                                             f"+ credit applied {credit} + due {due}"))
            if (status == DocumentStatus.PAID) != (due == 0):
                found.append(Violation("I4", f"invoice {pk} is {status} with {due} due"))
    for pk, refers_to, account, currency in Document.objects.filter(
            kind=DocumentKind.CREDIT_NOTE, number__isnull=False).values_list(
            "pk", "refers_to_id", "account_id", "currency"):
        target = issued.get(refers_to)
        if (target is None or target[0] is None or target[3] != DocumentKind.INVOICE
                or target[1:3] != (account, currency)):
            found.append(Violation("I4", f"credit note {pk} corrects {refers_to}, which is not "
                                         "an issued invoice of its account and currency"))
    captured = dict(Payment.objects.filter(status=PaymentStatus.SUCCEEDED).values_list(
        "pk", "amount"))
    refunded: dict[int, int] = defaultdict(int)
    for payment, amount in Refund.objects.filter(
            status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PENDING, PaymentStatus.UNKNOWN]
    ).values_list("payment_id", "amount"):
        refunded[payment] += amount
    for payment, amount in sorted(refunded.items()):
        if amount > captured.get(payment, 0):
            found.append(Violation("I4", f"payment {payment}: {amount} refunded of "
                                         f"{captured.get(payment, 0)} captured"))
    return found


# --- I5 ------------------------------------------------------------------------------------------

def check_gapless_numbers() -> list[Violation]:
    found = []
    series: dict[tuple[str, int], list[int]] = defaultdict(list)
    for pk, name, year, sequence, number in Document.objects.values_list(
            "pk", "series", "year", "sequence", "number"):
        if number is None:
            if sequence is not None:
                found.append(Violation("I5", f"draft document {pk} holds sequence {sequence}"))
            continue
        series[(name, year)].append(sequence)
    counters = {(name, year): last for name, year, last in DocumentCounter.objects.values_list(
        "series", "year", "last")}
    for key in sorted(set(series) | set(counters)):
        sequences = sorted(series.get(key, []))
        if sequences != list(range(1, len(sequences) + 1)):
            missing = sorted(set(range(1, max(sequences, default=0) + 1)) - set(sequences))
            found.append(Violation("I5", f"series {key[0]!r} {key[1]}: numbers are not 1..N "
                                         f"(missing {missing[:10]}, N = {len(sequences)})"))
        if counters.get(key, 0) != len(sequences):
            found.append(Violation("I5", f"series {key[0]!r} {key[1]}: the counter is at "
                                         f"{counters.get(key, 0)} for {len(sequences)} documents"))
    return found


# --- I6 ------------------------------------------------------------------------------------------

def check_nothing_lost() -> list[Violation]:
    found = []
    for pk, status, attempts, error, sent_at in OutboxMessage.objects.values_list(
            "pk", "status", "attempts", "last_error", "sent_at"):
        if status == OutboxStatus.SENT and sent_at is None:
            found.append(Violation("I6", f"outbox message {pk} is sent with no sent_at"))
        elif status == OutboxStatus.FAILED and not error:
            found.append(Violation("I6", f"outbox message {pk} failed with no error recorded"))
        elif status == OutboxStatus.PENDING and attempts and not error:
            found.append(Violation("I6", f"outbox message {pk} is pending after {attempts} "
                                         "attempts with no error recorded"))
        elif status not in OutboxStatus.values:
            found.append(Violation("I6", f"outbox message {pk} has status {status!r}"))
    for pk, status, attempts, error, code, delivered in WebhookDelivery.objects.values_list(
            "pk", "status", "attempts", "last_error", "last_status_code", "delivered_at"):
        if status == DeliveryStatus.SUCCEEDED and delivered is None:
            found.append(Violation("I6", f"webhook delivery {pk} succeeded with no delivered_at"))
        elif status == DeliveryStatus.FAILED and not (error or code):
            found.append(Violation("I6", f"webhook delivery {pk} failed with no error recorded"))
        elif status == DeliveryStatus.PENDING and attempts and not (error or code):
            found.append(Violation("I6", f"webhook delivery {pk} is pending after {attempts} "
                                         "attempts with no error recorded"))
        elif status not in DeliveryStatus.values:
            found.append(Violation("I6", f"webhook delivery {pk} has status {status!r}"))
    return found


# --- I10 ------------------------------------------------------------------------------------------

def check_time_tiles() -> list[Violation]:
    from zoneinfo import ZoneInfo

    from django.conf import settings

    found = []
    for pk, start, end in DocumentLine.objects.filter(period_start__isnull=False).values_list(
            "pk", "period_start", "period_end"):
        if end is None or not start < end:
            found.append(Violation("I10", f"document line {pk} has the empty or reversed period "
                                          f"[{start}, {end})"))
    for pk, start, end in Subscription.objects.values_list("pk", "period_start", "period_end"):
        if not start < end:
            found.append(Violation("I10", f"subscription {pk} has the empty or reversed period "
                                          f"[{start}, {end})"))
    charged = DocumentLine.objects.filter(
        kind=LineKind.CHARGE, subscription__isnull=False, document__kind=DocumentKind.INVOICE,
        document__number__isnull=False).values_list(
        "subscription_id", "period_start", "period_end", "document_id", "document__order_id")
    ends: dict[int, set[Any]] = defaultdict(set)
    first: dict[int, Any] = {}
    renewals = []
    for sub, start, end, doc, order in charged:
        ends[sub].add(end)
        first[sub] = min(start, first.get(sub, start))
        if order is None:
            renewals.append((sub, start, doc))
    for sub, start, doc in sorted(renewals):
        # The first period invoiced here may start anywhere: a subscription brought in with its
        # history elsewhere (the benchmarks' loader) is first invoiced by its renewal.
        if start not in ends[sub] and start != first[sub]:
            found.append(Violation("I10", f"renewal invoice {doc} of subscription {sub} starts "
                                          f"at {start:%Y-%m-%dT%H:%M:%SZ}, where none of its "
                                          "invoiced periods ends (a gap or an overlap)"))
    zone = ZoneInfo(settings.PRORATA_SELLER_TIME_ZONE)
    for pk, year, issued_at in Document.objects.filter(number__isnull=False).values_list(
            "pk", "year", "issued_at"):
        if issued_at is not None and issued_at.astimezone(zone).year != year:
            found.append(Violation("I10", f"document {pk} issued at {issued_at:%Y-%m-%dT%H:%M:%SZ} "
                                          f"is numbered in {year}, not in its year in {zone}"))
    return found


# --- I11 -----------------------------------------------------------------------------------------

_TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def card_numbers_in(text: str) -> list[str]:
    """The Luhn-valid card numbers in ``text``, masked to their last four digits (the product's
    own definition, :mod:`prorata.common.cardnumbers`: the scrubber and this check agree)."""
    return [f"…{last4}" for last4 in _card_numbers_in(text)]


def check_no_card_numbers() -> list[Violation]:
    found = []
    for model in apps.get_models():
        fields = [f.attname for f in model._meta.concrete_fields if isinstance(f, _TEXT_FIELDS)]
        if not fields:
            continue
        for row in model._base_manager.values_list("pk", *fields):
            for name, value in zip(fields, row[1:], strict=True):
                if value is None:
                    continue
                masked = card_numbers_in(value if isinstance(value, str) else repr(value))
                if masked:
                    found.append(Violation("I11", f"{model._meta.db_table}.{name} row {row[0]} "
                                                  f"holds card number(s) {masked}"))
    return found


CHECKS = (
    check_no_double_charge,
    check_renewals_once,
    check_ledger_balanced,
    check_documents_reconcile,
    check_gapless_numbers,
    check_nothing_lost,
    check_time_tiles,
    check_no_card_numbers,
)


def check_all() -> list[Violation]:
    """Every violation of I1-I6, I10 and I11 in the current database (empty when all hold)."""
    return [violation for check in CHECKS for violation in check()]


def assert_invariants() -> None:
    violations = check_all()
    if violations:
        raise InvariantsBroken(violations)
