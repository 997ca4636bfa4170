"""Entry points for the billing run's worker processes (``bill_run(workers=N)``).

A spawned process starts with nothing imported: this module imports no model at import time, sets
Django up from the inherited environment (``DJANGO_SETTINGS_MODULE``, ``DATABASE_URL``), and only
then imports the billing run's invoicing step. Arguments and results are plain values (STYLE rule 8).
"""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Any

#: Linux's prctl option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def die_with(parent: int) -> None:
    """First thing in a worker process: end this worker when the run ``parent`` ends, even by
    ``kill -9``: a killed run must not go on renewing behind the operator's back. Linux: the
    kernel sends SIGKILL; elsewhere :func:`renew_worker` stops before its next chunk."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def renew_worker(
    at: str, chunk_size: int, partition: tuple[int, int] | None, parent: int, by_id: bool
) -> dict[str, Any]:
    """Renew due subscriptions at the ISO instant ``at`` until none is left to claim, in id order
    when ``by_id`` (the run's decision); return the counts (``renewed``, ``chunks``,
    ``fallbacks``, ``failed_ids``). Called in a worker process started by the process ``parent``
    (:func:`worker_main`, after :func:`die_with`)."""
    import django

    django.setup()
    from django.db import connections

    from prorata.common.clock import instant_from_json
    from prorata.jobs.billing_run import RunStats
    from prorata.jobs.claim import Claim
    from prorata.jobs.invoicing import renew_due

    stats = RunStats()
    try:
        renew_due(at=instant_from_json(at), chunk_size=chunk_size, partition=partition,
                  stats=stats, claim=Claim(by_id=by_id), keep_going=lambda: os.getppid() == parent)
    finally:
        connections.close_all()
    return {"renewed": stats.renewed, "chunks": stats.chunks, "fallbacks": stats.fallbacks,
            "failed_ids": stats.failed_ids}


def worker_main(send: Any, at: str, chunk_size: int, partition: tuple[int, int] | None,
                parent: int, by_id: bool) -> None:
    """A worker process's body: :func:`die_with` the run ``parent``, :func:`renew_worker`, and
    its counts sent back through the pipe end ``send``. A worker that dies sends nothing: the
    run sees the pipe's end of file and renews what is left itself."""
    die_with(parent)
    send.send(renew_worker(at, chunk_size, partition, parent, by_id))
    send.close()
