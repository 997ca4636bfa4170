"""The shared checker can fail: on a sound history it finds nothing, and each corruption of one
row (made inside a savepoint that is rolled back, so the check after the test sees the sound
history again, and with the books' database guards switched off by the owner for that savepoint)
is reported under its invariant's id. A checker that cannot fail is a defect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import F

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
    PaymentStatus,
    Refund,
)
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.payments.models import SandboxCharge
from tests.reliability.books import books_unguarded
from tests.reliability.invariants import card_numbers_in, check_all
from tests.reliability.world import History, history


@pytest.fixture
def world(clock, demo_catalog) -> History:
    return history(clock)


# --- one corruption per rule ---------------------------------------------------------------------

def _copy(row, **changes):
    fields = {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields
              if not f.primary_key}
    fields.update(changes)
    return type(row).objects.create(**fields)


def gateway_charge_without_payment(world: History) -> None:
    charge = SandboxCharge.objects.filter(outcome="succeeded").first()
    _copy(charge, idempotency_key="lost-key", reference="ch_lost")


def second_payment_for_a_paid_invoice(world: History) -> None:
    payment = Payment.objects.filter(status=PaymentStatus.SUCCEEDED, invoice=world.purchase).get()
    _copy(payment, idempotency_key="twice")


def payment_failed_though_charged(world: History) -> None:
    key = SandboxCharge.objects.filter(outcome="succeeded").first().idempotency_key
    Payment.objects.filter(idempotency_key=key).update(status=PaymentStatus.FAILED)


def second_renewal_of_a_period(world: History) -> None:
    renewal = Document.objects.filter(kind=DocumentKind.INVOICE, order__isnull=True,
                                      account=world.acme).exclude(
        status=DocumentStatus.VOID).first()
    copy = _copy(renewal, number=None, sequence=None)
    for line in renewal.lines.all():
        _copy(line, document_id=copy.pk)
    Document.objects.filter(pk=copy.pk).update(number="COPY-1", series="ZZ", sequence=1)


def overlapping_periods(world: History) -> None:
    first = DocumentLine.objects.filter(document__account=world.acme,
                                        kind=LineKind.CHARGE).order_by("period_start").first()
    DocumentLine.objects.filter(pk=first.pk).update(period_end=F("period_end") + timedelta(days=40))


def ledger_row_twice(world: History) -> None:
    entry = LedgerEntry.objects.filter(kind=LedgerKind.PAYMENT).first()
    _copy(entry)


def stored_balance_off_by_a_cent(world: History) -> None:
    AccountBalance.objects.filter(account=world.initech).update(balance=F("balance") + 1)


def line_changed_after_issue(world: History) -> None:
    line = DocumentLine.objects.filter(document=world.purchase).first()
    DocumentLine.objects.filter(pk=line.pk).update(amount=F("amount") + 1)


def open_invoice_with_nothing_due(world: History) -> None:
    Document.objects.filter(pk=world.purchase.pk).update(status=DocumentStatus.OPEN)


def refund_above_captured(world: History) -> None:
    Refund.objects.update(amount=F("amount") + 10**9)


def credit_note_of_another_account(world: History) -> None:
    Document.objects.filter(kind=DocumentKind.CREDIT_NOTE, account=world.initech).update(
        refers_to=Document.objects.filter(account=world.acme, kind=DocumentKind.INVOICE).first())


def gap_in_numbers(world: History) -> None:
    last = Document.objects.filter(kind=DocumentKind.INVOICE, number__isnull=False).order_by(
        "-sequence").first()
    Document.objects.filter(pk=last.pk).update(sequence=F("sequence") + 5)


def counter_ahead(world: History) -> None:
    DocumentCounter.objects.update(last=F("last") + 1)


def mail_failed_silently(world: History) -> None:
    OutboxMessage.objects.filter(pk=OutboxMessage.objects.first().pk).update(
        status=OutboxStatus.FAILED, last_error="")


def mail_sent_without_date(world: History) -> None:
    OutboxMessage.objects.filter(pk=OutboxMessage.objects.first().pk).update(sent_at=None)


def renewal_after_a_gap(world: History) -> None:
    line = DocumentLine.objects.filter(document__account=world.acme, kind=LineKind.CHARGE,
                                       document__order__isnull=True).first()
    DocumentLine.objects.filter(pk=line.pk).update(period_start=F("period_start") + timedelta(days=1))


def empty_period(world: History) -> None:
    line = DocumentLine.objects.filter(kind=LineKind.CREDIT, document__account=world.initech).first()
    DocumentLine.objects.filter(pk=line.pk).update(period_end=F("period_start"))


def document_numbered_in_the_utc_year(world: History) -> None:
    # Issued at 23:30 UTC on 31 December: already the next year in Paris, numbered in the UTC
    # year (the rule before the seller's time zone).
    issued = world.purchase.issued_at.replace(month=12, day=31, hour=23, minute=30)
    Document.objects.filter(pk=world.purchase.pk).update(issued_at=issued, year=issued.year)


def card_number_in_a_text(world: History) -> None:
    type(world.acme).objects.filter(pk=world.acme.pk).update(
        billing_address="4242 4242 4242 4242\n1 Road")


def card_number_in_json(world: History) -> None:
    message = OutboxMessage.objects.first()
    OutboxMessage.objects.filter(pk=message.pk).update(
        context={**message.context, "note": "card 4000-0566-5566-5556"})


CORRUPTIONS: list[tuple[str, Callable[[History], None]]] = [
    ("I1", gateway_charge_without_payment),
    ("I1", second_payment_for_a_paid_invoice),
    ("I1", payment_failed_though_charged),
    ("I2", second_renewal_of_a_period),
    ("I2", overlapping_periods),
    ("I3", ledger_row_twice),
    ("I3", stored_balance_off_by_a_cent),
    ("I4", line_changed_after_issue),
    ("I4", open_invoice_with_nothing_due),
    ("I4", refund_above_captured),
    ("I4", credit_note_of_another_account),
    ("I5", gap_in_numbers),
    ("I5", counter_ahead),
    ("I6", mail_failed_silently),
    ("I6", mail_sent_without_date),
    ("I10", renewal_after_a_gap),
    ("I10", empty_period),
    ("I10", document_numbered_in_the_utc_year),
    ("I11", card_number_in_a_text),
    ("I11", card_number_in_json),
]


def test_each_corruption_is_caught(world):
    """One history for every corruption (building it is most of the cost): each is made and
    checked inside its own savepoint, rolled back before the next."""
    assert check_all() == []
    missed = {}
    for invariant, corrupt in CORRUPTIONS:
        with transaction.atomic():
            # The database refuses most of these (prorata.common.books): as the owner, the
            # guards are off for this savepoint only, so the checker still sees each corruption.
            with books_unguarded():
                corrupt(world)
            found = check_all()
            transaction.set_rollback(True)
        if invariant not in {violation.invariant for violation in found}:
            missed[corrupt.__name__] = [str(violation) for violation in found]
    assert missed == {}
    assert check_all() == []


def test_every_invariant_has_a_corruption():
    assert {invariant for invariant, _ in CORRUPTIONS} == {
        "I1", "I2", "I3", "I4", "I5", "I6", "I10", "I11"}


@pytest.mark.parametrize(("text", "found"), [
    ("4242424242424242", ["…4242"]),
    ("card 4242 4242 4242 4242.", ["…4242"]),
    ("4000-0566-5566-5556", ["…5556"]),
    ("3782 822463 10005", ["…0005"]),  # American Express, 4-6-5
    ("4242424242424241", []),  # not Luhn-valid
    ("•••• 4242", []),
    ("pm_sandbox_4242424242424242ab", []),  # inside a token
    ("2026-000123 2026-03-11 2026-04-11", []),  # invoice numbers and dates
    ("1767225600 1769904000", []),  # timestamps
])
def test_card_numbers_in(text, found):
    assert card_numbers_in(text) == found


def test_a_test_that_uses_no_database_is_given_none():
    """The suite's invariants fixture opens the database only for a test that uses it (one that
    did not, run alone, ended with "no such table": pytest-django had created none)."""
    with pytest.raises(RuntimeError, match="Database access not allowed"):
        Document.objects.exists()
