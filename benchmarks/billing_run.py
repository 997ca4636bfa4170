"""The billing run at scale: N due subscriptions renewed, then (optionally) charged.

    .venv/bin/python benchmarks/billing_run.py --subscriptions 100000 --database postgres
    .venv/bin/python benchmarks/billing_run.py --subscriptions 10000 --database sqlite --charge

Creates a fresh database (PostgreSQL: ``prorata_bench_run`` on the server of ``DATABASE_URL``,
default 127.0.0.1:5432; SQLite: a file under a temporary directory), migrates it, loads the demo
catalog and N accounts with one due subscription each — mixed plans, cycles, currencies and tax
cases (US, France, Germany with and without a VAT number, Japan), 5 % with some credit, 2 % of cards
declined —, then runs ``prorata bill-run`` in a child process and measures it from the outside.

Prints one JSON line: renewals, seconds, renewals_per_s, peak_rss_mb (the largest process's) and
peak_rss_tree_mb (the run and all its worker processes together, sampled every 0.2 s), plus the
charge step's figures with ``--charge`` (the built-in sandbox gateway writes rows of its own for
every charge, so it measures the step's overhead, not a real provider's latency).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_AT = datetime(2026, 6, 1, tzinfo=UTC)
#: country, currency, VAT number (valid, so reverse charge applies when not the seller's country)
TAX_CASES = [
    ("US", "USD", ""), ("FR", "EUR", ""), ("DE", "EUR", ""), ("DE", "EUR", "DE136695976"),
    ("FR", "EUR", "FR40303265045"), ("JP", "USD", ""),
]


def _database_url(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.sqlite3'}"
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    return base.rsplit("/", 1)[0] + "/prorata_bench_run"


def _recreate_postgres(url: str) -> None:
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(server.replace("postgres://", "postgresql://") + "/postgres",
                         autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["PRORATA_CLOCK"] = "movable"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prorata.settings.base")
    import django

    django.setup()


def _rows(n: int, seed: int = 7, credit_share: float = 0.05):
    """Yield (account, subscription, sandbox card, payment method, balance) rows for N accounts."""
    from prorata.catalog.models import BillingCycle, Plan, Price, Product
    from prorata_core.periods import shift_months

    rng = random.Random(seed)
    product = Product.objects.get(code="webinar").pk
    plans = {plan.code: plan.pk for plan in Plan.objects.all()}
    cycles = {cycle.code: (cycle.pk, cycle.months) for cycle in BillingCycle.objects.all()}
    prices = {
        (price.plan.code, price.cycle.code, price.currency): price.unit_amount
        for price in Price.objects.select_related("plan", "cycle")
    }
    choices = [("lite", "monthly"), ("lite", "annual"), ("standard", "monthly"),
               ("standard", "annual"), ("pro", "monthly"), ("pro", "annual")]
    for index in range(n):
        country, currency, vat = TAX_CASES[index % len(TAX_CASES)]
        plan, cycle = choices[rng.randrange(len(choices))]
        cycle_pk, months = cycles[cycle]
        quantity = rng.choice((1, 1, 2, 3, 5, 10, 25))
        unit = prices[(plan, cycle, currency)]
        start = shift_months(RUN_AT - timedelta(minutes=rng.randrange(1, 24 * 60)), -months)
        end = shift_months(start, months)  # the period that ends just before the run
        declined = rng.random() < 0.02
        yield (
            (f"Customer {index}", country, currency, vat, index),
            (product, plans[plan], cycle_pk, quantity, currency, unit, start, end, unit * quantity),
            f"tok_bench_{index}", "decline" if declined else "succeed",
            rng.random() < credit_share,
        )


def _load(n: int, vendor: str, credit_share: float = 0.05) -> None:
    """Load the catalog and N due subscriptions. ``credit_share`` of the accounts get 50.00 of
    credit from a bare ledger row (no credit note behind it: set 0 where the books are checked)."""
    from django.db import connection, transaction

    from prorata.catalog.services import catalog_load_demo
    from prorata.common.clock import clock_set

    clock_set(instant=RUN_AT)
    catalog_load_demo()
    batch = 20_000
    rows = _rows(n, credit_share=credit_share)
    done = 0
    while done < n:
        chunk = [next(rows) for _ in range(min(batch, n - done))]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM accounts_account")
            first_id = cursor.fetchone()[0] + 1
            ids = range(first_id, first_id + len(chunk))
            accounts = [
                (pk, name, country, currency, "1 Bench Street", vat, "self_service", 30, "en",
                 RUN_AT)
                for pk, ((name, country, currency, vat, _), *_rest) in zip(ids, chunk, strict=True)
            ]
            subscriptions = [
                (pk, product, plan, cycle, quantity, currency, unit, "active", True, start, start,
                 end, invoiced, 1, start)
                for pk, (_, (product, plan, cycle, quantity, currency, unit, start, end, invoiced),
                         *_rest) in zip(ids, chunk, strict=True)
            ]
            cards = [(token, "Visa", "4242", 12, 2030, behaviour, RUN_AT)
                     for _, _, token, behaviour, _ in chunk]
            methods = [(pk, token, "Visa", "4242", 12, 2030, True, RUN_AT)
                       for pk, (_, _, token, _, _) in zip(ids, chunk, strict=True)]
            # Every account has its balance row, as after the purchase a month ago (0, or the
            # credit below): a renewal updates it, it does not create it.
            balances = [(pk, account[2], 5000 if credit else 0) for pk, (account, _, _, _, credit)
                        in zip(ids, chunk, strict=True)]
            statements = [
                ("accounts_account (id, name, country, currency, billing_address, vat_number, "
                 "billing_mode, payment_terms_days, language, created_at)", accounts),
                ("subscriptions_subscription (account_id, product_id, plan_id, cycle_id, quantity, "
                 "currency, unit_amount, status, auto_renew, anchor, period_start, period_end, "
                 "invoiced_amount, version, created_at)", subscriptions),
                ("payments_sandboxcard (token, brand, last4, exp_month, exp_year, behaviour, "
                 "created_at)", cards),
                ("payments_paymentmethod (account_id, token, brand, last4, exp_month, exp_year, "
                 "is_default, created_at)", methods),
                ("billing_accountbalance (account_id, currency, balance)", balances),
            ]
            for table, values in statements:
                if not values:
                    continue
                if vendor == "postgresql":
                    with cursor.cursor.copy(f"COPY {table} FROM STDIN") as copy:
                        for value in values:
                            copy.write_row(value)
                else:
                    marks = ", ".join(["%s"] * len(values[0]))
                    cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", values)  # noqa: S608
            # A balance of credit must come from the ledger: a credit note would be the source in
            # real life; here one ledger row per credited account keeps the books consistent.
            credited = [(pk, currency, RUN_AT, "credit_note", amount, "benchmark credit")
                        for pk, currency, amount in balances if amount]
            if credited:
                cursor.executemany(
                    "INSERT INTO billing_ledgerentry (account_id, currency, at, kind, amount, memo) "
                    "VALUES (%s, %s, %s, %s, %s, %s)", credited)
        done += len(chunk)
    if vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence('accounts_account', 'id'), "
                           "(SELECT MAX(id) FROM accounts_account))")


def _settle(vendor: str) -> None:
    """Leave the loaded database as a month of life would have: the due rows were written long
    before the run, so they are vacuumed (hint bits, visibility map), analysed and checkpointed.
    Without this the run would pay for the load's own dirty pages and first-read hint bits.
    Outside any transaction (VACUUM refuses one)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")
            cursor.execute("CHECKPOINT")
        else:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class TreeMemory(threading.Thread):
    """Samples, every 0.2 s, the resident memory of processes ``roots`` and all their descendants
    (the run's worker processes, the Celery workers), summed: ``peak_mb`` is the largest sum."""

    def __init__(self, roots: list[int]) -> None:
        super().__init__(daemon=True)
        self.roots, self.peak_kb, self.done = set(roots), 0, threading.Event()

    @staticmethod
    def _table() -> dict[int, tuple[int, int]]:
        """pid → (parent pid, resident kB) for every process we can read."""
        table = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            rss = int(fields.get("VmRSS", "0 kB").split()[0])
            table[int(entry.name)] = (int(fields["PPid"]), rss)
        return table

    def run(self) -> None:
        while not self.done.wait(0.2):
            table = self._table()
            tree, grew = set(self.roots), True
            while grew:
                found = {pid for pid, (parent, _) in table.items() if parent in tree} - tree
                tree |= found
                grew = bool(found)
            self.peak_kb = max(self.peak_kb, sum(table[pid][1] for pid in tree if pid in table))

    @property
    def peak_mb(self) -> float:
        return round(self.peak_kb / 1024, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="subscriptions per transaction (default: the command's)")
    parser.add_argument("--charge", action="store_true", help="also run the charge step")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="bill-run --workers N (default: the command's, one per core on "
                             "PostgreSQL)")
    parser.add_argument("--celery-workers", type=int, default=0, metavar="N",
                        help="run the invoicing as N partitions on N Celery worker processes "
                             "(broker: PRORATA_BROKER_URL, default Redis on 127.0.0.1:6379/6)")
    parser.add_argument("--server", choices=["machine", "tuned"], default="machine",
                        help="PostgreSQL: the server of DATABASE_URL as it is (machine), or a "
                             "private one on loopback configured for the run (tuned: "
                             "benchmarks/pgserver.py)")
    args = parser.parse_args()
    if args.server == "tuned" and args.database == "postgres":
        from pgserver import tuned_server

        with tuned_server() as url:
            os.environ["DATABASE_URL"] = url
            _bench(args)
        return
    _bench(args)


def _bench(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="prorata-bench-"))
    url = _database_url(args.database, workdir)
    if args.database == "postgres":
        _recreate_postgres(url)
    _setup_django(url)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _load(args.subscriptions, connection.vendor)
    _settle(connection.vendor)
    load_seconds = time.perf_counter() - started
    connection.close()

    env = {**os.environ, "DATABASE_URL": url, "PRORATA_CLOCK": "movable",
           "PRORATA_VAR_DIR": str(workdir)}
    from prorata.jobs.billing_run import CHUNK_SIZE

    chunk_size = args.chunk_size or CHUNK_SIZE
    command = [sys.executable, "-m", "prorata.cli", "bill-run", "--no-charge",
               "--chunk-size", str(chunk_size)]
    if args.workers is not None:
        command += ["--workers", str(args.workers)]
    workers: list[subprocess.Popen[bytes]] = []
    if args.celery_workers:
        env["PRORATA_BROKER_URL"] = os.environ.get("PRORATA_BROKER_URL",
                                                   "redis://127.0.0.1:6379/6")
        env["PRORATA_CELERY_QUEUE"] = f"prorata-bench-{os.getpid()}"
        workers = [
            subprocess.Popen(  # noqa: S603 - our own workers, on loopback
                [sys.executable, "-m", "celery", "-A", "prorata.jobs.celery", "worker",
                 "--concurrency", "1", "--pool", "solo", "--loglevel", "WARNING",
                 "-Q", env["PRORATA_CELERY_QUEUE"], "-n", f"bench{index}@%h",
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for index in range(args.celery_workers)
        ]
        time.sleep(3)  # the workers start (Django set-up) before the clock starts
        command += ["--partitions", str(args.celery_workers)]
    started = time.perf_counter()  # benchmarks time the run from outside; no project clock here
    try:
        run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)  # noqa: S603
        memory = TreeMemory([run.pid, *(worker.pid for worker in workers)])
        memory.start()
        output, _ = run.communicate()
        seconds = time.perf_counter() - started
        memory.done.set()
        memory.join()
        if run.returncode:
            raise subprocess.CalledProcessError(run.returncode, command)
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=30)
    stats = json.loads(output.strip().splitlines()[-1])
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = {
        "benchmark": "billing_run", "database": args.database,
        "subscriptions": args.subscriptions, "renewals": stats["renewed"],
        "seconds": round(seconds, 2), "renewals_per_s": round(stats["renewed"] / seconds),
        "peak_rss_mb": round(peak_kb / 1024, 1), "peak_rss_tree_mb": memory.peak_mb,
        "load_seconds": round(load_seconds, 1),
        "chunk_size": chunk_size, "celery_workers": args.celery_workers,
        "server": args.server if args.database == "postgres" else "sqlite",
        "workers": 1 if args.celery_workers or args.database == "sqlite" else (
            args.workers or min(os.cpu_count() or 1, 4)),
    }
    if args.charge:
        command = [sys.executable, "-m", "prorata.cli", "bill-run"]
        started = time.perf_counter()
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True,  # noqa: S603
                                cwd=ROOT).stdout
        charge_seconds = time.perf_counter() - started
        charged = json.loads(output.strip().splitlines()[-1])
        result |= {"charged": charged["charged"], "declined": charged["declined"],
                   "charge_seconds": round(charge_seconds, 2),
                   "charges_per_s": round((charged["charged"] + charged["declined"])
                                          / charge_seconds)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
