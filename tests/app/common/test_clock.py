"""The project clock's services: frozen movable time, moves, refusals, the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.test import override_settings

from prorata.common import clock as clock_module
from prorata.common.clock import (
    ClockStep,
    clock_advance,
    clock_set,
    format_instant,
    now,
    parse_duration,
    parse_instant,
)
from prorata.common.errors import ClockNotMovable, InvalidDuration
from prorata.common.models import ClockState
from prorata_core.errors import InvalidInstant, ProrataError
from prorata_core.periods import utc

WALL_INSTANT = datetime(2026, 5, 5, 10, 20, 30, 999_999, tzinfo=UTC)


@pytest.fixture
def fixed_wall(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """The system clock, pinned: tests never depend on when they run."""
    monkeypatch.setattr(clock_module, "_wall_now", lambda: WALL_INSTANT)
    return WALL_INSTANT


def stored_instant() -> datetime:
    return ClockState.objects.get(pk=1).instant


def test_first_read_creates_the_row_from_the_wall_clock_in_whole_seconds(db, fixed_wall):
    # given no clock row yet
    assert not ClockState.objects.exists()
    # when the clock is read
    instant = now()
    # then the row exists, truncated to the second, and later reads return it unchanged
    assert instant == datetime(2026, 5, 5, 10, 20, 30, tzinfo=UTC)
    assert ClockState.objects.count() == 1
    assert stored_instant() == instant


def test_the_movable_clock_is_frozen_and_read_in_one_query(clock, django_assert_num_queries):
    # given the clock set to the demo instant
    # when it is read twice
    with django_assert_num_queries(1):
        first = now()
    second = now()
    # then it has not ticked, and it is an aware UTC instant
    assert first == second == utc(2026, 3, 11)
    assert first.tzinfo is UTC


def test_a_move_made_by_another_process_is_seen_at_once(clock):
    # given a reader that has already seen the clock
    assert now() == utc(2026, 3, 11)
    # when another process (the CLI) writes the row
    ClockState.objects.filter(pk=1).update(instant=utc(2026, 7, 1, 12))
    # then the next read sees the new instant
    assert now() == utc(2026, 7, 1, 12)


def test_set_moves_forwards_and_backwards(clock):
    assert clock_set(instant=utc(2027, 1, 1)) == utc(2027, 1, 1)
    assert now() == utc(2027, 1, 1)
    assert clock_set(instant=utc(2025, 6, 30, 23, 59, 59)) == utc(2025, 6, 30, 23, 59, 59)
    assert now() == utc(2025, 6, 30, 23, 59, 59)


@pytest.mark.parametrize(
    "instant",
    [datetime(2026, 4, 1), datetime(2026, 4, 1, tzinfo=timezone(timedelta(hours=2)))],
    ids=["naive", "paris-summer-offset"],
)
def test_set_refuses_instants_that_are_not_utc_and_changes_nothing(clock, instant):
    with pytest.raises(InvalidInstant):
        clock_set(instant=instant)
    assert now() == utc(2026, 3, 11)


def test_advance_by_a_month_clamps_at_month_end(clock):
    # given the clock on 31 January
    clock.set(utc(2026, 1, 31, 9, 30))
    # when it advances by one calendar month, then by one more
    assert clock_advance(duration=ClockStep(months=1)) == utc(2026, 2, 28, 9, 30)
    # then February's 28th is kept: months move from where the clock is
    assert clock_advance(duration=ClockStep(months=1)) == utc(2026, 3, 28, 9, 30)
    assert now() == utc(2026, 3, 28, 9, 30)


def test_advance_by_a_timedelta(clock):
    assert clock_advance(duration=timedelta(days=14, seconds=30)) == utc(2026, 3, 25, 0, 0, 30)
    assert now() == utc(2026, 3, 25, 0, 0, 30)


def test_advance_creates_the_row_when_there_is_none(db, fixed_wall):
    assert clock_advance(duration=timedelta(hours=1)) == utc(2026, 5, 5, 11, 20, 30)
    assert stored_instant() == utc(2026, 5, 5, 11, 20, 30)


@pytest.mark.parametrize(
    "duration",
    [
        timedelta(0),
        timedelta(seconds=-1),
        ClockStep(months=-1),
        ClockStep(),
        ClockStep(months=1, delta=timedelta(days=-1)),
        ClockStep(months=-1, delta=timedelta(days=40)),
    ],
    ids=["zero", "negative-seconds", "negative-months", "empty-step", "back-days", "back-months"],
)
def test_advance_refuses_durations_that_are_not_positive_and_changes_nothing(clock, duration):
    with pytest.raises(InvalidDuration) as refused:
        clock_advance(duration=duration)
    assert refused.value.code == "invalid_duration"
    assert "clock set" in refused.value.message
    assert now() == utc(2026, 3, 11)


def test_advance_past_the_year_9999_is_refused_and_changes_nothing(clock):
    clock.set(utc(9999, 12, 1))
    with pytest.raises(InvalidDuration, match="past the year 9999"):
        clock_advance(duration=ClockStep(months=1))
    assert now() == utc(9999, 12, 1)


@override_settings(PRORATA_CLOCK="wall")
def test_the_wall_clock_is_read_from_the_system_without_the_database(
    db, fixed_wall, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert now() == WALL_INSTANT
    assert not ClockState.objects.exists()


@pytest.mark.parametrize(
    "move",
    [
        lambda: clock_set(instant=utc(2030, 1, 1)),
        lambda: clock_advance(duration=timedelta(days=1)),
        lambda: clock_advance(duration=ClockStep(months=1)),
    ],
    ids=["set", "advance-days", "advance-months"],
)
def test_the_wall_clock_refuses_every_move(clock, move):
    # given a stored movable instant, then production settings
    with override_settings(PRORATA_CLOCK="wall"):
        # when a move is asked, then it is refused with the typed error and what to do
        with pytest.raises(ClockNotMovable) as refused:
            move()
    assert isinstance(refused.value, ProrataError)
    assert refused.value.code == "clock_not_movable"
    assert "PRORATA_CLOCK=movable" in refused.value.message
    # and the stored instant is untouched
    assert stored_instant() == utc(2026, 3, 11)


@pytest.mark.parametrize(
    ("text", "step"),
    [
        ("30s", ClockStep(delta=timedelta(seconds=30))),
        ("15min", ClockStep(delta=timedelta(minutes=15))),
        ("2h", ClockStep(delta=timedelta(hours=2))),
        ("14d", ClockStep(delta=timedelta(days=14))),
        ("2w", ClockStep(delta=timedelta(weeks=2))),
        ("1month", ClockStep(months=1)),
        ("3months", ClockStep(months=3)),
        ("1y", ClockStep(months=12)),
        ("1year", ClockStep(months=12)),
        ("2 years", ClockStep(months=24)),
        (" 10D ", ClockStep(delta=timedelta(days=10))),
    ],
)
def test_parse_duration_reads_every_documented_unit(text, step):
    assert parse_duration(text) == step


@pytest.mark.parametrize(
    "text", ["", "month", "1", "0d", "-1d", "1.5h", "1fortnight", "1d2h", "d1", "1 month ago"]
)
def test_parse_duration_refuses_anything_else_with_examples(text):
    with pytest.raises(InvalidDuration) as refused:
        parse_duration(text)
    assert repr(text) in refused.value.message
    assert "14d, 2w, 1month" in refused.value.message


def test_parse_duration_calls_a_bare_m_ambiguous():
    with pytest.raises(InvalidDuration, match="write 5min for minutes or 5month for months"):
        parse_duration("5m")


@pytest.mark.parametrize(
    "text", ["2026-03-11T00:00:00Z", "2026-03-11T00:00:00+00:00", "2026-03-11 00:00Z"]
)
def test_parse_instant_reads_utc_iso_instants(text):
    parsed = parse_instant(text)
    assert parsed == utc(2026, 3, 11)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-03-11T00:00:00", "has no time zone"),
        ("2026-03-11", "has no time zone"),
        ("2026-03-11T01:00:00+01:00", "is not in UTC"),
        ("11/03/2026", "is not an ISO 8601 instant"),
        ("2026-02-30T00:00:00Z", "is not an ISO 8601 instant"),
    ],
)
def test_parse_instant_refuses_naive_offset_and_malformed_instants(text, reason):
    with pytest.raises(InvalidInstant) as refused:
        parse_instant(text)
    assert reason in refused.value.message
    assert "2026-03-11T00:00:00Z" in refused.value.message


def test_format_instant_is_iso_with_z():
    assert format_instant(utc(2026, 3, 11)) == "2026-03-11T00:00:00Z"
    paris = datetime(2026, 3, 11, 1, tzinfo=timezone(timedelta(hours=1)))
    assert format_instant(paris) == "2026-03-11T00:00:00Z"


def test_format_instant_is_the_same_on_every_road_to_utc():
    """The fast road (``tzinfo is UTC``) and the converting one write the same text, microseconds
    included, whatever object says "UTC"."""
    from zoneinfo import ZoneInfo

    at = datetime(2026, 3, 11, 13, 45, 12, 5, tzinfo=UTC)
    assert format_instant(at) == "2026-03-11T13:45:12.000005Z"
    for same in (at.replace(tzinfo=ZoneInfo("UTC")), at.replace(tzinfo=timezone(timedelta(0))),
                 at.astimezone(timezone(timedelta(hours=-5)))):
        assert format_instant(same) == "2026-03-11T13:45:12.000005Z"
