"""How the catalog is laid out for people (no database)."""

from __future__ import annotations

from prorata.catalog.display import feature_labels, priced_cycles, prices_by_plan_and_cycle
from prorata_core.catalog import ANNUAL, MONTHLY, QUARTERLY, Catalog, Price
from prorata_core.money import Money


def test_features_are_named_in_the_catalog_order_and_unknown_ones_last():
    assert feature_labels(["api_access", "zoom_rooms", "recording"]) == [
        "Recording", "API access", "Zoom rooms",
    ]  # fmt: skip


def test_prices_are_grouped_per_plan_and_cycle_by_currency_and_cycles_shortest_first():
    catalog = Catalog.build(
        products=[],
        plans=[],
        cycles=[ANNUAL, QUARTERLY, MONTHLY],
        prices=[
            Price("lite", "annual", Money(58_800, "USD")),
            Price("lite", "annual", Money(55_200, "EUR")),
            Price("lite", "monthly", Money(5_900, "USD")),
        ],
    )
    assert prices_by_plan_and_cycle(catalog) == {
        ("lite", "annual"): [Money(55_200, "EUR"), Money(58_800, "USD")],
        ("lite", "monthly"): [Money(5_900, "USD")],
    }
    assert priced_cycles(catalog) == [MONTHLY, ANNUAL]
