"""What the billing run says about a PostgreSQL server configured below a billing database's needs.

Measured on a 2-core, 24 GiB machine (benchmarks/README.md): a million renewals took 106 s with
``shared_buffers`` 4 GB and ``max_wal_size`` 16 GB, 162 s with Debian's defaults (128 MB, 1 GB),
whose buffers the run's tables outgrow and whose WAL limit forces a checkpoint every ~250,000
renewals. The README ("Running against PostgreSQL") gives the settings.

Who may call: the ``bill-run`` command, once per run, before it starts.
"""

from __future__ import annotations

from django.db import connection

#: Below these, a large run is measurably slower (bytes).
MIN_SHARED_BUFFERS = 1 << 30
MIN_MAX_WAL_SIZE = 4 << 30


def server_advice() -> list[str]:
    """One line per server setting below its minimum (:data:`MIN_SHARED_BUFFERS`,
    :data:`MIN_MAX_WAL_SIZE`), saying what to do; empty when the server is fine or is not
    PostgreSQL (SQLite has no such settings)."""
    if connection.vendor != "postgresql":
        return []
    min_shared_buffers, min_max_wal_size = MIN_SHARED_BUFFERS, MIN_MAX_WAL_SIZE
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('shared_buffers'), pg_size_bytes(current_setting('shared_buffers')),"
            " current_setting('max_wal_size'), pg_size_bytes(current_setting('max_wal_size'))")
        buffers, buffers_bytes, wal, wal_bytes = cursor.fetchone()
    advice = []
    if buffers_bytes < min_shared_buffers:
        advice.append(
            f"PostgreSQL's shared_buffers is {buffers}: a large billing run outgrows it. Set it to "
            f"about a quarter of the server's memory (at least {min_shared_buffers >> 30} GB); "
            "see the README, 'Running against PostgreSQL'.")
    if wal_bytes < min_max_wal_size:
        advice.append(
            f"PostgreSQL's max_wal_size is {wal}: a large billing run then forces a checkpoint "
            f"every few hundred thousand renewals. Set it to {min_max_wal_size >> 30} GB or more; "
            "see the README, 'Running against PostgreSQL'.")
    return advice
