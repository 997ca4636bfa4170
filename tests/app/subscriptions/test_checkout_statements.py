"""What a paid checkout costs the database (issue 12: at most 20 statements in two transactions
around the gateway call, reached on PostgreSQL; this test keeps the count from growing back).

Counted: every statement the checkout sends, BEGIN/COMMIT (savepoints in the test's transaction)
included, except the movable clock's reads (production reads the wall clock) and the gateway's
(an in-memory fake here: the sandbox keeps its own rows in the same database)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from prorata.subscriptions.models import OrderStatus
from prorata.subscriptions.selectors import order_quote
from prorata.subscriptions.services import checkout_place
from prorata_core.periods import utc
from tests.app.payments import fakes
from tests.app.subscriptions.support import buy, save_card

pytestmark = pytest.mark.django_db

#: The statements of a paid license change today (see benchmarks/README.md for the history),
#: called as a service: the billing contact's membership is read once here, where a request
#: would have it from its request-scoped access already. 45 until the documents were numbered at
#: insert (one statement per counter, the documents and their lines in one insert each), the
#: receipts queued in one insert without a dedupe read. One more since issue 16: the account's
#: billing e-mail, which gets the receipt too. 28 on PostgreSQL since the second transaction's
#: account lock reads the webhook endpoints and billing contacts with it, the order's read brings
#: the balance, both counters move in one statement and the ledger posts with its balance in one
#: (31 on SQLite, which keeps the ORM's road for the lock's readers and the ledger post). 24 on
#: PostgreSQL since the payment is saved with the ledger's rows, the subscription's update with
#: its history entry, and the cart, the order and its audit entry in one statement (SQLite: the
#: ORM's road, 31). 20 on PostgreSQL since the first transaction reads the orders that stop it, the
#: balance and the card in one statement after the account lock, and writes the order, its
#: payment and the subscriptions' version bump in one (subscriptions.queries.checkout_reads and
#: order_place).
PAID_CHANGE_STATEMENTS = {"postgresql": 20, "sqlite": 31}


def transactions(statements: list[str]) -> int:
    """Top-level transactions among ``statements`` (each is a savepoint of the test's own)."""
    depth = count = 0
    for sql in statements:
        if sql.startswith("SAVEPOINT"):
            count += depth == 0
            depth += 1
        elif sql.startswith(("RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            depth -= sql.startswith("RELEASE")
    return count


def test_a_paid_checkout_stays_within_its_statements_in_two_transactions(acme, clock, settings):
    account, alice = acme
    save_card(account, alice)
    buy(account, alice, "standard", "annual", 2)
    clock.set(utc(2026, 4, 1))
    settings.PRORATA_PAYMENT_GATEWAY = "tests.app.payments.fakes.shared_fake"
    settings.PRORATA_QUOTE_CATALOG_SECONDS = 60.0  # as in production: the quote's catalog
    fakes.SHARED.charges.clear()
    quote = order_quote(account=account, user=alice, product_code="webinar",
                        plan_code="standard", cycle_code="annual", quantity=3)
    with CaptureQueriesContext(connection) as captured:
        result = checkout_place(account=account, user=alice, idempotency_key="count",
                                expected=[quote.fingerprint], items=[quote.item])
    assert result.status == OrderStatus.PAID and len(fakes.SHARED.charges) == 1
    statements = [query["sql"] for query in captured.captured_queries
                  if "common_clockstate" not in query["sql"]]
    assert transactions(statements) == 2
    assert len(statements) <= PAID_CHANGE_STATEMENTS[connection.vendor], "\n".join(statements)
