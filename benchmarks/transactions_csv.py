"""Memory and speed of the streamed CSV export of "View all transactions" (issue 16) for an
account with 100,000 invoices and credit notes.

    .venv/bin/python benchmarks/transactions_csv.py [--documents 100000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/prorata_bench .venv/bin/python \
        benchmarks/transactions_csv.py

It creates a throwaway test database (``test_<name>``, SQLite or PostgreSQL as configured), writes
the documents set-based, then consumes the export exactly as the web and API responses do (the
generator :func:`prorata.billing.export.history_csv`, chunk by chunk), counting bytes. Prints one
JSON line:

- ``export_peak_mib``: the Python heap's peak while exporting (tracemalloc), the figure that would
  grow with the account if the rows were loaded at once;
- ``loaded_peak_mib``: for comparison, the peak of the same rows read into one list first;
- ``rss_growth_mib``: the process's maximum resident size grown during the export;
- seconds and rows per second of the export.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
os.environ["PRORATA_CLOCK"] = "wall"

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from prorata.accounts.services import account_create  # noqa: E402
from prorata.billing.export import history_csv  # noqa: E402
from prorata.billing.history import document_history_export  # noqa: E402
from prorata.billing.models import Document  # noqa: E402
from prorata.common.bulk import insert_rows, reserve_ids  # noqa: E402

COLUMNS = ("id", "kind", "series", "year", "sequence", "number", "account_id", "status",
           "issued_at", "currency", "subtotal", "tax", "total", "credit_applied", "amount_paid",
           "amount_due", "tax_rule", "tax_mention", "snapshot")


def seed(count: int) -> int:
    """``count`` numbered documents of one account, an invoice and a credit note in turn, one
    an hour back from 2026-12-01 (the snapshot is a small JSON: the export never reads it)."""
    account = account_create(name="Big Account", country="US", currency="USD")
    start = datetime(2026, 12, 1, tzinfo=UTC)
    with transaction.atomic():
        ids = reserve_ids(Document._meta.db_table, count)
        rows = []
        for index, pk in enumerate(ids):
            invoice = index % 2 == 0
            total = 12_900 if invoice else -4_300
            rows.append((
                pk, "invoice" if invoice else "credit_note", "" if invoice else "CN", 2026,
                index + 1, f"{'' if invoice else 'CN-'}2026-{index + 1:07d}", account.pk,
                "paid", start - timedelta(hours=index), "USD", total, 0, total,
                0, total if invoice else 0, 0, "outside_eu", "", "{}",
            ))
        # credit notes must refer to an invoice (a constraint): to the one just before them
        insert_rows(Document._meta.db_table, COLUMNS, [r for r in rows if r[1] == "invoice"])
        credit_rows = [(*r, rows[i - 1][0]) for i, r in enumerate(rows) if r[1] == "credit_note"]
        insert_rows(Document._meta.db_table, (*COLUMNS, "refers_to_id"), credit_rows)
    return account.pk


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=100_000)
    options = parser.parse_args()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from prorata.accounts.models import Account

        account = Account.objects.get(pk=seed(options.documents))
        rss_before = max_rss_mib()
        tracemalloc.start()
        started = time.perf_counter()
        size = lines = 0
        for line in history_csv(account=account):
            size += len(line)
            lines += 1
        seconds = time.perf_counter() - started
        _, export_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_growth = max_rss_mib() - rss_before
        tracemalloc.start()
        loaded = list(Document.objects.filter(account=account).values_list(
            "id", "issued_at", "kind", "number", "status", "currency", "subtotal", "tax",
            "total", "credit_applied", "amount_paid", "amount_due"))
        _, loaded_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert lines == options.documents + 1 and len(loaded) == options.documents
        assert sum(1 for _ in document_history_export(account=account, kinds=["credit_note"])) \
            == options.documents // 2
        print(json.dumps({
            "benchmark": "transactions_csv", "database": connection.vendor,
            "documents": options.documents, "bytes": size, "seconds": round(seconds, 2),
            "rows_per_second": round(options.documents / seconds),
            "export_peak_mib": round(export_peak / 2**20, 1),
            "loaded_peak_mib": round(loaded_peak / 2**20, 1),
            "rss_growth_mib": round(rss_growth, 1),
            "python": platform.python_version(), "load_average": os.getloadavg(),
        }))
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
