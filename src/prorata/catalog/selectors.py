"""Reads of the catalog."""

from __future__ import annotations

from prorata.catalog import models
from prorata_core.catalog import BillingCycle, Catalog, Plan, Price, Product
from prorata_core.money import Money


def catalog_snapshot(*, active_only: bool = False) -> Catalog:
    """The catalog as the engine's frozen values, in 4 queries (products, plans, cycles, prices).

    By default every plan is included, since subscriptions on a plan no longer offered still renew;
    ``active_only=True`` keeps only active plans and their prices (what is offered today).
    """
    plans = models.Plan.objects.all()
    prices = models.Price.objects.all()
    if active_only:
        plans = plans.filter(active=True)
        prices = prices.filter(plan__active=True)
    return Catalog.build(
        products=[Product(code, name) for code, name in models.Product.objects.values_list("code", "name")],
        plans=[
            Plan(
                code=plan["code"],
                product_code=plan["product__code"],
                name=plan["name"],
                rank=plan["rank"],
                participant_limit=plan["participant_limit"],
                features=frozenset(plan["features"]),
                trial_days=plan["trial_days"],
                self_service=plan["self_service"],
                min_licenses=plan["min_licenses"],
                max_licenses=plan["max_licenses"],
            )
            for plan in plans.values(
                "code", "product__code", "name", "rank", "participant_limit", "features",
                "trial_days", "self_service", "min_licenses", "max_licenses",
            )
        ],
        cycles=[
            BillingCycle(code, months)
            for code, months in models.BillingCycle.objects.values_list("code", "months")
        ],
        prices=[
            Price(plan_code, cycle_code, Money(amount, currency))
            for plan_code, cycle_code, currency, amount in prices.values_list(
                "plan__code", "cycle__code", "currency", "unit_amount"
            )
        ],
    )
