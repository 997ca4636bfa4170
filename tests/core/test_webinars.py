"""The S5 rule in the core: a scheduled webinar's limit never goes down (DESIGN §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from prorata_core.webinars import Spell, participant_limit

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def limit(spells, now, *, scheduled=T0 + 2 * DAY, starts=T0 + 10 * DAY, when=500):
    return participant_limit(limit_when_scheduled=when, scheduled_at=scheduled,
                             starts_at=starts, now=now, spells=spells)


def test_an_upgrade_raises_an_upcoming_webinar_at_once():
    spells = [Spell(T0, 500), Spell(T0 + 5 * DAY, 1000)]
    assert limit(spells[:1], T0 + 4 * DAY) == 500
    assert limit(spells, T0 + 5 * DAY) == 1000


def test_a_downgrade_or_an_expiry_after_an_upgrade_keeps_the_raised_limit():
    spells = [Spell(T0, 500), Spell(T0 + 3 * DAY, 1000), Spell(T0 + 4 * DAY, 250),
              Spell(T0 + 6 * DAY, 0)]
    assert limit(spells, T0 + 7 * DAY) == 1000


def test_plans_before_scheduling_or_after_the_start_do_not_count():
    spells = [Spell(T0 - DAY, 3000), Spell(T0, 500), Spell(T0 + 11 * DAY, 1000)]
    assert limit(spells, T0 + 12 * DAY) == 500
    assert limit([Spell(T0 + 3 * DAY, 1000)], T0 + 2 * DAY) == 500  # not yet happened


def test_changes_sharing_the_scheduling_instant_count():
    # A stopped clock: scheduled, upgraded and downgraded by staff at one instant.
    spells = [Spell(T0, 500), Spell(T0 + 2 * DAY, 1000), Spell(T0 + 2 * DAY, 250)]
    assert limit(spells, T0 + 2 * DAY) == 1000


def test_never_below_the_limit_when_scheduled():
    assert limit([Spell(T0, 100)], T0 + 3 * DAY) == 500
    assert limit([], T0 + 3 * DAY) == 500


@given(st.lists(st.tuples(st.integers(0, 20 * 24), st.sampled_from([0, 100, 250, 500, 1000,
                                                                    3000])), max_size=12),
       st.integers(0, 5 * 24), st.integers(1, 10 * 24))
def test_as_time_passes_and_the_plan_changes_the_limit_never_decreases(changes, sched, ahead):
    scheduled = T0 + timedelta(hours=sched)
    starts = scheduled + timedelta(hours=ahead)
    spells = [Spell(T0, 500)]
    now = scheduled
    seen = limit(spells, now, scheduled=scheduled, starts=starts)
    for hours, plan_limit in changes:
        now = now + timedelta(hours=hours)
        spells.append(Spell(now, plan_limit))
        for moment in (now, now + timedelta(seconds=1)):
            current = limit(spells, moment, scheduled=scheduled, starts=starts)
            assert current >= seen >= 500
            seen = current
