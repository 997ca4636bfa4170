"""Reads of balances, the ledger, documents and payments, and the books' check.

Balances are read from the stored :class:`~prorata.billing.models.AccountBalance` (one indexed row),
never summed from the ledger on a page; :func:`books_balance` and
:func:`~prorata.billing.queries.books_imbalances_sql` are the checks that the stored balances, the
ledger and the documents agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, Sum

from prorata.accounts.models import Account
from prorata.billing.models import (
    AccountBalance,
    Document,
    DocumentKind,
    LedgerEntry,
    Payment,
    PaymentStatus,
    Refund,
)
from prorata.billing.queries import ledger_page
from prorata.common.clock import instant_from_json
from prorata_core.money import Money
from prorata_core.tax import EU_COUNTRIES


def default_currency(country: str) -> str:
    """The currency an account buys in until its first purchase fixes it (``Account.currency``):
    EUR in the EU, USD elsewhere (the catalog's two currencies)."""
    return "EUR" if country in EU_COUNTRIES else "USD"


def account_balance(account: Account, currency: str | None = None) -> Money:
    """The account's balance (the sum of its ledger entries) in ``currency`` (by default the
    account's): positive is credit, negative is owed. One query."""
    currency = currency or account.currency or default_currency(account.country)
    value = (
        AccountBalance.objects.filter(account=account, currency=currency)
        .values_list("balance", flat=True)
        .first()
    )
    return Money(value or 0, currency)


def spendable_credit(balance: int, currency: str) -> Money:
    """The credit an account whose stored ``balance`` (minor units, positive in its favour) is
    this may spend on its next invoice: ``max(balance, 0)`` (S8): what it owes is no credit."""
    return Money(max(balance, 0), currency)


def credit_balance(account: Account, currency: str | None = None) -> Money:
    """The credit the account may spend on its next invoice (:func:`spendable_credit`). One query."""
    balance = account_balance(account, currency)
    return spendable_credit(balance.amount, balance.currency)


# --- the account's history (S10) -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LedgerPage:
    """One page of an account's history, newest first; ``next_cursor`` is ``None`` on the last."""

    entries: list[LedgerEntry]
    next_cursor: str | None


def _cursor(entry: LedgerEntry) -> str:
    return f"{entry.at.isoformat()}|{entry.pk}"


def _parse_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        at, pk = cursor.rsplit("|", 1)
        # A row id is a positive 64-bit integer in ASCII digits: a larger one is no row (and
        # SQLite cannot even compare it: a 500), and int() would read other scripts' digits.
        if not (pk.isascii() and pk.isdigit() and 0 < int(pk) < 2**63):
            return None
        return instant_from_json(at), int(pk)
    except (ValueError, AttributeError, OverflowError):
        return None


def transactions_for_account(
    *,
    account: Account,
    kinds: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    cursor: str | None = None,
    limit: int = 25,
) -> LedgerPage:
    """Every charge, payment, credit and refund of ``account``, newest first, ``limit`` per page.

    Filters: ``kinds`` (:class:`~prorata.billing.models.LedgerKind` values), ``[start, end)``.
    Keyset pagination on ``(at, id)`` (DESIGN §8): pass the previous page's ``next_cursor``; every
    page costs the same at any depth, and no total is counted. The entry's document and payment
    come along (one query), without the document's snapshot (a page shows its number and links
    to its PDF; parsing 25 snapshots was most of a page's time).

    One hand-written, prepared query (:func:`prorata.billing.queries.ledger_page`): the same
    model instances as ``select_related("document", "payment").defer("document__snapshot")``.
    """
    position = _parse_cursor(cursor) if cursor else None
    rows = ledger_page(account_id=account.pk, kinds=kinds or (), start=start, end=end,
                       after=position, limit=limit + 1)
    page = rows[:limit]
    more = len(rows) > limit
    return LedgerPage(entries=page, next_cursor=_cursor(page[-1]) if more and page else None)


def documents_for_account(
    *, account: Account, kind: str | None = None, limit: int | None = None
) -> list[Document]:
    """The account's finalised invoices and credit notes (receipts), newest first."""
    rows = Document.objects.filter(account=account, number__isnull=False)
    if kind:
        rows = rows.filter(kind=kind)
    rows = rows.order_by("-issued_at", "-id")
    return list(rows[:limit] if limit else rows)


def document_for_account(*, account: Account, document_id: int) -> Document | None:
    """One finalised document of ``account`` (``None`` for another account's or a draft)."""
    return Document.objects.filter(
        account=account, pk=document_id, number__isnull=False
    ).select_related("refers_to").first()


# --- the books ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Imbalance:
    """An account whose stored balance, ledger and documents do not agree (minor units)."""

    account_id: int
    currency: str
    stored: int
    ledger: int
    documents: int

    def __str__(self) -> str:
        return (f"account {self.account_id} {self.currency}: stored {self.stored}, "
                f"ledger {self.ledger}, documents and payments {self.documents}")


def _sums(rows: Any, field: str) -> dict[tuple[int, str], int]:
    return {
        (row["account_id"], row["currency"]): row["total"] or 0
        for row in rows.values("account_id", "currency").annotate(total=Sum(field))
    }


def books_balance() -> list[Imbalance]:
    """Every account (and currency) whose books do not balance; empty when all do (DESIGN §3).

    For each: the stored balance = the sum of its ledger entries = Σ credit notes credited +
    Σ payments received − Σ invoices issued − Σ refunds paid. (A credit note's total is negative,
    so "credited" is ``−total``, as for an invoice.) Used by the tests after every scenario.
    """
    stored = {
        (row["account_id"], row["currency"]): row["balance"]
        for row in AccountBalance.objects.values("account_id", "currency", "balance")
    }
    ledger = _sums(LedgerEntry.objects.all(), "amount")
    # A void invoice still counts: it was issued and posted; the credit note that voids it
    # posts the opposite amount (billing.renewals.renewal_dunning_ended).
    issued = Document.objects.filter(number__isnull=False)
    invoices = _sums(issued.filter(kind=DocumentKind.INVOICE), "total")
    credit_notes = _sums(issued.filter(kind=DocumentKind.CREDIT_NOTE), "total")
    payments = _sums(Payment.objects.filter(status=PaymentStatus.SUCCEEDED), "amount")
    refunds = _sums(Refund.objects.filter(status=PaymentStatus.SUCCEEDED), "amount")
    keys = set(stored) | set(ledger) | set(invoices) | set(credit_notes) | set(payments) | set(refunds)
    problems = []
    for key in sorted(keys):
        documents = (-credit_notes.get(key, 0) + payments.get(key, 0) - invoices.get(key, 0)
                     - refunds.get(key, 0))
        values = (stored.get(key, 0), ledger.get(key, 0), documents)
        if len(set(values)) > 1:
            problems.append(Imbalance(key[0], key[1], *values))
    return problems


def payments_to_reconcile(*, before: datetime) -> list[Payment]:
    """Card payments whose outcome is unknown, or still pending since before ``before`` (a crash
    between recording the payment and hearing from the gateway), or waiting since before
    ``before`` for the customer to authenticate them (3-D Secure with the customer present:
    ``requires_action`` and not completed; an off-session attempt that required it is over)."""
    return list(
        Payment.objects.filter(
            Q(status=PaymentStatus.UNKNOWN) | Q(status=PaymentStatus.PENDING, created_at__lt=before)
            | Q(status=PaymentStatus.REQUIRES_ACTION, completed_at__isnull=True,
                created_at__lt=before)
        ).order_by("created_at", "id")
    )
