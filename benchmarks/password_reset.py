"""Answer time of the password-reset page for a known and an unknown address (issue 18: "answering
in the same time for known and unknown addresses").

    .venv/bin/python benchmarks/password_reset.py [--requests 400]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/prorata_bench .venv/bin/python benchmarks/password_reset.py

It creates a throwaway test database, posts the page ``--requests`` times for each address through
Django's test client (interleaved, each from its own IP so that no throttle answers), and prints one
JSON line: the median and p90 answer times in milliseconds of each kind and their difference. The
page only records the request (:mod:`prorata.accounts.resets`); the lookup and the e-mail happen in
the worker, so the two medians differ by noise only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
os.environ["PRORATA_CLOCK"] = "wall"

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from billing_center import percentile  # noqa: E402
from prorata.accounts.models import User  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    setup_test_environment()
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        User.objects.create_user("alice@bench.example", "a long enough password")
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        for index in range(args.requests):
            for kind, email in (("known", "alice@bench.example"), ("unknown", "nobod@bench.example")):
                client = Client(REMOTE_ADDR=f"10.{index // 250}.{index % 250}.{1 if kind == 'known' else 2}")
                started = time.perf_counter()  # elapsed time, not the project clock
                response = client.post("/accounts/password_reset/", {"email": email})
                times[kind].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 302, response.status_code
        medians = {kind: statistics.median(samples) for kind, samples in times.items()}
        result = {
            "benchmark": "password_reset",
            "database": connection.vendor,
            "requests_each": args.requests,
            **{f"{kind}_median_ms": round(medians[kind], 3) for kind in times},
            **{f"{kind}_p90_ms": round(percentile(times[kind], 0.9), 3) for kind in times},
            "median_difference_ms": round(medians["known"] - medians["unknown"], 3),
            "python": platform.python_version(),
        }
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
