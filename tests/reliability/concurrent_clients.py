"""Client processes for the concurrency tests: each is a fresh (spawned) interpreter with its own
Django set-up and database connection, talking to the application through its whole HTTP stack
(token check, middleware, view, service), as separate web workers would.

:func:`plan_changer` is one of the 4 customers' browsers of ``test_concurrency``: in each round it
reads the subscription, picks a change (seeded), quotes it, waits at the barrier for the other
processes, then places it; the answers go back on a queue. Who may call: the tests only.
"""

from __future__ import annotations

import json
import os
import random
import traceback
from datetime import timedelta
from typing import Any

PLANS = ("lite", "standard", "pro")
#: Between rounds the clock moves on, so that every change is prorated over time elapsed.
ROUND_STEP = timedelta(days=2, hours=7, minutes=13, seconds=5)


def _django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "prorata.settings.test"
    import django

    django.setup()
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host allowed, mail kept in memory


def choose(rng: random.Random, subscription: dict[str, Any]) -> dict[str, Any]:
    """One change of ``subscription`` (the API's answer): an upgrade, a license more or less, the
    cycle monthly → annual, or the renewal turned off or on. Never a plan downgrade (refused
    online) nor annual → monthly."""
    plan, cycle, quantity = subscription["plan"], subscription["cycle"], subscription["quantity"]
    kind = rng.choice(["upgrade", "more", "fewer", "cycle", "renewal"])
    if kind == "renewal":
        return {"kind": "cancel" if subscription["auto_renew"] else "resume"}
    if kind == "upgrade" and plan != PLANS[-1]:
        plan = PLANS[PLANS.index(plan) + 1]
    elif kind == "cycle" and cycle == "monthly":
        cycle = "annual"
    elif kind == "fewer" and quantity > 1:
        quantity -= 1
    else:
        quantity += 1
    return {"kind": "checkout", "item": {"product_code": "webinar", "plan_code": plan,
                                         "cycle_code": cycle, "quantity": quantity}}


def plan_changer(index: int, database_url: str, account_id: int, token: str, rounds: int,
                 seed: int, barrier: Any, results: Any) -> None:
    """``rounds`` changes of the account's webinar subscription, each placed at the same instant
    as the other processes' (``barrier``); every answer put on ``results`` as a dict."""
    try:
        _django(database_url)
        from django.db import connection
        from django.test import Client

        from prorata.common.clock import clock_advance

        client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {token}")
        base = f"/api/v1/accounts/{account_id}"
        rng = random.Random(seed * 1000 + index)
        for round_ in range(rounds):
            listed = client.get(f"{base}/subscriptions")
            change = choose(rng, listed.json()["data"][0])
            fingerprint = None
            if change["kind"] == "checkout":
                quote = client.post(f"{base}/quote", change["item"],
                                    content_type="application/json")
                assert quote.status_code == 200, quote.content
                fingerprint = quote.json()["fingerprint"]
            connection.close()  # no transaction or connection held across the wait
            barrier.wait()
            if change["kind"] == "checkout":
                response = client.post(
                    f"{base}/checkout", {"items": [change["item"]], "expected": [fingerprint]},
                    content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY=f"change-{seed}-{index}-{round_}")
            else:
                response = client.post(f"{base}/subscriptions/webinar/{change['kind']}-renewal")
            body = response.content.decode()
            results.put({"process": index, "round": round_, "change": change,
                         "status": response.status_code, "body": json.loads(body) if body.startswith("{") else body})
            connection.close()
            barrier.wait()
            if index == 0:
                clock_advance(duration=ROUND_STEP)
                connection.close()
            barrier.wait()
    except BaseException:
        results.put({"process": index, "crash": traceback.format_exc()})
        barrier.abort()
