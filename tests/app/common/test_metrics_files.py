"""The metrics directory shared by a machine's processes forgets the processes that ended."""

from __future__ import annotations

import os

from prorata.common import metrics


def test_files_of_processes_that_ended_are_removed_and_the_living_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    alive = tmp_path / f"counter_{os.getpid()}.db"
    dead = tmp_path / "counter_999999999.db"
    other = tmp_path / "notes.txt"
    for path in (alive, dead, other):
        path.write_bytes(b"x")
    metrics.forget_dead_processes()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])


def test_without_a_directory_nothing_happens(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics.forget_dead_processes()  # no error
    assert metrics.multiprocess_dir() is None
