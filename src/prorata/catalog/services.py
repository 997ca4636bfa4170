"""Writes to the catalog."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from prorata.catalog import demo_data
from prorata.catalog.models import BillingCycle, Plan, Price, Product
from prorata_core.money import Money

#: Defaults of a demo plan's fields that DESIGN §2 leaves to the usual values.
_PLAN_DEFAULTS: dict[str, object] = {
    "trial_days": None, "self_service": True, "min_licenses": 1, "max_licenses": 10_000,
    "active": True,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoCatalogLoaded:
    """What :func:`catalog_load_demo` wrote: how many rows of each kind it created or updated."""

    products: int
    plans: int
    cycles: int
    prices: int
    created: int


@transaction.atomic
def catalog_load_demo() -> DemoCatalogLoaded:
    """Create or update the demo catalog of DESIGN §2, matched on codes; idempotent.

    Rows the demo does not name (an operator's extra plan or price) are left as they are.
    """
    created = 0
    product, was_created = Product.objects.update_or_create(
        code=demo_data.PRODUCT["code"], defaults={"name": demo_data.PRODUCT["name"]}
    )
    created += was_created
    plans: dict[str, Plan] = {}
    for code, fields in demo_data.PLANS.items():
        plans[code], was_created = Plan.objects.update_or_create(
            code=code, defaults={**_PLAN_DEFAULTS, **fields, "product": product}
        )
        created += was_created
    cycles: dict[str, BillingCycle] = {}
    for code, months in demo_data.CYCLES.items():
        cycles[code], was_created = BillingCycle.objects.update_or_create(
            code=code, defaults={"months": months}
        )
        created += was_created
    prices = 0
    for (plan_code, cycle_code), amounts in demo_data.PRICES.items():
        for currency, text in amounts.items():
            _, was_created = Price.objects.update_or_create(
                plan=plans[plan_code],
                cycle=cycles[cycle_code],
                currency=currency,
                defaults={"unit_amount": Money.of(text, currency).amount},
            )
            created += was_created
            prices += 1
    return DemoCatalogLoaded(
        products=1, plans=len(plans), cycles=len(cycles), prices=prices, created=created
    )
