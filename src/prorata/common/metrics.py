"""The process's Prometheus metrics (prometheus-client), shared by the web server and the worker.

Metrics of what happens in a process (requests, job runs, the billing run's progress) are defined
here. When ``PROMETHEUS_MULTIPROC_DIR`` is set (settings do it from ``PRORATA_METRICS_DIR``), each
process writes its values to files there and ``/metrics`` adds up every process's, the web server's
gunicorn workers and the ``prorata worker`` on the same machine alike; otherwise each process counts
alone (the tests). Facts kept in the database (outbox depth, charges, dunning states) are read at
scrape time instead (``prorata.web.health``), so that they are right whichever process changed them.

Labels are bounded: a route is its URL pattern (``billing/<int:account_id>/``), never the path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.registry import Collector

# A "_created" timestamp beside every counter doubles the output for nothing a dashboard reads.
disable_created_metrics()

#: Request latency buckets in seconds: pages aim under 100 ms, a checkout's gateway call may take 2 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "prorata_http_requests", "HTTP requests answered, by route pattern, method and status code",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "prorata_http_request_duration_seconds", "Time to answer an HTTP request, by route pattern",
    ["route", "method"], buckets=LATENCY_BUCKETS,
)
JOB_RUNS = Counter("prorata_job_runs", "Periodic job runs, by job and outcome (ok, failed)",
                   ["job", "outcome"])
JOB_SECONDS = Histogram("prorata_job_duration_seconds", "Duration of a periodic job's run", ["job"],
                        buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600))
JOB_COUNTS = Counter("prorata_job_items", "What periodic jobs did (e-mails sent, renewals...), "
                     "by job and count name", ["job", "item"])
BILL_RUN_DUE = Gauge("prorata_bill_run_due", "Subscriptions due when the running billing run "
                     "started (0 when none runs)", multiprocess_mode="livesum")
BILL_RUN_RENEWED = Gauge("prorata_bill_run_renewed", "Subscriptions renewed so far by the running "
                         "billing run", multiprocess_mode="livesum")
BILL_RUN_OUTCOMES = Counter("prorata_bill_run_results", "Billing run outcomes: renewed, charged, "
                            "declined, requires_action, unknown, expired, failed", ["outcome"])


def multiprocess_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(value) if value else None


def forget_dead_processes() -> None:
    """Remove the value files of processes that no longer run (a restarted server or worker), so
    that the directory does not grow with every restart; counters of the dead restart from zero,
    which Prometheus' ``rate()`` takes as a reset."""
    directory = multiprocess_dir()
    if directory is None or not directory.is_dir():
        return
    for path in directory.glob("*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def render(extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition of every process's metrics plus ``extra`` collectors' (read now)."""
    directory = multiprocess_dir()
    if directory is not None:
        from prometheus_client import multiprocess

        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes, path=str(directory))
    else:
        from prometheus_client import REGISTRY as processes
    now = CollectorRegistry(auto_describe=True)
    for collector in extra:
        now.register(collector)
    return generate_latest(processes) + generate_latest(now)
