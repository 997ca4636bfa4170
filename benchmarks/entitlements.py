"""The entitlement endpoint over HTTP on PostgreSQL (issue 13): what the webinar product asks on
its sign-in path, ``GET /api/v1/entitlements/{email}``, served by ``prorata serve``'s gunicorn with
TWO workers.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/prorata_bench \
        .venv/bin/python benchmarks/entitlements.py [--seconds 5] [--repeat 2] \
        [--accounts 10000] [--members 10]

It creates a throwaway database next to ``DATABASE_URL``'s (``test_<name>``), migrates it, loads
``--accounts`` accounts of ``--members`` members each (10,000 × 10 = 100,000 users), each account
with a Standard subscription of 5 licenses held by its first 5 members — written set-based with
``bulk_create`` (benchmark data, not a purchase: no invoices, the endpoint does not read them) —
creates an entitlement key, starts ``prorata serve``'s gunicorn command with ``--workers 2`` on
loopback (its own worker, keep-alive; ``--worker-class gthread`` or ``sync`` to compare), and drives
it with keep-alive connections over random members' addresses (licensed and not): once plain
(200), once with the ETag of the previous answer (304). With Debian's ``wrk`` when installed
(``taskset -c 1``), else a Python client (threads with persistent connections, which share the
machine's two cores with the server: a lower bound). The best of ``--repeat`` runs is printed,
one JSON line per measurement, with the load average. It stops the server and drops the database.

Target (issue 13): ≥ 3,000 requests/s with p99 < 5 ms, a 304 cheaper still.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
os.environ["PRORATA_CLOCK"] = "wall"

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection  # noqa: E402

from billing_center import percentile  # noqa: E402
from http_billing import database_url, free_port  # noqa: E402
from prorata.accounts.models import Account, Membership, User  # noqa: E402
from prorata.catalog.models import BillingCycle, Plan, Product  # noqa: E402
from prorata.catalog.services import catalog_load_demo  # noqa: E402
from prorata.common.clock import now  # noqa: E402
from prorata.common.management.commands.serve import gunicorn_argv  # noqa: E402
from prorata.licenses.entitlements import entitlement_key_create  # noqa: E402
from prorata.licenses.models import LicenseAssignment  # noqa: E402
from prorata.subscriptions.models import Subscription, SubscriptionStatus  # noqa: E402

VENV_BIN = Path(sys.executable).parent
LICENSES = 5
BATCH = 5_000


def load(accounts: int, members: int) -> list[str]:
    """The accounts, users, memberships, subscriptions and assignments; returns the e-mails."""
    catalog_load_demo()
    at = now()
    product, plan = Product.objects.get(code="webinar"), Plan.objects.get(code="standard")
    cycle = BillingCycle.objects.get(code="annual")
    password = make_password(None)  # unusable: nobody signs in here
    Account.objects.bulk_create(
        [Account(name=f"Bench {i}", country="US", currency="USD", created_at=at)
         for i in range(accounts)], batch_size=BATCH)
    account_ids = list(Account.objects.order_by("id").values_list("id", flat=True))
    emails = [f"m{a}-{m}@bench.example" for a in range(accounts) for m in range(members)]
    User.objects.bulk_create([User(email=e, password=password) for e in emails], batch_size=BATCH)
    users = dict(User.objects.filter(email__endswith="@bench.example")
                 .values_list("email", "id"))
    Membership.objects.bulk_create(
        [Membership(account_id=account_ids[a], user_id=users[f"m{a}-{m}@bench.example"],
                    is_organizer=m < LICENSES, is_billing_contact=m == 0)
         for a in range(accounts) for m in range(members)], batch_size=BATCH)
    Subscription.objects.bulk_create(
        [Subscription(account_id=account_id, product=product, plan=plan, cycle=cycle,
                      quantity=LICENSES, currency="USD", unit_amount=118_800,
                      status=SubscriptionStatus.ACTIVE, anchor=at, period_start=at,
                      period_end=at + timedelta(days=365), invoiced_amount=LICENSES * 118_800,
                      created_at=at) for account_id in account_ids], batch_size=BATCH)
    subscriptions = dict(Subscription.objects.values_list("account_id", "id"))
    licensed = Membership.objects.filter(is_organizer=True).values_list("id", "account_id")
    LicenseAssignment.objects.bulk_create(
        [LicenseAssignment(subscription_id=subscriptions[account_id], member_id=member_id,
                           assigned_at=at) for member_id, account_id in licensed],
        batch_size=BATCH)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return emails


@contextlib.contextmanager
def gunicorn(database_name: str, workers: int,
             worker_class: str = "serve") -> Iterator[tuple[str, int, int]]:
    port = free_port()
    env = {**os.environ, "PRORATA_CLOCK": "wall", "PRORATA_LOG_LEVEL": "ERROR",
           "DJANGO_SETTINGS_MODULE": "prorata.settings.base",
           "DATABASE_URL": database_url(database_name)}
    # prorata serve's own command line (the production server), on a free loopback port.
    command = gunicorn_argv(bind=f"127.0.0.1:{port}", workers=workers, timeout=30,
                            graceful_timeout=5, max_requests=10_000_000)
    if worker_class != "serve":
        at = command.index("--worker-class")
        command[at + 1] = worker_class
    server = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/", timeout=2).read()
                break
            except (urllib.error.URLError, OSError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield "127.0.0.1", port, server.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def drive(host: str, port: int, emails: list[str], key: str, *, seconds: float,
          connections: int, conditional: bool, server: int) -> dict:
    """``connections`` threads, each on one keep-alive connection, for ``seconds``: GET random
    members' entitlements (with ``If-None-Match`` = that member's ETag when ``conditional``)."""
    etags: dict[str, str] = {}
    if conditional:
        probe = http.client.HTTPConnection(host, port, timeout=10)
        for email in emails[:2000]:
            probe.request("GET", f"/api/v1/entitlements/{email}",
                          headers={"Authorization": f"Bearer {key}"})
            response = probe.getresponse()
            response.read()
            etags[email] = response.getheader("ETag", "")
        probe.close()
    pool = list(etags) if conditional else emails
    samples: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run(seed: int) -> None:
        chooser = random.Random(seed)
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine: list[float] = []
        seen: dict[int, int] = {}
        while time.monotonic() < stop:
            email = chooser.choice(pool)
            headers = {"Authorization": f"Bearer {key}"}
            if conditional:
                headers["If-None-Match"] = etags[email]
            started = time.perf_counter()
            conn.request("GET", f"/api/v1/entitlements/{email}", headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            seen[response.status] = seen.get(response.status, 0) + 1
        conn.close()
        with lock:
            samples.extend(mine)
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    with cpu_meter(server) as spent:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    return {"client": "python keep-alive", "connections": connections,
            "requests": len(samples), "statuses": statuses, **per_request(spent, len(samples)),
            "requests_per_s": round(len(samples) / elapsed, 1),
            "p50_ms": round(statistics.median(samples), 2),
            "p90_ms": round(percentile(samples, 0.90), 2),
            "p99_ms": round(percentile(samples, 0.99), 2), "max_ms": round(max(samples), 2)}


_WRK_SCRIPT = """
local rows = {}
for line in io.lines(os.getenv("ENTITLEMENT_ROWS")) do
  local email, etag = line:match("([^\t]*)\t?(.*)")
  rows[#rows + 1] = {email, etag}
end
local auth = "Bearer " .. os.getenv("ENTITLEMENT_KEY")
math.randomseed(os.time())
request = function()
  local row = rows[math.random(#rows)]
  local headers = {["Authorization"] = auth}
  if row[2] ~= "" then headers["If-None-Match"] = row[2] end
  return wrk.format("GET", "/api/v1/entitlements/" .. row[1], headers)
end
"""


def etags_of(host: str, port: int, emails: list[str], key: str) -> dict[str, str]:
    probe = http.client.HTTPConnection(host, port, timeout=10)
    etags = {}
    for email in emails:
        probe.request("GET", f"/api/v1/entitlements/{email}",
                      headers={"Authorization": f"Bearer {key}"})
        response = probe.getresponse()
        response.read()
        etags[email] = response.getheader("ETag", "")
        if response.getheader("Connection", "").lower() == "close":
            probe.close()
            probe = http.client.HTTPConnection(host, port, timeout=10)
    probe.close()
    return etags


def drive_wrk(host: str, port: int, emails: list[str], key: str, *, seconds: float,
              connections: int, conditional: bool, server: int) -> dict:
    """Debian's ``wrk`` on core 1 (one thread, ``connections`` connections) over random members
    (the first 2,000 with their ETags when ``conditional``); its latency percentiles."""
    import tempfile

    pool = emails[:2000] if conditional else emails
    etags = etags_of(host, port, pool, key) if conditional else {}
    with tempfile.TemporaryDirectory() as folder:
        rows = Path(folder, "rows.tsv")
        rows.write_text("".join(f"{e}\t{etags.get(e, '')}\n" for e in pool))
        script = Path(folder, "entitlements.lua")
        script.write_text(_WRK_SCRIPT)
        env = {**os.environ, "ENTITLEMENT_ROWS": str(rows), "ENTITLEMENT_KEY": key}
        command = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}",
                   f"-d{max(1, round(seconds))}s", "--latency", "-s", str(script), f"http://{host}:{port}"]
        with cpu_meter(server) as spent:
            out = subprocess.run(command, env=env, capture_output=True, text=True,  # noqa: S603
                                 check=True).stdout

    def ms(text: str) -> float:
        value = float(re.match(r"[\d.]+", text).group(0))
        return value / 1000 if text.endswith("us") else value * 1000 if text.endswith(
            "s") and not text.endswith("ms") else value

    percentiles = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return {"client": "wrk", "connections": connections, "requests": requests,
            **per_request(spent, requests),
            "errors": int(non_2xx.group(1)) if non_2xx else 0,
            "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms(percentiles["50"]), "p90_ms": ms(percentiles["90"]),
            "p99_ms": ms(percentiles["99"])}


def _processes() -> Iterator[tuple[int, int, str, int]]:
    """(pid, parent pid, name, CPU clock ticks: user + system) of every process, from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        yield int(stat.parent.name), int(fields[1]), name, int(fields[11]) + int(fields[12])


def _cpu_ticks(server: int) -> tuple[int, int]:
    """CPU ticks used so far by the server's processes (master and workers) and by every
    PostgreSQL process (the machine's server: its backends serve the workers)."""
    rows = list(_processes())
    web = sum(ticks for pid, parent, _name, ticks in rows if server in (pid, parent))
    postgres = sum(ticks for _pid, _parent, name, ticks in rows if name == "postgres")
    return web, postgres


@contextlib.contextmanager
def cpu_meter(server: int) -> Iterator[dict[str, float]]:
    """The CPU seconds the web server and PostgreSQL spend inside the block (filled on exit)."""
    spent: dict[str, float] = {}
    web, postgres = _cpu_ticks(server)
    yield spent
    web_after, postgres_after = _cpu_ticks(server)
    tick = os.sysconf("SC_CLK_TCK")
    spent["web"], spent["postgres"] = (web_after - web) / tick, (postgres_after - postgres) / tick


def per_request(spent: dict[str, float], requests: int) -> dict[str, int]:
    """CPU µs per request: what a 304 saves shows here even when the load client sets the rate."""
    return {"server_cpu_us_per_request": round(spent["web"] / max(requests, 1) * 1e6),
            "postgres_cpu_us_per_request": round(spent["postgres"] / max(requests, 1) * 1e6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="serve",
                        help="gunicorn's worker class (default: prorata serve's own, "
                             "prorata.common.webworker.InlineWorker; gthread or sync to compare)")
    parser.add_argument("--python-client", action="store_true",
                        help="drive with Python threads even when wrk is installed")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database (the target is for PostgreSQL).")
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        started = time.perf_counter()
        emails = load(args.accounts, args.members)
        _row, key = entitlement_key_create(name="benchmark", actor=None)
        loaded = round(time.perf_counter() - started, 1)
        connection.close()
        with gunicorn(name, args.workers, args.worker_class) as (host, port, server):
            for label, conditional in (("entitlement_200", False), ("entitlement_304", True)):
                runner = drive_wrk if shutil.which("wrk") and not args.python_client else drive
                results = [runner(host, port, emails, key, seconds=args.seconds,
                                  connections=args.connections, conditional=conditional,
                                  server=server)
                           for _ in range(args.repeat)]
                best = max(results, key=lambda r: r["requests_per_s"])
                print(json.dumps({
                    "benchmark": "entitlements", "measure": label, "accounts": args.accounts,
                    "members": args.accounts * args.members, "load_seconds": loaded,
                    "server": f"gunicorn {args.workers} {args.worker_class} workers",
                    "python": platform.python_version(),
                    "load_average": round(os.getloadavg()[0], 2), **best,
                    "every_run_requests_per_s": [r["requests_per_s"] for r in results]}),
                    flush=True)
    finally:
        connection.close()
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
