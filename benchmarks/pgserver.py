"""A private PostgreSQL server for a benchmark, configured for a billing run (``--server tuned``).

The machine's own server keeps Debian's defaults (``shared_buffers`` 128 MB, ``max_wal_size``
1 GB), which fit a laptop, not a billing database on 24 GiB: at 1,000,000 renewals the tables
outgrow the buffers and the WAL crosses several checkpoints. The machine's server is shared with CI,
so instead of reconfiguring it this starts a throwaway cluster of the same PostgreSQL binaries on
loopback, with :data:`SETTINGS`, in a temporary directory, and removes it afterwards.

A new server is not yet what a running one is: it creates and zero-fills every WAL file the
first time, and faults in its shared memory page by page. Measured on the standard machine: the
first run of 1,000,000 renewals on a new server took 132.8 s, the next one on the same server
117.6 s. So :func:`tuned_server` first :func:`settles <settle>` the new server: 5 GB of scratch
rows written, read into the buffers and dropped, after which the WAL files exist to be recycled
(``min_wal_size``) and the buffers are mapped, as on a server that has been running.

Who may call: benchmarks only. Needs the server binaries (``pg_config --bindir``); as root, runs
them as the ``postgres`` user (initdb refuses root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: What a billing server on this machine (2 cores, 24 GiB) would set; everything else is default.
#: Durability is untouched: fsync, synchronous_commit and full-page writes stay on.
SETTINGS = {
    "shared_buffers": "4GB",  # a quarter of the RAM: the run's tables and indexes fit
    "max_wal_size": "16GB",  # a checkpoint every few minutes at most, not every 1 GB of WAL
    # WAL files are recycled, not removed, up to this much: a run writes into files that exist
    # (as on a server that has been running) instead of creating and zero-filling new ones.
    "min_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "wal_buffers": "64MB",
    "jit": "off",  # short statements: compiling them would cost more than it saves
}


def _bindir() -> Path:
    found = shutil.which("pg_config")
    if found is None:
        raise SystemExit("pg_config not found: install PostgreSQL's server package (postgresql).")
    output = subprocess.run([found, "--bindir"], check=True, capture_output=True, text=True)  # noqa: S603
    return Path(output.stdout.strip())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def tuned_server() -> Iterator[str]:
    """Start a private cluster on 127.0.0.1 with :data:`SETTINGS`; yield its URL (database
    ``postgres``); stop and remove it on exit."""
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="prorata-pg-"))
    data, port = root / "data", _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust",  # noqa: S603
                        "-U", "postgres", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True)
        config = {"listen_addresses": "'127.0.0.1'", "port": str(port),
                  "unix_socket_directories": f"'{root}'",
                  **{name: f"'{value}'" for name, value in SETTINGS.items()}}
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in config.items())
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l",  # noqa: S603
                        str(root / "server.log"), "-w", "start"], check=True, capture_output=True)
        url = f"postgres://postgres@127.0.0.1:{port}/postgres"
        settle(url)
        try:
            yield url
        finally:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",  # noqa: S603
                            "-w", "stop"], check=False, capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


#: Scratch rows for :func:`settle`: ~1 KB each, 5 GB of WAL in all (a million renewals write ~4).
_SCRATCH_ROWS = 5_000_000


def settle(url: str) -> None:
    """Bring a new server to a running one's state: WAL files written once (recycled from then
    on, up to ``min_wal_size``) and every shared buffer mapped. Takes about half a minute."""
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://"), autocommit=True) as db:
        db.execute("CREATE TABLE prorata_scratch AS SELECT g AS id, repeat('w', 1000) AS filler "
                   "FROM generate_series(1, %s) AS g", [_SCRATCH_ROWS])
        try:  # pg_prewarm ships with the server's contrib modules (Debian: in postgresql-15)
            db.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        except psycopg.Error as missing:
            print(f"pgserver: buffers not prewarmed ({missing})", file=sys.stderr)
        else:
            db.execute("SELECT pg_prewarm('prorata_scratch')")
            db.execute("DROP EXTENSION pg_prewarm")
        db.execute("DROP TABLE prorata_scratch")
        db.execute("CHECKPOINT")
