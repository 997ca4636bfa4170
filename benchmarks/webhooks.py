"""Webhook fan-out: N events to 3 endpoints, delivered by one worker to a local receiver.

    .venv/bin/python benchmarks/webhooks.py --events 100000 --database postgres
    .venv/bin/python benchmarks/webhooks.py --events 10000 --database sqlite

Creates a fresh database (PostgreSQL: ``prorata_hd_bench_webhooks`` on the server of
``DATABASE_URL``, default 127.0.0.1:5432; SQLite: a file in a temporary directory), migrates it,
registers 3 endpoints listening to ``invoice.paid`` on a receiver in a child process
(127.0.0.1, asyncio, HTTP/1.1 kept alive, 204 for each delivery after checking its signature
with the endpoint's secret), and writes N events through the set-based road
(``WebhookBatch.save(fresh=True)``, 5,000 per transaction, as the billing run does): 3 N
deliveries. Then one worker process (this one) runs ``webhooks_deliver`` — the
``deliver-webhooks`` job, one thread and kept-alive connection per endpoint — until nothing is
due, and is measured from inside: seconds, deliveries/s, and its resident memory sampled every
0.25 s (start, peak, end: flat means the peak stays near the start whatever N).

Prints one JSON line: events, deliveries, write_s, deliver_s, deliveries_per_s, rss_mb_start,
rss_mb_peak, rss_mb_end, received (by the receiver), distinct (event, endpoint) pairs received,
bad_signatures, loadavg before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 6, 1, tzinfo=UTC)


# --- the receiver (a child process) ---------------------------------------------------------------

def receiver(port: int, secrets: dict[str, str]) -> None:
    """Serve until killed: POST /<path> checks the signature with ``secrets[path]`` and answers
    204; GET /stats answers the counts as JSON."""
    received = 0
    bad = 0
    seen: set[tuple[str, str]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received, bad
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET":
                    answer = json.dumps({"received": received, "distinct": len(seen),
                                         "bad_signatures": bad}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer)
                                 + answer)
                    await writer.drain()
                    continue
                name = path.strip("/")
                parts = dict(part.split("=", 1) for part in
                             headers.get("prorata-signature", "").split(","))
                expected = hmac.new(secrets[name].encode(), parts["t"].encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, parts.get("v1", "")):
                    bad += 1
                received += 1
                seen.add((name, headers.get("prorata-event-id", "")))
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the run ----------------------------------------------------------------------------------------

def _database_url(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    return base.rsplit("/", 1)[0] + "/prorata_hd_bench_webhooks"


def _recreate_postgres(url: str) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(server.replace("postgres://", "postgresql://") + "/postgres",
                         autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--receiver", help=argparse.SUPPRESS)  # "port:json secrets" (child)
    args = parser.parse_args()
    if args.receiver:
        port, _, secrets = args.receiver.partition(":")
        receiver(int(port), json.loads(secrets))
        return

    workdir = Path(tempfile.mkdtemp(prefix="prorata-webhooks-bench-"))
    url = _database_url(args.database, workdir)
    if args.database == "postgres":
        _recreate_postgres(url)
    os.environ.update({"DATABASE_URL": url, "PRORATA_CLOCK": "movable",
                       "PRORATA_LOG_LEVEL": "ERROR", "PRORATA_VAR_DIR": str(workdir)})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from prorata.common.clock import clock_set
    from prorata.webhooks.delivery import webhooks_deliver
    from prorata.webhooks.events import WebhookBatch
    from prorata.webhooks.models import WebhookDelivery, WebhookEndpoint
    from prorata.webhooks.signing import new_secret

    call_command("migrate", verbosity=0)
    clock_set(instant=AT)
    port = _free_port()
    secrets = {f"endpoint-{index}": new_secret() for index in range(3)}
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, __file__, "--receiver", f"{port}:{json.dumps(secrets)}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for name, secret in secrets.items():
            WebhookEndpoint.objects.create(url=f"http://127.0.0.1:{port}/{name}",
                                           event_types=["invoice.paid"], secret=secret,
                                           created_at=AT)
        started = time.perf_counter()
        chunk = 5_000
        for first in range(0, args.events, chunk):
            with transaction.atomic():
                batch = WebhookBatch()
                for index in range(first, min(first + chunk, args.events)):
                    batch.add("invoice.paid", key=f"invoice.paid:{index}", at=AT, data={
                        "object": "invoice", "id": index, "number": f"2026-{index:06d}",
                        "account_id": index, "status": "paid", "currency": "EUR",
                        "total": 4990, "amount_due": 0, "amount_paid": 4990,
                        "issued_at": "2026-06-01T00:00:00Z"})
                batch.save(fresh=True)
        write_s = time.perf_counter() - started
        deliveries = WebhookDelivery.objects.count()
        connection.close()
        for _ in range(100):  # the receiver is up
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)

        load_before = os.getloadavg()
        samples = [_rss_mb()]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.25):
                samples.append(_rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        sent = 0
        while True:
            counts = webhooks_deliver(batch_size=args.batch_size, threads=3, run_seconds=3600)
            sent += counts["sent"]
            if not any(counts.values()):
                break
        deliver_s = time.perf_counter() - started
        done.set()
        sampler.join()
        samples.append(_rss_mb())
        stats = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/stats", timeout=5).read())
        pending = WebhookDelivery.objects.exclude(status="succeeded").count()
    finally:
        child.kill()
        child.wait()
    print(json.dumps({
        "database": args.database, "events": args.events, "endpoints": 3,
        "deliveries": deliveries, "sent": sent, "not_succeeded": pending,
        "write_s": round(write_s, 2), "deliver_s": round(deliver_s, 2),
        "deliveries_per_s": round(sent / deliver_s), "rss_mb_start": round(samples[0], 1),
        "rss_mb_peak": round(max(samples), 1), "rss_mb_end": round(samples[-1], 1),
        **stats, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "python": sys.version.split()[0], "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }))


if __name__ == "__main__":
    main()
