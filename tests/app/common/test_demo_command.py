"""``prorata demo``: sets the movable clock to the demo day and loads the catalog, idempotently."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.test import override_settings

from prorata.catalog.models import BillingCycle, Plan, Price, Product
from prorata.common.models import ClockState
from prorata_core.periods import utc


def run_demo() -> str:
    out = StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def row_counts() -> tuple[int, int, int, int]:
    return (
        Product.objects.count(),
        Plan.objects.count(),
        BillingCycle.objects.count(),
        Price.objects.count(),
    )


def test_demo_sets_the_clock_loads_the_catalog_and_says_what_it_loaded(clock):
    # given an empty catalog and the clock somewhere else
    clock.set(utc(2030, 1, 1))
    # when the demo runs
    output = run_demo()
    # then the clock is on DESIGN's day and the catalog is there, as printed
    assert clock.now() == utc(2026, 3, 11)
    assert row_counts() == (1, 5, 3, 14)
    lines = output.splitlines()
    people = lines.index("People (password for everyone: prorata-demo):")
    assert lines[:people] + lines[-1:] == [
        "Clock: set to 2026-03-11T00:00:00Z (movable; `prorata clock advance 1month`).",
        "Catalog: 1 product, 5 plans, 3 billing cycles, 14 prices (23 rows new, 0 updated).",
        "  Webinar (webinar)",
        "    Free trial (free_trial): 100 participants; monthly 0.00 EUR / 0.00 USD",
        "    Lite (lite): 250 participants; monthly 55.00 EUR / 59.00 USD; "
        "annual 552.00 EUR / 588.00 USD",
        "    Standard (standard): 500 participants; monthly 119.00 EUR / 129.00 USD; "
        "annual 1104.00 EUR / 1188.00 USD",
        "    Pro (pro): 1000 participants; monthly 229.00 EUR / 249.00 USD; "
        "annual 2196.00 EUR / 2388.00 USD",
        "    Enterprise (enterprise): 3000 participants; advisor-priced",
        "Demo loaded.",
    ]


def test_running_the_demo_twice_leaves_one_copy(clock):
    run_demo()
    clock.advance(timedelta(days=3))
    output = run_demo()
    assert row_counts() == (1, 5, 3, 14)
    assert "(0 rows new, 23 updated)" in output
    assert clock.now() == utc(2026, 3, 11)


@override_settings(PRORATA_CLOCK="wall")
def test_with_the_wall_clock_the_demo_loads_the_catalog_and_leaves_the_time_alone(db):
    output = run_demo()
    assert output.startswith("Clock: the wall clock, ")
    assert "left as it is (with PRORATA_CLOCK=movable the demo starts on 2026-03-11T00:00:00Z)" in output
    assert not ClockState.objects.exists()
    assert row_counts() == (1, 5, 3, 14)
