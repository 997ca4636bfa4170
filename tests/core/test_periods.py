import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prorata_core.errors import InvalidInstant, InvalidPeriod
from prorata_core.periods import (
    Period,
    cycle_period,
    period_after,
    period_starting,
    require_utc,
    seconds_between,
    shift_months,
    utc,
)


def test_month_end_anchor_is_kept_design_example_4():
    # Given a monthly subscription started on 31 January 2026
    anchor = utc(2026, 1, 31)
    # Then it renews on 28 February, 31 March, 30 April
    ends = [cycle_period(anchor, 1, i).end for i in range(3)]
    assert ends == [utc(2026, 2, 28), utc(2026, 3, 31), utc(2026, 4, 30)]


def test_leap_day_annual_clamps_to_28_february():
    anchor = utc(2028, 2, 29, 9, 30)
    assert cycle_period(anchor, 12, 0).end == utc(2029, 2, 28, 9, 30)
    assert cycle_period(anchor, 12, 3).end == utc(2032, 2, 29, 9, 30)


def test_quarterly():
    assert period_starting(utc(2026, 11, 30), 3) == Period(utc(2026, 11, 30), utc(2027, 2, 28))


def test_shift_months_backwards():
    assert shift_months(utc(2026, 3, 31), -1) == utc(2026, 2, 28)


def test_period_after_follows_the_anchor_not_the_short_month():
    anchor = utc(2026, 1, 31)
    february = cycle_period(anchor, 1, 1)
    assert february == Period(utc(2026, 2, 28), utc(2026, 3, 31))
    assert period_after(february, anchor, 1) == Period(utc(2026, 3, 31), utc(2026, 4, 30))


@pytest.mark.parametrize("months", [0, -1])
def test_period_after_refuses_a_cycle_of_no_month(months):
    with pytest.raises(InvalidPeriod, match="at least one month"):
        period_after(Period(utc(2026, 1, 31), utc(2026, 2, 28)), utc(2026, 1, 31), months)


def test_period_after_refuses_an_anchor_not_in_utc():
    paris = datetime(2026, 1, 31, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(InvalidInstant):
        period_after(Period(utc(2026, 1, 31), utc(2026, 2, 28)), paris, 1)


def test_period_after_refuses_a_period_of_another_cycle():
    with pytest.raises(InvalidPeriod):
        period_after(Period(utc(2026, 2, 27), utc(2026, 3, 27)), utc(2026, 1, 31), 1)


def test_period_must_end_after_start_and_be_utc():
    with pytest.raises(InvalidPeriod):
        Period(utc(2026, 1, 1), utc(2026, 1, 1))
    with pytest.raises(InvalidInstant) as naive:
        Period(datetime(2026, 1, 1), utc(2026, 2, 1))
    assert "no time zone" in naive.value.message
    with pytest.raises(InvalidInstant) as offset:
        require_utc(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))))
    assert "not in UTC" in offset.value.message


def test_cycle_must_be_at_least_a_month():
    with pytest.raises(InvalidPeriod):
        cycle_period(utc(2026, 1, 1), 0, 0)


def test_seconds_and_membership():
    period = Period(utc(2026, 1, 1), utc(2027, 1, 1))
    assert period.seconds == 365 * 86_400
    assert utc(2026, 1, 1) in period and utc(2027, 1, 1) not in period
    assert seconds_between(utc(2026, 1, 2), utc(2026, 1, 1)) == -86_400


@given(
    anchor=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2070, 12, 31),
                        timezones=st.just(UTC)),
    months=st.sampled_from([1, 3, 6, 12]),
)
def test_consecutive_periods_never_overlap_or_leave_a_gap_over_30_years(anchor, months):
    periods = [cycle_period(anchor, months, i) for i in range(30 * 12 // months)]
    for before, after in itertools.pairwise(periods):
        assert before.end == after.start
        assert period_after(before, anchor, months) == after
        assert after.start.day == min(anchor.day, after.start.day)
        assert after.start.time() == anchor.time()
    assert periods[0].start == anchor


def test_an_equivalent_utc_zone_is_accepted():
    from zoneinfo import ZoneInfo

    for zone in (timezone(timedelta(0)), ZoneInfo("UTC")):
        instant = datetime(2026, 1, 1, tzinfo=zone)
        assert require_utc(instant) is instant
