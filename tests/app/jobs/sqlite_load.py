"""A billing run beside concurrent API checkouts on one SQLite file (issue 12, item 8).

    python -m tests.app.jobs.sqlite_load DB_FILE SUBSCRIPTIONS CHECKOUTS [CHUNK]

Run in a fresh process (the test suite's in-memory database is not what production runs on): it
migrates a new SQLite file with the production settings' pragmas (WAL, busy timeout, ``BEGIN
IMMEDIATE``), loads SUBSCRIPTIONS due subscriptions (the billing-run benchmark's loader, every card
accepted) and CHECKOUTS customers with a saved card and an API token, then starts, at the same
instant, the billing run (renewing and charging) in one thread and one API checkout per customer
in as many threads (quote, then checkout, through the whole HTTP stack: token check, middleware,
view, service); a checkout answered 503 (busy, nothing saved) is sent again, as the API asks.
Prints one JSON line: every answer's HTTP status, the run's outcome, and what the database holds
afterwards (payments by status, paid orders, renewals) and the reliability suite's invariants
broken, if any (:func:`tests.reliability.invariants.check_all`). :func:`race` is the same race on
whichever database Django is set up with (the PostgreSQL case of ``tests/reliability``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: How many times a client sends a checkout again after a 503 (Busy) answer, waiting longer each
#: time (0.05 s doubling, at most 1 s) as a patient client does: fifty writers at once on SQLite's
#: one write lock can each be turned away several times on a loaded machine before their turn.
RETRIES_AFTER_BUSY = 30


def main(path: str, subscriptions: int, checkouts: int, chunk: int | None) -> dict[str, object]:
    os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "prorata.settings.test"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)

    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "billing_run.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench._load(subscriptions, "sqlite", credit_share=0)

    from prorata.payments.models import SandboxCard

    SandboxCard.objects.update(behaviour="succeed")
    customers = customers_with_cards(checkouts)
    connection.close()
    result = race(customers, chunk)
    from tests.reliability.invariants import check_all

    result["violations"] = [str(violation) for violation in check_all()]
    return result


def customers_with_cards(count: int) -> list[tuple[int, str]]:
    """``count`` US customers, each with a billing contact, a saved card and an API token:
    ``[(account id, token)]``."""
    from prorata.accounts.models import User
    from prorata.accounts.services import account_create, membership_set_roles
    from prorata.api.services import api_token_create
    from prorata.payments.sandbox import sandbox_token
    from prorata.payments.services import payment_method_add

    customers = []
    for index in range(count):
        account = account_create(name=f"Load {index}", country="US", currency="USD")
        user = User.objects.create_user(f"load{index}@example.com", "pw")
        membership_set_roles(actor=None, account=account, user=user, billing_contact=True)
        payment_method_add(account=account, token=sandbox_token(), actor=user)
        customers.append((account.pk, api_token_create(user=user, name="load")[1]))
    return customers


def race(customers: list[tuple[int, str]], chunk: int | None) -> dict[str, object]:
    """At the same instant, the billing run (renewing and charging) in one thread and one API
    checkout per customer in as many threads, each thread on its own connection; answers what
    :func:`main` prints (without the invariants)."""
    from django.db import connection
    from django.test import Client

    from prorata.billing.models import Payment
    from prorata.jobs.billing_run import bill_run
    from prorata.jobs.models import Renewal
    from prorata.subscriptions.models import Order

    start = threading.Barrier(len(customers) + 1)
    statuses: list[int] = []
    errors: list[str] = []
    run: dict[str, object] = {}

    def billing() -> None:
        try:
            start.wait()
            kwargs = {"chunk_size": chunk} if chunk else {}
            run["stats"] = bill_run(**kwargs).as_dict()
        except Exception as error:  # what the test looks for: the run must not crash
            cause = error.__cause__
            run["error"] = (f"{type(error).__name__}: {error} "
                            f"({getattr(cause, 'sqlite_errorname', '')})")
            run["traceback"] = traceback.format_exc()
        finally:
            connection.close()

    def checkout(account_id: int, token: str, index: int) -> None:
        client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}")
        item = {"product_code": "webinar", "plan_code": "lite", "cycle_code": "monthly",
                "quantity": 1}
        try:
            start.wait()
            quote = client.post(f"/api/v1/accounts/{account_id}/quote", item,
                                content_type="application/json")
            statuses.append(quote.status_code)
            if quote.status_code != 200:
                errors.append(quote.content.decode()[:300])
                return
            # A 503 ("busy: nothing was saved, try again") is retried as the API asks, with the
            # same idempotency key: nothing was recorded under it.
            for _attempt in range(RETRIES_AFTER_BUSY + 1):
                response = client.post(
                    f"/api/v1/accounts/{account_id}/checkout",
                    {"items": [item], "expected": [quote.json()["fingerprint"]]},
                    content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"load-{index}",
                )
                statuses.append(response.status_code)
                if response.status_code != 201:
                    errors.append(response.content.decode()[:300])
                if response.status_code != 503:
                    break
                time.sleep(min(0.05 * 2 ** _attempt, 1.0))
        finally:
            connection.close()

    threads = [threading.Thread(target=billing)] + [
        threading.Thread(target=checkout, args=(account_id, token, index))
        for index, (account_id, token) in enumerate(customers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    return {
        "statuses": dict(Counter(statuses)),
        "errors": errors[:5],
        "run": run,
        "payments": dict(Counter(Payment.objects.values_list("status", flat=True))),
        "orders_paid": Order.objects.filter(status="paid").count(),
        "renewals": Renewal.objects.count(),
        "renewals_paid": Renewal.objects.filter(status="paid").count(),
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    arguments = sys.argv[1:]
    result = main(arguments[0], int(arguments[1]), int(arguments[2]),
                  int(arguments[3]) if len(arguments) > 3 else None)
    print(json.dumps(result))
