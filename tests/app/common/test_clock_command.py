"""``prorata clock show | set | advance`` through call_command, and its exit status from a shell."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from prorata.common.models import ClockState
from prorata_core.periods import utc


def run(*args: str) -> str:
    out = StringIO()
    call_command("clock", *args, stdout=out)
    return out.getvalue()


def test_show_prints_the_current_instant_and_the_mode(clock):
    assert run("show") == "2026-03-11T00:00:00Z (movable clock)\n"


def test_set_moves_the_clock_and_says_from_where(clock):
    output = run("set", "2026-01-31T00:00:00Z")
    assert output == "Clock moved from 2026-03-11T00:00:00Z to 2026-01-31T00:00:00Z\n"
    assert clock.now() == utc(2026, 1, 31)


def test_advance_one_month_from_31_january_lands_on_28_february(clock):
    # given the clock on 31 January 2026
    run("set", "2026-01-31T00:00:00Z")
    # when it advances by 1month
    output = run("advance", "1month")
    # then it is on 28 February (month-end clamping), as show confirms
    assert output == "Clock moved from 2026-01-31T00:00:00Z to 2026-02-28T00:00:00Z\n"
    assert run("show").startswith("2026-02-28T00:00:00Z ")


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("30s", utc(2024, 2, 29, 12, 0, 30)),
        ("15min", utc(2024, 2, 29, 12, 15)),
        ("2h", utc(2024, 2, 29, 14)),
        ("14d", utc(2024, 3, 14, 12)),
        ("2w", utc(2024, 3, 14, 12)),
        ("3months", utc(2024, 5, 29, 12)),
        ("1y", utc(2025, 2, 28, 12)),
        ("1year", utc(2025, 2, 28, 12)),
    ],
)
def test_advance_by_each_unit_from_a_leap_day(clock, duration, expected):
    clock.set(utc(2024, 2, 29, 12))
    run("advance", duration)
    assert clock.now() == expected


@pytest.mark.parametrize(
    ("args", "reason", "example"),
    [
        (("advance", "1fortnight"), "'1fortnight' is not a clock duration", "14d, 2w, 1month"),
        (("advance", "0d"), "'0d' is not a clock duration", "14d, 2w, 1month"),
        (("advance", "5m"), "'5m' is ambiguous", "5min for minutes or 5month for months"),
        (("set", "2026-04-01T00:00:00"), "has no time zone", "2026-03-11T00:00:00Z"),
        (("set", "2026-04-01T02:00:00+02:00"), "is not in UTC", "2026-03-11T00:00:00Z"),
        (("set", "tomorrow"), "is not an ISO 8601 instant", "2026-03-11T00:00:00Z"),
    ],
)
def test_bad_input_is_refused_with_an_example_and_changes_nothing(clock, args, reason, example):
    with pytest.raises(CommandError) as refused:
        run(*args)
    assert reason in str(refused.value)
    assert example in str(refused.value)
    assert clock.now() == utc(2026, 3, 11)


def test_a_bad_input_creates_no_clock_row(db):
    with pytest.raises(CommandError):
        run("advance", "soon")
    with pytest.raises(CommandError):
        run("set", "soon")
    assert not ClockState.objects.exists()


@pytest.mark.parametrize("args", [("set", "2030-01-01T00:00:00Z"), ("advance", "1d")])
def test_the_wall_clock_refuses_moves_from_the_command(clock, args):
    with override_settings(PRORATA_CLOCK="wall"):
        with pytest.raises(CommandError, match="set PRORATA_CLOCK=movable"):
            run(*args)
        assert run("show").endswith(" (wall clock)\n")
    assert ClockState.objects.get().instant == utc(2026, 3, 11)


def test_from_a_shell_a_bad_duration_exits_non_zero_with_the_reason(tmp_path):
    # A separate process with its own empty var/ directory: nothing of the developer's is touched.
    env = {
        **os.environ,
        "PRORATA_CLOCK": "movable",
        "PRORATA_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "prorata.settings.base",
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "prorata.cli", "clock", "advance", "1fortnight"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert "'1fortnight' is not a clock duration" in result.stderr
    assert "1month" in result.stderr
    assert result.stdout == ""
