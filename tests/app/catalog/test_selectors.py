"""catalog_snapshot: the engine's frozen catalog, built in at most 4 queries."""

from __future__ import annotations

import pytest

from prorata.catalog.models import BillingCycle, Plan, Price, Product
from prorata.catalog.selectors import catalog_snapshot
from prorata_core.catalog import BillingCycle as CoreCycle
from prorata_core.catalog import Plan as CorePlan
from prorata_core.catalog import Product as CoreProduct
from prorata_core.errors import NotInCatalog
from prorata_core.money import Money
from tests.app.catalog.design_catalog import DESIGN_PRICES


def test_the_snapshot_is_built_in_at_most_4_queries(demo_catalog, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        catalog = catalog_snapshot()
    assert len(catalog.prices) == 14


def test_the_snapshot_prices_are_design_section_2(demo_catalog):
    catalog = catalog_snapshot()
    assert {
        key: price.unit_amount for key, price in catalog.prices.items()
    } == {key: Money(amount, key[2]) for key, amount in DESIGN_PRICES.items()}
    assert catalog.price("pro", "annual", "USD").unit_amount == Money.of("2388.00", "USD")
    assert catalog.price("lite", "monthly", "EUR").unit_amount == Money.of("55.00", "EUR")


def test_the_snapshot_holds_the_frozen_core_values(demo_catalog):
    catalog = catalog_snapshot()
    assert catalog.products == {"webinar": CoreProduct("webinar", "Webinar")}
    assert catalog.cycles == {
        "monthly": CoreCycle("monthly", 1),
        "annual": CoreCycle("annual", 12),
        "quarterly": CoreCycle("quarterly", 3),
    }
    assert [plan.code for plan in catalog.plans_of("webinar")] == [
        "free_trial", "lite", "standard", "pro", "enterprise",
    ]
    assert catalog.plan("free_trial") == CorePlan(
        code="free_trial", product_code="webinar", name="Free trial", rank=0,
        participant_limit=100, features=frozenset(), trial_days=14, self_service=True,
        min_licenses=1, max_licenses=1,
    )  # fmt: skip
    assert catalog.plan("enterprise") == CorePlan(
        code="enterprise", product_code="webinar", name="Enterprise", rank=4,
        participant_limit=3000,
        features=frozenset(
            {"recording", "custom_branding", "webcasts", "api_access", "dedicated_advisor"}
        ),
        self_service=False,
    )  # fmt: skip
    with pytest.raises(NotInCatalog):
        catalog.price("enterprise", "monthly", "USD")


def test_active_only_leaves_out_retired_plans_and_their_prices(demo_catalog):
    # given Pro no longer offered
    Plan.objects.filter(code="pro").update(active=False)
    # when the offered catalog is read
    offered = catalog_snapshot(active_only=True)
    # then Pro and its prices are gone from it, but the full catalog (for renewals) keeps them
    assert "pro" not in offered.plans
    assert not any(plan_code == "pro" for plan_code, _, _ in offered.prices)
    assert len(offered.prices) == 10
    assert "pro" in catalog_snapshot().plans
    assert len(catalog_snapshot().prices) == 14


def test_the_snapshot_reads_the_stored_rows_not_the_demo(db):
    # given a catalog entered by an operator, in JPY (no minor unit)
    product = Product.objects.create(code="meet", name="Meetings")
    plan = Plan.objects.create(
        product=product, code="solo", name="Solo", rank=0, participant_limit=10,
        features=["recording"],
    )  # fmt: skip
    cycle = BillingCycle.objects.create(code="biannual", months=6)
    Price.objects.create(plan=plan, cycle=cycle, currency="JPY", unit_amount=1500)
    # then the snapshot is exactly that
    catalog = catalog_snapshot()
    assert catalog.price("solo", "biannual", "JPY").unit_amount == Money(1500, "JPY")
    assert catalog.plan("solo").features == frozenset({"recording"})
    assert catalog.plan("solo").product_code == "meet"
    assert catalog.cycle("biannual").months == 6
