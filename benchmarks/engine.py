"""How many orders the pricing engine prices per second, single process.

The order is the realistic change of DESIGN §3 example 2: a credit for the unused time and a charge
for the new period, each taxed at 20 %, with a credit balance applied. Every iteration prices a fresh
change instant, so nothing is cached between calls.

    .venv/bin/python benchmarks/engine.py [--orders 200000] [--repeat 5]

Prints one JSON line: orders, best seconds, orders_per_s (best of --repeat runs), python version.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.demo_catalog

from tests.demo_catalog import config

from prorata_core.money import Money
from prorata_core.orders import OrderKind, Term, price_order
from prorata_core.periods import period_starting, utc
from prorata_core.tax import tax_decision


def run(orders: int) -> float:
    current_config = config("lite", "monthly", 5, "EUR")
    anchor = utc(2026, 3, 1)
    current = Term(current_config, period_starting(anchor, 1), anchor, current_config.amount)
    target = config("lite", "monthly", 3, "EUR")
    vat = tax_decision(seller_country="FR", customer_country="FR", customer_vat_number=None,
                       at=anchor)
    balance = Money(1000, "EUR")
    span = current.period.seconds
    instants = [anchor + timedelta(seconds=(17 * i) % span) for i in range(orders)]
    started = time.perf_counter()  # a benchmark measures elapsed time; the project clock is not it
    for at in instants:
        price_order(kind=OrderKind.CHANGE, at=at, target=target, tax=vat, credit_balance=balance,
                    current=current)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    best = min(run(args.orders) for _ in range(args.repeat))
    print(json.dumps({
        "benchmark": "engine.price_order",
        "orders": args.orders,
        "seconds": round(best, 3),
        "orders_per_s": round(args.orders / best),
        "python": platform.python_version(),
    }))


if __name__ == "__main__":
    main()
