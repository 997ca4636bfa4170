"""``prorata demo``: load the demo data, idempotently, and print what was loaded.

The demo is a list of steps run in order in one transaction. Each step calls services and returns the
lines to print; to extend the demo (accounts, subscriptions ...), write a step and add it to STEPS.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from prorata.accounts.demo import demo_load_people
from prorata.catalog.display import priced_cycles, prices_by_plan_and_cycle
from prorata.catalog.selectors import catalog_snapshot
from prorata.catalog.services import catalog_load_demo
from prorata.common.clock import MOVABLE, clock_mode, clock_set, format_instant, now
from prorata.licenses.demo import demo_load_licenses
from prorata.subscriptions.demo import demo_load_subscriptions
from prorata_core.errors import ProrataError

#: DESIGN §3's worked examples happen on this day; the demo starts there.
DEMO_INSTANT = datetime(2026, 3, 11, tzinfo=UTC)


def _clock() -> list[str]:
    if clock_mode() != MOVABLE:
        return [
            f"Clock: the wall clock, {format_instant(now())}, left as it is "
            f"(with PRORATA_CLOCK=movable the demo starts on {format_instant(DEMO_INSTANT)})."
        ]
    clock_set(instant=DEMO_INSTANT)
    return [f"Clock: set to {format_instant(DEMO_INSTANT)} (movable; `prorata clock advance 1month`)."]


def _catalog() -> list[str]:
    loaded = catalog_load_demo()
    catalog = catalog_snapshot()
    rows = loaded.products + loaded.plans + loaded.cycles + loaded.prices
    lines = [
        f"Catalog: {loaded.products} product, {loaded.plans} plans, {loaded.cycles} billing cycles, "
        f"{loaded.prices} prices ({loaded.created} rows new, {rows - loaded.created} updated)."
    ]
    prices = prices_by_plan_and_cycle(catalog)
    cycles = priced_cycles(catalog)
    for product in catalog.products.values():
        lines.append(f"  {product.name} ({product.code})")
        for plan in catalog.plans_of(product.code):
            offers = [
                f"{cycle.code} {' / '.join(str(money) for money in prices[(plan.code, cycle.code)])}"
                for cycle in cycles
                if (plan.code, cycle.code) in prices
            ]
            offer = "; ".join(offers) if plan.self_service else "advisor-priced"
            lines.append(
                f"    {plan.name} ({plan.code}): {plan.participant_limit} participants; {offer}"
            )
    return lines


#: The demo's steps, in order: each returns the lines to print.
STEPS: list[Callable[[], list[str]]] = [_clock, _catalog, demo_load_people, demo_load_subscriptions,
                                        demo_load_licenses]


class Command(BaseCommand):
    help = "Load the demo data (idempotent) and, with a movable clock, set it to 2026-03-11T00:00:00Z."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                lines = [line for step in STEPS for line in step()]
        except ProrataError as error:
            raise CommandError(error.message) from error
        for line in lines:
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("Demo loaded."))
