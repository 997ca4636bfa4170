"""Documents are immutable once final, numbers are gapless, the ledger is append-only, and the books
balance: stored balances = ledger sums = credit notes + payments − invoices − refunds."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction

from prorata.billing.locks import lock_counters
from prorata.billing.models import (
    AccountBalance,
    Document,
    DocumentCounter,
    DocumentKind,
    ImmutableRecord,
    LedgerEntry,
    LedgerKind,
)
from prorata.billing.queries import books_imbalances_sql
from prorata.billing.receipts import document_pdf, document_pdf_snapshot
from prorata.billing.selectors import (
    Imbalance,
    account_balance,
    books_balance,
    credit_balance,
    transactions_for_account,
)
from prorata.billing.services import (
    Movement,
    RefundRefused,
    documents_finalize,
    ledger_append,
    payment_refund,
)
from prorata.common.db import is_transient, retry_transient
from prorata.common.errors import Busy
from prorata.notifications.outbox import _RENDERERS
from prorata_core.periods import utc
from tests.app.subscriptions.support import assert_books_balance, buy, card, eur

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("books")]


@pytest.fixture
def paid(acme):
    account, alice = acme
    return buy(account, alice, "standard", "annual", 2, card_token=card())


def test_a_finalised_document_only_changes_its_payment_state(paid):
    invoice = Document.objects.get(pk=paid.invoice.pk)
    invoice.total = 1
    with pytest.raises(ImmutableRecord, match="only its payment state may change, not total"):
        invoice.save()
    invoice = Document.objects.get(pk=paid.invoice.pk)
    invoice.snapshot = {**invoice.snapshot, "total": 1}
    with pytest.raises(ImmutableRecord):
        invoice.save()
    invoice = Document.objects.get(pk=paid.invoice.pk)
    invoice.status = "void"
    invoice.save()  # the payment state may move
    invoice.status = "paid"
    invoice.save()
    with pytest.raises(ImmutableRecord):
        invoice.delete()
    line = invoice.lines.get()
    line.amount = 0
    with pytest.raises(ImmutableRecord):
        line.save()
    with pytest.raises(ImmutableRecord):
        line.delete()


def test_the_ledger_is_append_only_in_the_model_and_the_database(paid):
    entry = LedgerEntry.objects.filter(account=paid.order.account).first()
    entry.amount = 0
    with pytest.raises(ImmutableRecord):
        entry.save()
    with pytest.raises(ImmutableRecord):
        entry.delete()
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(amount=0)


def test_numbers_are_gapless_per_series_and_year(db, clock):
    clock.set(utc(2026, 12, 31))
    with transaction.atomic():
        counters = lock_counters([("CN-", 2026), ("", 2026), ("", 2026)])
        assert sorted(counters) == [("", 2026), ("CN-", 2026)]
    assert DocumentCounter.objects.count() == 2
    with pytest.raises(Exception, match="keeps its number"):
        documents_finalize(documents=[Document(number="2026-000001")])


def test_the_books_check_finds_a_stored_balance_that_drifted(paid):
    account = paid.order.account
    assert books_balance() == [] and books_imbalances_sql() == []
    AccountBalance.objects.filter(account=account).update(balance=5)
    assert books_balance() == [Imbalance(account.pk, "USD", 5, 0, 0)]
    assert books_imbalances_sql() == [(account.pk, "USD", 5, 0, 0)]
    AccountBalance.objects.filter(account=account).update(balance=0)


def test_a_ledger_entry_without_its_document_unbalances_the_books(paid):
    account = paid.order.account
    with transaction.atomic():
        ledger_append(account=account, currency="USD", at=utc(2026, 1, 2), movements=[
            Movement(LedgerKind.PAYMENT, 100, memo="a payment nobody recorded")])
    assert [str(problem) for problem in books_balance()] == [
        f"account {account.pk} USD: stored 100, ledger 100, documents and payments 0"]
    assert len(books_imbalances_sql()) == 1
    with transaction.atomic():
        ledger_append(account=account, currency="USD", at=utc(2026, 1, 2), movements=[
            Movement(LedgerKind.PAYMENT, -100, memo="correction")])
    assert_books_balance()


def test_balances_and_credit(bistro, clock):
    account, jeanne = bistro
    assert account_balance(account) == eur("0") == credit_balance(account)
    buy(account, jeanne, "lite", "monthly", 5, card_token=card())
    clock.set(utc(2026, 1, 11))
    buy(account, jeanne, "lite", "monthly", 3)
    assert account_balance(account) == eur("25.55") == credit_balance(account)


def test_the_history_pages_by_keyset_newest_first_with_filters(bistro, clock):
    account, jeanne = bistro
    buy(account, jeanne, "lite", "monthly", 5, card_token=card())
    clock.set(utc(2026, 1, 11))
    buy(account, jeanne, "lite", "monthly", 3)
    first = transactions_for_account(account=account, limit=3)
    assert [entry.kind for entry in first.entries] == ["invoice", "credit_note", "payment"]
    second = transactions_for_account(account=account, limit=3, cursor=first.next_cursor)
    assert [entry.kind for entry in second.entries] == ["invoice"]
    assert second.next_cursor is None
    payments = transactions_for_account(account=account, kinds=["payment"])
    assert [entry.amount for entry in payments.entries] == [33000]
    january_2 = transactions_for_account(account=account, start=utc(2026, 1, 2))
    assert len(january_2.entries) == 2
    assert transactions_for_account(account=account, cursor="garbage").entries


def test_receipts_are_rendered_from_the_snapshot_with_the_current_payment_state(paid):
    invoice = paid.invoice
    snapshot = document_pdf_snapshot(invoice)
    assert snapshot["number"] == "2026-000001" and snapshot["status"] == "paid"
    name, pdf = _RENDERERS["invoice"](invoice.pk, "fr")
    assert name == "invoice-2026-000001.pdf" and pdf.startswith(b"%PDF")
    assert document_pdf(document=invoice, language="en")[1].startswith(b"%PDF")
    assert "credit_note" in _RENDERERS
    with pytest.raises(ValueError):
        document_pdf_snapshot(Document(kind=DocumentKind.INVOICE))


def test_a_refund_pays_back_credit_only(bistro, clock, support):
    account, jeanne = bistro
    first = buy(account, jeanne, "lite", "monthly", 5, card_token=card())
    payment = first.invoice.payments.get()
    with pytest.raises(RefundRefused, match=r"At most 0\.00 EUR"):
        payment_refund(payment=payment, amount=eur("10.00"), actor=support)
    clock.set(utc(2026, 1, 11))
    buy(account, jeanne, "lite", "monthly", 3)  # leaves 25.55 of credit
    refund = payment_refund(payment=payment, amount=eur("25.55"), actor=support, memo="asked")
    assert refund.status == "succeeded" and refund.reference.startswith("re_")
    assert credit_balance(account) == eur("0")
    assert LedgerEntry.objects.filter(refund=refund).get().amount == -2555
    assert_books_balance()


class _Transient(Exception):
    sqlstate = "40001"


def _db_error(sqlstate_error):
    error = OperationalError("could not serialize access")
    error.__cause__ = sqlstate_error
    return error


class _OutsideTransactions:
    in_atomic_block = False


def test_serialization_failures_are_retried_a_bounded_number_of_times(db, monkeypatch):
    monkeypatch.setattr("prorata.common.db.time.sleep", lambda seconds: None)
    monkeypatch.setattr("prorata.common.db.connection", _OutsideTransactions())
    calls = []

    @retry_transient(attempts=3)
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise _db_error(_Transient())
        return "done"

    assert flaky() == "done" and len(calls) == 3
    assert is_transient(_db_error(_Transient()))
    assert not is_transient(OperationalError("disk full"))

    @retry_transient(attempts=2)
    def always():
        raise _db_error(_Transient())

    with pytest.raises(Busy) as busy:
        always()
    assert busy.value.http_status == 503 and "Try again" in busy.value.message

    @retry_transient
    def other():
        raise OperationalError("no such table")

    with pytest.raises(OperationalError):
        other()
    monkeypatch.undo()
    assert connection.in_atomic_block  # inside a transaction nothing is retried
    calls.clear()
    with pytest.raises(OperationalError):
        flaky()
    assert len(calls) == 1
