"""The ledger's one-statement post (``billing.queries.ledger_post``: the entries and the stored
balance's move, one statement on PostgreSQL) against the ORM form it replaces: the same rows."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from prorata.billing.models import AccountBalance, LedgerEntry, LedgerKind, Payment
from prorata.billing.queries import ledger_post, ledger_post_orm
from prorata_core.periods import utc
from tests.app.subscriptions.support import buy, save_card

pytestmark = pytest.mark.django_db

FIELDS = ("currency", "at", "kind", "amount", "document_id", "payment_id", "refund_id", "memo")


def entries(account, at, *amounts):
    return [LedgerEntry(account=account, currency="EUR", at=at, kind=kind, amount=amount,
                        memo=f"move {index}")
            for index, (kind, amount) in enumerate(zip(
                [LedgerKind.INVOICE, LedgerKind.PAYMENT, LedgerKind.CREDIT_NOTE], amounts, strict=False))]


def rows(account):
    return [tuple(getattr(entry, name) for name in FIELDS)
            for entry in LedgerEntry.objects.filter(account=account).order_by("id")]


def test_both_forms_write_the_same_entries_and_move_the_balance_alike(acme, bistro):
    sql_account, orm_account = acme[0], bistro[0]
    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured:
            first = ledger_post(entries(sql_account, utc(2026, 1, 1), -33000, 33000, 1250))
        ledger_post_orm(entries(orm_account, utc(2026, 1, 1), -33000, 33000, 1250))
        second = ledger_post(entries(sql_account, utc(2026, 2, 1), -500))
        ledger_post_orm(entries(orm_account, utc(2026, 2, 1), -500))
    assert rows(sql_account) == rows(orm_account) and len(rows(sql_account)) == 4
    assert [entry.pk for entry in first + second] == list(
        LedgerEntry.objects.filter(account=sql_account).order_by("id").values_list("id", flat=True))
    balances = dict(AccountBalance.objects.filter(currency="EUR", account__in=[
        sql_account, orm_account]).values_list("account_id", "balance"))
    assert balances == {sql_account.pk: 750, orm_account.pk: 750}
    # the entries and the balance's first row: one statement on PostgreSQL
    assert len(captured.captured_queries) == (1 if connection.vendor == "postgresql" else 3)
    assert ledger_post([]) == [] == ledger_post_orm([])


def test_a_post_is_of_one_account_currency_and_instant(acme):
    mixed = entries(acme[0], utc(2026, 1, 1), -100, 100)
    mixed[1].at = utc(2026, 1, 2)
    if connection.vendor != "postgresql":
        pytest.skip("the check is the one-statement road's (PostgreSQL)")
    with pytest.raises(ValueError, match="one account"), transaction.atomic():
        ledger_post(mixed)


@pytest.mark.parametrize("post", [ledger_post, ledger_post_orm], ids=["sql", "orm"])
def test_the_payment_is_saved_with_the_entries(acme, clock, demo_catalog, post):
    account, alice = acme
    save_card(account, alice)
    payment = buy(account, alice, "standard", "annual", 2).order.payments.get()
    payment.message, payment.reference = "Settled again.", "ch_again"
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        post(entries(account, utc(2026, 1, 1), -100, 100), payment=payment,
             payment_fields=["message", "reference"])
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.message, stored.reference) == ("Settled again.", "ch_again")
    assert len(rows(account)) >= 2 and rows(account)[-1][3] == 100
    one = post is ledger_post and connection.vendor == "postgresql"
    # else: the payment, the entries, the balance's update (no EUR row yet) and its insert
    assert len(captured.captured_queries) == (1 if one else 4)
