"""The project clock is the only reader of the system time in src/ (DESIGN §7, STYLE rule 2)."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src"
CLOCK = SRC / "prorata" / "common" / "clock.py"
READS_THE_TIME = re.compile(
    r"\b(datetime\.now\(|datetime\.utcnow\(|timezone\.now\(|time\.time\(|date\.today\()"
)


def time_reads() -> dict[Path, list[str]]:
    found: dict[Path, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if READS_THE_TIME.search(line):
                found.setdefault(path, []).append(f"{number}: {line.strip()}")
    return found


def test_only_the_project_clock_reads_the_system_time():
    found = time_reads()
    # the scan does see the one allowed read (else it would pass by finding nothing anywhere)
    assert CLOCK in found, "the scan no longer finds the clock's own datetime.now(UTC)"
    others = {str(path.relative_to(SRC)): lines for path, lines in found.items() if path != CLOCK}
    assert others == {}, "read the time through prorata.common.clock.now() instead"


def test_the_scan_catches_each_forbidden_call():
    for call in ["datetime.now(UTC)", "timezone.now()", "time.time()", "date.today()",
                 "datetime.datetime.utcnow()"]:
        assert READS_THE_TIME.search(f"x = {call}"), call
    assert not READS_THE_TIME.search("instant = now()")


READS_AN_INSTANT = re.compile(r"\b(fromisoformat\(|parse_datetime\(|strptime\()")
#: The one reader of the project's own instants, the one converter of hand-written queries'
#: timestamps, and a page's date filter (a day a person typed, not an instant).
INSTANT_READERS = {"prorata/common/clock.py", "prorata/common/db.py",
                   "prorata/web/views_transactions.py"}


def test_instants_are_read_in_one_place():
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        lines = [f"{number}: {line.strip()}" for number, line in
                 enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if READS_AN_INSTANT.search(line)]
        if lines:
            found[str(path.relative_to(SRC))] = lines
    assert "prorata/common/clock.py" in found, "the scan no longer finds the clock's own reader"
    others = {path: lines for path, lines in found.items() if path not in INSTANT_READERS}
    assert others == {}, ("read the project's instants with prorata.common.clock.instant_from_json "
                          "(a query's timestamps with prorata.common.db.instant_from_db)")


def test_the_project_s_instants_read_back_as_aware_utc():
    from datetime import UTC, datetime, timedelta, timezone

    import pytest

    from prorata.common.clock import format_instant, instant_from_json
    from prorata.common.db import instant_from_db

    at = datetime(2026, 3, 11, 9, 30, tzinfo=UTC)
    assert instant_from_json(format_instant(at)) == at
    assert instant_from_json(at.isoformat()).tzinfo is UTC
    assert instant_from_json("2026-03-11T10:30:00+01:00") == at
    with pytest.raises(ValueError, match="without a time zone"):
        instant_from_json("2026-03-11T09:30:00")
    with pytest.raises(ValueError):
        instant_from_json("11/03/2026")
    assert instant_from_db("2026-03-11 09:30:00") == at  # SQLite: naive UTC text
    assert instant_from_db(at.astimezone(timezone(timedelta(hours=2)))).tzinfo is UTC
