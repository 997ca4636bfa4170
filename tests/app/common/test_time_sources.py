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
