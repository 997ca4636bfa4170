"""A billing run beside 50 concurrent checkouts on one SQLite file (issue 12, item 8): before,
a third of the requests answered 500 (``database is locked``) and the run's charge step crashed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from prorata.jobs.billing_run import SQLITE_CHUNK_SIZE

ROOT = Path(__file__).resolve().parents[3]
RENEWALS, CHECKOUTS = 1000, 50


def test_a_run_beside_fifty_checkouts_answers_no_500_and_charges_every_payment(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    finished = subprocess.run(  # noqa: S603  # this interpreter, fixed arguments
        [sys.executable, "-m", "tests.app.jobs.sqlite_load", str(tmp_path / "load.sqlite3"),
         str(RENEWALS), str(CHECKOUTS)],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=1800, check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(finished.stdout.splitlines()[-1])
    statuses = result["statuses"]
    # Never a 500: each checkout is paid (201), after answers of 503 "busy, nothing was saved,
    # try again" at worst, which the client follows.
    assert set(statuses) <= {"200", "201", "503"}, result["errors"]
    assert (statuses["200"], statuses["201"]) == (CHECKOUTS, CHECKOUTS), result["errors"]
    assert all("busy" in error for error in result["errors"])
    assert "error" not in result["run"], result["run"].get("traceback")
    stats = result["run"]["stats"]
    assert stats["renewed"] == stats["charged"] == RENEWALS
    # Each chunk holds SQLite's only write lock: small enough to stay inside the busy timeout.
    assert stats["chunks"] == math.ceil(RENEWALS / SQLITE_CHUNK_SIZE)
    assert result["payments"] == {"succeeded": RENEWALS + CHECKOUTS}
    assert result["orders_paid"] == CHECKOUTS
    assert result["renewals"] == result["renewals_paid"] == RENEWALS
