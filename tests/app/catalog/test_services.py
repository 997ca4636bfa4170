"""catalog_load_demo: loads exactly DESIGN §2, and loading it again leaves one copy."""

from __future__ import annotations

from prorata.catalog.models import BillingCycle, Plan, Price, Product
from prorata.catalog.services import catalog_load_demo
from tests.app.catalog.design_catalog import DESIGN_CYCLES, DESIGN_PLANS, DESIGN_PRICES


def stored_prices() -> dict[tuple[str, str, str], int]:
    return {
        (plan, cycle, currency): amount
        for plan, cycle, currency, amount in Price.objects.values_list(
            "plan__code", "cycle__code", "currency", "unit_amount"
        )
    }


def stored_plans() -> dict[str, tuple[object, ...]]:
    return {
        plan.code: (
            plan.name, plan.rank, plan.participant_limit, plan.features, plan.trial_days,
            plan.self_service, plan.min_licenses, plan.max_licenses,
        )
        for plan in Plan.objects.all()
    }  # fmt: skip


def test_the_demo_catalog_is_design_section_2(db):
    # when the demo catalog is loaded into an empty database
    loaded = catalog_load_demo()
    # then it holds DESIGN §2 exactly, in minor units
    assert list(Product.objects.values_list("code", "name")) == [("webinar", "Webinar")]
    assert stored_plans() == DESIGN_PLANS
    assert set(Plan.objects.values_list("product__code", "active")) == {("webinar", True)}
    assert dict(BillingCycle.objects.values_list("code", "months")) == DESIGN_CYCLES
    assert stored_prices() == DESIGN_PRICES
    assert (loaded.products, loaded.plans, loaded.cycles, loaded.prices, loaded.created) == (
        1, 5, 3, 14, 23,
    )


def test_enterprise_and_quarterly_have_no_public_price(demo_catalog):
    assert not Price.objects.filter(plan__code="enterprise").exists()
    assert not Price.objects.filter(cycle__code="quarterly").exists()


def test_loading_twice_leaves_one_copy(db):
    catalog_load_demo()
    again = catalog_load_demo()
    assert again.created == 0
    assert Product.objects.count() == 1
    assert Plan.objects.count() == 5
    assert BillingCycle.objects.count() == 3
    assert Price.objects.count() == 14
    assert stored_prices() == DESIGN_PRICES


def test_loading_again_restores_edited_demo_rows_and_keeps_the_operators_own(demo_catalog):
    # given an operator who edited a demo price and plan, and added a price of their own
    Price.objects.filter(plan__code="lite", cycle__code="monthly", currency="USD").update(
        unit_amount=1
    )
    Plan.objects.filter(code="pro").update(name="Pro (old)", participant_limit=7, active=False)
    Price.objects.create(
        plan=Plan.objects.get(code="standard"),
        cycle=BillingCycle.objects.get(code="quarterly"),
        currency="USD",
        unit_amount=35_000,
    )
    # when the demo is loaded again
    catalog_load_demo()
    # then the demo rows are DESIGN's again and the extra price is still there
    assert stored_prices() == {**DESIGN_PRICES, ("standard", "quarterly", "USD"): 35_000}
    assert stored_plans()["pro"] == DESIGN_PLANS["pro"]
    assert Plan.objects.get(code="pro").active is True
