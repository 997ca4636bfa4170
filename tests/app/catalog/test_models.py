"""The catalog's database constraints: what no code path can store."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from prorata.catalog.models import BillingCycle, Plan, Price
from prorata.common.models import ClockState
from prorata_core.periods import utc


def price_for(**fields: object) -> Price:
    defaults = {
        "plan": Plan.objects.get(code="lite"),
        "cycle": BillingCycle.objects.get(code="quarterly"),
        "currency": "USD",
        "unit_amount": 17_500,
    }
    return Price.objects.create(**{**defaults, **fields})


def test_a_negative_price_is_refused_by_the_database(demo_catalog):
    with pytest.raises(IntegrityError), transaction.atomic():
        price_for(unit_amount=-1)
    assert not Price.objects.filter(cycle__code="quarterly").exists()


def test_a_zero_price_is_allowed(demo_catalog):
    assert price_for(unit_amount=0).money.amount == 0


def test_a_second_price_for_the_same_plan_cycle_and_currency_is_refused(demo_catalog):
    with pytest.raises(IntegrityError), transaction.atomic():
        price_for(cycle=BillingCycle.objects.get(code="monthly"), unit_amount=6_000)
    assert Price.objects.get(plan__code="lite", cycle__code="monthly", currency="USD").unit_amount == 5_900


def test_the_same_plan_and_cycle_in_another_currency_is_allowed(demo_catalog):
    price_for(currency="GBP", cycle=BillingCycle.objects.get(code="monthly"), unit_amount=4_900)
    assert Price.objects.filter(plan__code="lite", cycle__code="monthly").count() == 3


@pytest.mark.parametrize("currency", ["US", ""])
def test_a_currency_code_is_three_letters(demo_catalog, currency):
    with pytest.raises(IntegrityError), transaction.atomic():
        price_for(currency=currency)


@pytest.mark.parametrize(("low", "high"), [(0, 5), (3, 2)])
def test_a_plan_license_range_is_at_least_one_and_not_reversed(demo_catalog, low, high):
    with pytest.raises(IntegrityError), transaction.atomic():
        Plan.objects.filter(code="lite").update(min_licenses=low, max_licenses=high)
    assert Plan.objects.get(code="lite").min_licenses == 1


def test_a_billing_cycle_lasts_at_least_a_month(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        BillingCycle.objects.create(code="never", months=0)


def test_the_clock_has_a_single_row(clock):
    with pytest.raises(IntegrityError), transaction.atomic():
        ClockState.objects.create(id=2, instant=utc(2030, 1, 1))
    assert ClockState.objects.count() == 1
