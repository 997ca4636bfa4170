"""What each hand-written query saves over the ORM query it replaces (``<app>/queries.py``).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/prorata_bench \
        .venv/bin/python benchmarks/queries.py [--calls 2000] [--repeat 5]

It creates a throwaway test database next to ``DATABASE_URL``'s, with one account as a request
finds it (a billing contact, an API token, a session, a paid subscription, 200 ledger entries, a
cart item), and calls each hand-written query and its ORM reference (``<name>_orm``) ``--calls``
times in a row, ``--repeat`` times; it prints one JSON line with, for each, the best CPU time per
call of this process (``time.process_time``: the client's work, what the shortcut is meant to save,
less disturbed by other load on a shared machine than the wall clock), the best wall time per call
(the client, the round trips and the server), and the queries one call makes.

``--only NAME --variant raw|orm --calls N`` runs one loop and nothing else, to count its
instructions under ``valgrind --tool=callgrind`` (run it with N and with 0 calls; the difference
divided by N is one call's instructions).

On PostgreSQL it also measures Django's connection health check (``SELECT 1``) against the
backend's socket poll; ``--client-binding`` runs everything as Django does by default (parameters
bound in the client, nothing prepared) instead of with the settings' ``OPTIONS``
(``server_side_binding``, ``prepare_threshold``), to measure what those options give.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
os.environ["PRORATA_CLOCK"] = "wall"

import django

django.setup()

from django.contrib.sessions.models import Session  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from prorata.accounts import queries as accounts_queries  # noqa: E402
from prorata.accounts.models import User  # noqa: E402
from prorata.accounts.services import account_create, membership_set_roles  # noqa: E402
from prorata.api import queries as api_queries  # noqa: E402
from prorata.api.models import ApiToken  # noqa: E402
from prorata.api.services import api_token_create  # noqa: E402
from prorata.billing import queries as billing_queries  # noqa: E402
from prorata.billing.models import LedgerEntry, LedgerKind  # noqa: E402
from prorata.catalog.services import catalog_load_demo  # noqa: E402
from prorata.common.clock import now  # noqa: E402
from prorata.common.db import prepared_cursor  # noqa: E402
from prorata.payments.sandbox import sandbox_token  # noqa: E402
from prorata.payments.services import payment_method_add  # noqa: E402
from prorata.subscriptions import queries as subscriptions_queries  # noqa: E402
from prorata.subscriptions.models import CartItem  # noqa: E402
from prorata.subscriptions.selectors import order_quote  # noqa: E402
from prorata.subscriptions.services import cart_add, checkout_place  # noqa: E402

CARD = "4242 4242 4242 4242"
_CART_COUNT_SQL = "SELECT count(*) FROM subscriptions_cartitem WHERE account_id = %s"


def _world() -> dict[str, Any]:
    catalog_load_demo()
    account = account_create(name="Bench", country="US", currency="USD")
    user = User.objects.create_user("bench@bench.example", "pw")
    membership_set_roles(actor=None, account=account, user=user, billing_contact=True)
    payment_method_add(account=account, token=sandbox_token(CARD), actor=user)
    quote = order_quote(account=account, user=user, product_code="webinar", plan_code="standard",
                        cycle_code="annual", quantity=2)
    checkout_place(account=account, user=user, idempotency_key="bench",
                   expected=[quote.fingerprint], items=[quote.item])
    invoice_entry = LedgerEntry.objects.filter(account=account, document__isnull=False).first()
    at = now()
    LedgerEntry.objects.bulk_create([
        LedgerEntry(account=account, currency="USD", at=at - timedelta(minutes=index),
                    kind=LedgerKind.INVOICE if index % 2 else LedgerKind.CREDIT_NOTE,
                    amount=(-1) ** index * 100, memo=f"entry {index}",
                    document=invoice_entry.document if invoice_entry else None)
        for index in range(200)
    ])
    cart_add(account=account, user=user, product_code="webinar", plan_code="pro",
             cycle_code="annual", quantity=3)
    api_token_create(user=user, name="bench")
    session = Session.objects.create(session_key="bench" * 6, session_data="x:1",
                                     expire_date=timezone.now() + timedelta(days=1))
    return {"account": account, "user": user, "prefix": ApiToken.objects.get(user=user).prefix,
            "session_key": session.session_key}


def _cart_count_raw(account_id: int) -> int:
    """The cart count as it was hand-written before it went back to the ORM."""
    with prepared_cursor() as cursor:
        cursor.execute(_CART_COUNT_SQL, [account_id])
        return int(cursor.fetchone()[0])


def _cases(world: dict[str, Any]) -> dict[str, dict[str, Callable[[], object]]]:
    account, user = world["account"], world["user"]
    expires = timezone.now()
    page = {"account_id": account.pk, "limit": 26}
    states = {"account_id": account.pk, "product_codes": ["webinar"]}
    member = {"user_id": user.pk, "account_id": account.pk}
    session = {"model": Session, "session_key": world["session_key"], "expires_after": expires}
    return {
        "account_with_membership": {
            "raw": lambda: accounts_queries.account_with_membership(**member),
            "orm": lambda: accounts_queries.account_with_membership_orm(**member)},
        "unexpired_session": {
            "raw": lambda: accounts_queries.unexpired_session(**session),
            "orm": lambda: accounts_queries.unexpired_session_orm(**session)},
        "token_with_memberships": {
            "raw": lambda: api_queries.token_with_memberships(prefix=world["prefix"]),
            "orm": lambda: api_queries.token_with_memberships_orm(prefix=world["prefix"])},
        "ledger_page": {
            "raw": lambda: billing_queries.ledger_page(**page),
            "orm": lambda: billing_queries.ledger_page_orm(**page)},
        "subscription_states": {
            "raw": lambda: subscriptions_queries.subscription_states(**states),
            "orm": lambda: subscriptions_queries.subscription_states_orm(**states)},
        "cart_count": {
            "raw": lambda: _cart_count_raw(account.pk),
            "orm": lambda: CartItem.objects.filter(account=account).count()},
    }


def _loop(function: Callable[[], object], calls: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()  # durations, not the project clock
    for _ in range(calls):
        function()
    return ((time.process_time() - cpu) / calls * 1e6, (time.perf_counter() - wall) / calls * 1e6)


def _measure(function: Callable[[], object], calls: int, repeat: int) -> dict[str, float]:
    _loop(function, 50)  # warm up: caches, and statements prepared on the server
    with CaptureQueriesContext(connection) as queries:
        function()
    runs = [_loop(function, calls) for _ in range(repeat)]
    return {"cpu_us": round(min(cpu for cpu, _ in runs), 1),
            "wall_us": round(min(wall for _, wall in runs), 1), "queries": len(queries)}


def _health_checks(calls: int, repeat: int) -> dict[str, dict[str, float]]:
    connection.ensure_connection()
    return {"select_1": _measure(connection.is_usable, calls, repeat),
            "socket_poll": _measure(connection._idle_and_quiet, calls, repeat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", help="one query's loop only (for callgrind)")
    parser.add_argument("--variant", choices=["raw", "orm"], default="raw")
    parser.add_argument("--client-binding", action="store_true",
                        help="Django's default binding: nothing prepared on the server")
    args = parser.parse_args()
    if args.client_binding:
        options = connection.settings_dict["OPTIONS"]
        options.pop("server_side_binding", None)
        options["prepare_threshold"] = None
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        world = _world()
        cases = _cases(world)
        if args.only:
            function = cases[args.only][args.variant]
            _loop(function, 50)
            if args.calls:
                _loop(function, args.calls)
            return
        result: dict[str, Any] = {
            "benchmark": "queries", "database": connection.vendor, "calls": args.calls,
            "python": platform.python_version(), "load_average": os.getloadavg()[0],
            "queries": {key: {variant: _measure(function, args.calls, args.repeat)
                              for variant, function in pair.items()}
                        for key, pair in cases.items()},
        }
        if connection.vendor == "postgresql":
            result["binding"] = "client" if args.client_binding else "server, prepared"
            result["health_check"] = _health_checks(args.calls, args.repeat)
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
