"""A database the test shares with the processes it starts (and kills).

On PostgreSQL, the test database itself. On SQLite, the test database lives in memory, where no
other process can open it: :func:`shared_database` copies it (migrated, empty) to a file with
SQLite's backup API and points the test's connection at that file for the test's duration, so the
test, its child processes and the invariants checked after it (``conftest.py``) all read and
write the same file. Children get its address as ``DATABASE_URL`` (:func:`child_environment`).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from tests.app.jobs.support import test_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared_database(transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """The ``DATABASE_URL`` of this test's database, which child processes can open."""
    if connection.vendor == "postgresql":
        yield test_database_url()
        return
    connection.ensure_connection()
    memory = connection.connection
    path = tmp_path / "shared.sqlite3"
    target = sqlite3.connect(path)
    memory.backup(target)
    target.close()
    name = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = str(path)
    # Not closed: closing the last connection to the in-memory database would drop it.
    connection.connection = None
    try:
        yield f"sqlite:///{path}"
    finally:
        connection.close()
        connection.settings_dict["NAME"] = name
        connection.connection = memory


def child_environment(database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process: the shared database, the movable clock, e-mails as
    ``.eml`` files under ``var_dir/mail``, no crash point unless ``extra`` names one."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PRORATA_")}
    return env | {
        "DJANGO_SETTINGS_MODULE": "prorata.settings.base", "DATABASE_URL": database_url,
        "PRORATA_CLOCK": "movable", "PRORATA_VAR_DIR": str(var_dir),
        "PRORATA_LOG_FORMAT": "text", "PRORATA_METRICS_DIR": "", "PRORATA_BILL_RUN_WORKERS": "1",
    } | extra


def run_child(command: list[str], env: dict[str, str], *, timeout: float = 120
              ) -> subprocess.CompletedProcess[str]:
    """Run ``command`` (arguments after ``python -m``) from the repository root; its result."""
    return subprocess.run([sys.executable, "-m", *command], env=env, cwd=ROOT,  # noqa: S603
                          capture_output=True, text=True, timeout=timeout, check=False)
