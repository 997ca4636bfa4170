"""The billing center over HTTP, on PostgreSQL: the order summary (quote) and the transactions
pages, served by gunicorn with ONE sync worker pinned to one core, driven by a load client on the
other core.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/prorata_bench \
        .venv/bin/python benchmarks/http_billing.py [--seconds 5] [--repeat 3] [--entries 100000]

It creates a throwaway test database next to ``DATABASE_URL``'s (``test_<name>``), migrates it, sets
up an account with 100,000 ledger entries and a paid subscription (the data of
:mod:`benchmarks.billing_center`), starts ``gunicorn prorata.wsgi -w 1 -k sync`` on 127.0.0.1 at a
free port (``taskset -c 0`` when available), and measures each endpoint ``--repeat`` times for
``--seconds`` (the best run is printed, to discount other load on the machine) with
Debian's ``wrk`` (``taskset -c 1``; a small Lua script sends the bearer token and the POST body)
or, without ``wrk``, a bounded Python client. Loopback only; it stops the server and drops the
database itself. Prints one JSON line per measurement.

Issue 4's targets: ≥ 500 quotes/s on one core with p99 < 50 ms; any transactions page < 20 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
os.environ["PRORATA_CLOCK"] = "wall"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from billing_center import buy, customer, make_history, percentile  # noqa: E402
from prorata.api.services import api_token_create  # noqa: E402
from prorata.catalog.services import catalog_load_demo  # noqa: E402

VENV_BIN = Path(sys.executable).parent
QUOTE_BODY = {"product_code": "webinar", "plan_code": "pro", "cycle_code": "annual",
              "quantity": 2}

WRK_SCRIPT = """
wrk.method = %(method)s
wrk.body = %(body)s
wrk.headers["Authorization"] = %(authorization)s
wrk.headers["Cookie"] = %(cookie)s
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
                 + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    '{"requests": %%d, "errors": %%d, "requests_per_s": %%.1f, "p50_ms": %%.2f, ' ..
    '"p90_ms": %%.2f, "p99_ms": %%.2f, "max_ms": %%.2f}\\n',
    summary.requests, errors, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def lua(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal for these values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(core: int) -> list[str]:
    """``taskset -c <core>`` when the machine has it and more than one core."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core)]
    return []


@contextlib.contextmanager
def gunicorn(database_name: str, threads: int = 1) -> Iterator[str]:
    """One worker process serving the project on a free loopback port; stopped on exit. With
    ``threads`` > 1 it is a ``gthread`` worker: still one process on one core, whose threads
    overlap one request's database round trips with another's Python."""
    port = free_port()
    env = {**os.environ, "PRORATA_CLOCK": "wall", "PRORATA_LOG_LEVEL": "ERROR",
           "DJANGO_SETTINGS_MODULE": "prorata.settings.base",
           "DATABASE_URL": database_url(database_name)}
    command = [*pinned(0), str(VENV_BIN / "gunicorn"), "prorata.wsgi:application",
               "--workers", "1", "--bind", f"127.0.0.1:{port}",
               *(["--worker-class", "gthread", "--threads", str(threads)] if threads > 1
                 else ["--worker-class", "sync"]),
               "--backlog", "64", "--log-level", "warning", "--chdir", str(ROOT)]
    server = subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/v1/", timeout=2).read()  # noqa: S310
                break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def database_url(name: str) -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    if host.startswith("/"):  # PostgreSQL's Unix socket directory, as a URL's host
        host = quote(host, safe="")
    return f"postgres://{user}{password}@{host}:{db.get('PORT') or 5432}/{name}"


def measure(base: str, path: str, *, seconds: float, connections: int, token: str = "",
            cookie: str = "", body: dict | None = None) -> dict:
    """Drive ``path`` for ``seconds`` with ``connections`` connections; latency percentiles."""
    url = base + path
    method = "POST" if body is not None else "GET"
    payload = json.dumps(body) if body is not None else ""
    check = request(url, method, payload, token, cookie)
    if check[0] >= 300:
        return {"skipped": f"{method} {path} answered {check[0]}: {check[1][:200]!r}"}
    if shutil.which("wrk"):
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRK_SCRIPT % {
                "method": lua(method), "body": lua(payload) if payload else "nil",
                "authorization": lua(f"Bearer {token}") if token else "nil",
                "cookie": lua(cookie) if cookie else "nil"})
        try:
            output = subprocess.run(  # noqa: S603
                [*pinned(1), "wrk", "--threads", "1", "--connections", str(connections),
                 "--duration", f"{int(seconds)}s", "--timeout", "5s", "--script", script.name,
                 url],
                check=True, capture_output=True, text=True, timeout=seconds + 60).stdout
        finally:
            os.unlink(script.name)
        result = json.loads(output.strip().splitlines()[-1])
        return {"client": "wrk", "connections": connections, **result}
    return python_client(url, method, payload, token, cookie, seconds, connections)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect (to the sign-in page, say) is an answer to report, not to follow."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def request(url: str, method: str, payload: str, token: str, cookie: str) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = cookie
    data = payload.encode() if payload else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with _opener.open(req, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def python_client(url: str, method: str, payload: str, token: str, cookie: str, seconds: float,
                  connections: int) -> dict:
    """The fallback load client: ``connections`` threads, each with at most 20,000 requests,
    for at most ``seconds`` (new connection per request: slower than wrk, so a lower bound)."""
    samples: list[float] = []
    errors = [0]
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def run() -> None:
        for _ in range(20_000):
            if time.monotonic() > stop:
                return
            started = time.perf_counter()
            status, _ = request(url, method, payload, token, cookie)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                samples.append(elapsed)
                errors[0] += status >= 400

    threads = [threading.Thread(target=run) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"client": "python", "connections": connections, "requests": len(samples),
            "errors": errors[0], "requests_per_s": round(len(samples) / elapsed, 1),
            "p50_ms": round(statistics.median(samples), 2),
            "p90_ms": round(percentile(samples, 0.90), 2),
            "p99_ms": round(percentile(samples, 0.99), 2), "max_ms": round(max(samples), 2)}


def setup(entries: int) -> dict:
    """The account: Standard annual × 2 paid by card (so a quote prices an upgrade with a
    credit), ``entries`` ledger rows, an API token and a signed-in session of its billing contact."""
    catalog_load_demo()
    account, user = customer("Http")
    first = buy(account, user, "standard", "annual", 2, "first")
    cursors = make_history(account, entries, document=first.invoice)
    _token, secret = api_token_create(user=user, name="benchmark")
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return {"account": account.pk, "token": secret, "cookie": cookie, "cursors": cursors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement; the best (highest requests/s) is printed")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of the one worker process (1: a sync worker)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database (the targets are for PostgreSQL).")
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        world = setup(args.entries)
        connection.close()  # the server has the database to itself
        account, token, cookie = world["account"], world["token"], world["cookie"]
        api = f"/api/v1/accounts/{account}/transactions"
        web = f"/billing/{account}/transactions/"
        half, last = (world["cursors"]["half"], world["cursors"]["last"])
        runs = [
            ("quote", f"/api/v1/accounts/{account}/quote", {"body": QUOTE_BODY}, 1),
            ("quote", f"/api/v1/accounts/{account}/quote", {"body": QUOTE_BODY}, 4),
            ("transactions_api_first", api, {}, 1),
            ("transactions_api_half", f"{api}?cursor={quote(half)}", {}, 1),
            ("transactions_api_last", f"{api}?cursor={quote(last)}", {}, 1),
            ("transactions_api_refunds_half", f"{api}?kind=refund&cursor={quote(half)}", {}, 1),
            ("transactions_web_first", web, {"cookie": cookie}, 1),
            ("transactions_web_last", f"{web}?cursor={quote(last)}", {"cookie": cookie}, 1),
        ]
        with gunicorn(name, args.threads) as base:
            for label, path, options, connections in runs:
                auth = {} if "cookie" in options else {"token": token}
                results = [measure(base, path, seconds=args.seconds, connections=connections,
                                   **auth, **options) for _ in range(args.repeat)]
                result = max(results, key=lambda r: r.get("requests_per_s", 0))
                print(json.dumps({"benchmark": "http_billing", "measure": label,
                                  "entries": args.entries,
                                  "server": f"gunicorn 1 worker, {args.threads} thread(s)",
                                  "python": platform.python_version(),
                                  "load_average": round(os.getloadavg()[0], 2), **result}),
                      flush=True)
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
