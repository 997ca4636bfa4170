"""Speed of the billing center's services on a real database: the live order summary (quote), a
page of "View all transactions" for an account with 100,000 entries, and the checkout.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/prorata_bench \
        .venv/bin/python benchmarks/billing_center.py [--quotes 5000] [--entries 100000]

It creates a throwaway test database next to ``DATABASE_URL``'s (``test_<name>``), migrates it, runs,
and drops it. The services run as in production (wall clock, one process, one connection); times
are the services' own, without HTTP. Prints one JSON line.

- quote: :func:`order_quote` for Example 1's upgrade, called ``--quotes`` times in a row;
  quotes per second and latency percentiles (targets: ≥ 500/s on one core, p99 < 50 ms).
- transactions: :func:`transactions_for_account`, 25 per page, on the first page, at depth 50 %
  and 99.9 % (keyset cursors) and filtered by kind (target: any page < 20 ms).
- checkout: :func:`checkout_place` of alternating license changes (a card payment, then a credit),
  with the number of queries each one costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
os.environ["PRORATA_CLOCK"] = "wall"

import django

django.setup()

from django.db import connection, reset_queries  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from prorata.accounts.models import User  # noqa: E402
from prorata.accounts.services import account_create, membership_set_roles  # noqa: E402
from prorata.billing.models import LedgerEntry, LedgerKind  # noqa: E402
from prorata.billing.selectors import transactions_for_account  # noqa: E402
from prorata.catalog.services import catalog_load_demo  # noqa: E402
from prorata.common.clock import now  # noqa: E402
from prorata.payments.sandbox import sandbox_token  # noqa: E402
from prorata.payments.services import payment_method_add  # noqa: E402
from prorata.subscriptions.selectors import order_quote  # noqa: E402
from prorata.subscriptions.services import checkout_place  # noqa: E402

CARD = "4242 4242 4242 4242"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()  # elapsed time of the call, not the project clock
    result = function(*args, **kwargs)
    return result, (time.perf_counter() - started) * 1000


def customer(name: str):  # type: ignore[no-untyped-def]
    account = account_create(name=name, country="US", currency="USD")
    user = User.objects.create_user(f"{name.lower()}@bench.example", "pw")
    membership_set_roles(actor=None, account=account, user=user, billing_contact=True)
    payment_method_add(account=account, token=sandbox_token(CARD), actor=user)
    return account, user


def buy(account, user, plan, cycle, quantity, key):  # type: ignore[no-untyped-def]
    quote = order_quote(account=account, user=user, product_code="webinar", plan_code=plan,
                        cycle_code=cycle, quantity=quantity)
    return checkout_place(account=account, user=user, idempotency_key=key,
                          expected=[quote.fingerprint], items=[quote.item])


def bench_quotes(count: int) -> dict[str, float]:
    account, user = customer("Quotes")
    buy(account, user, "standard", "annual", 2, "first")
    order_quote(account=account, user=user, product_code="webinar", plan_code="pro",
                cycle_code="annual", quantity=2)  # warm up
    with CaptureQueriesContext(connection) as queries:
        order_quote(account=account, user=user, product_code="webinar", plan_code="pro",
                    cycle_code="annual", quantity=2)
    samples = []
    started = time.perf_counter()
    for _ in range(count):
        _, ms = timed(order_quote, account=account, user=user, product_code="webinar",
                      plan_code="pro", cycle_code="annual", quantity=2)
        samples.append(ms)
    elapsed = time.perf_counter() - started
    return {"quotes": count, "quotes_per_s": round(count / elapsed),
            "p50_ms": round(statistics.median(samples), 2),
            "p99_ms": round(percentile(samples, 0.99), 2), "queries": len(queries)}


def make_history(account, entries: int, document=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Give ``account`` ``entries`` ledger rows, 5 minutes apart, kinds in turn (fabricated rows
    in a throwaway database: only their shape counts; charges and credits name ``document`` when
    given). Returns the cursors of the 25-row pages ending at 50 % and 99.9 % of the history."""
    start = now() - timedelta(days=3650)
    kinds = [LedgerKind.INVOICE, LedgerKind.PAYMENT, LedgerKind.CREDIT_NOTE, LedgerKind.REFUND]
    batch = []
    for index in range(entries):
        kind = kinds[index % 4]
        batch.append(LedgerEntry(account=account, currency="USD",
                                 at=start + timedelta(minutes=index * 5), kind=kind,
                                 amount=(-1) ** index * 1000, memo=f"entry {index}",
                                 document=document if kind in (LedgerKind.INVOICE,
                                                               LedgerKind.CREDIT_NOTE) else None))
        if len(batch) == 10_000:
            LedgerEntry.objects.bulk_create(batch)
            batch = []
    LedgerEntry.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE billing_ledgerentry")
    newest_first = LedgerEntry.objects.filter(account=account).order_by("-at", "-id")
    cursors = {}
    for name, depth in [("half", entries // 2), ("last", int(entries * 0.999))]:
        at, pk = newest_first.values_list("at", "id")[depth - 1]
        cursors[name] = f"{at.isoformat()}|{pk}"  # the cursor of the page ending at that depth
    return cursors


def bench_transactions(entries: int) -> dict[str, float]:
    account, _user = customer("History")
    cursors = make_history(account, entries)
    page_size = 25
    results: dict[str, float] = {"entries": entries}
    for name, position in [("first", None), ("half", cursors.get("half")),
                           ("last", cursors.get("last"))]:
        samples = [timed(transactions_for_account, account=account, cursor=position,
                         limit=page_size)[1] for _ in range(50)]
        results[f"{name}_page_ms"] = round(statistics.median(samples), 2)
        results[f"{name}_page_p99_ms"] = round(percentile(samples, 0.99), 2)
    samples = [timed(transactions_for_account, account=account, kinds=["refund"],
                     cursor=cursors.get("half"), limit=page_size)[1] for _ in range(50)]
    results["filtered_page_ms"] = round(statistics.median(samples), 2)
    return results


def bench_checkouts(count: int) -> dict[str, float]:
    account, user = customer("Checkouts")
    buy(account, user, "lite", "monthly", 3, "first")
    samples = []
    query_counts = []
    for index in range(count):
        quote = order_quote(account=account, user=user, product_code="webinar", plan_code="lite",
                            cycle_code="monthly", quantity=4 if index % 2 == 0 else 3)
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            _, ms = timed(checkout_place, account=account, user=user, idempotency_key=f"k{index}",
                          expected=[quote.fingerprint], items=[quote.item])
        samples.append(ms)
        query_counts.append(len(queries))
    return {"checkouts": count, "p50_ms": round(statistics.median(samples), 2),
            "p99_ms": round(percentile(samples, 0.99), 2),
            "queries_paid": max(query_counts[0::2]), "queries_credit": max(query_counts[1::2])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quotes", type=int, default=5000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--checkouts", type=int, default=200)
    args = parser.parse_args()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        catalog_load_demo()
        result = {
            "benchmark": "billing_center",
            "database": connection.vendor,
            "quote": bench_quotes(args.quotes),
            "transactions": bench_transactions(args.entries),
            "checkout": bench_checkouts(args.checkouts),
            "python": platform.python_version(),
        }
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
