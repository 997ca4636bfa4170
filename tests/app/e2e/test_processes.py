"""End to end on PostgreSQL (issue 15): ``prorata serve`` and ``prorata worker`` as real processes
on loopback, an SMTP sink (aiosmtpd) as the mail server. An order placed over HTTP is followed,
within a bounded wait, by its receipt at the sink; ``/readyz`` is green and ``/metrics`` counts the
request and the e-mail. A worker killed mid-delivery leaves nothing undelivered after its restart.
The same with Celery and Redis: beat schedules the delivery, a Celery worker sends it.

Waits are bounded polls of an outcome (never a fixed sleep that a loaded machine could outlast).
"""

from __future__ import annotations

import email
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import connection, transaction

from prorata.catalog.services import catalog_load_demo
from prorata.common.clock import clock_advance
from prorata.notifications.models import OutboxMessage, OutboxStatus
from prorata.notifications.outbox import outbox_enqueue
from prorata_core.periods import utc
from tests.app.api.billing_support import acme_with_standard_annual, item
from tests.app.jobs.support import test_database_url

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "e2e-metrics-token"
#: Seconds any one awaited outcome may take on a loaded 2-core machine.
WAIT = 120

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="the processes share the test database: it needs a server"),
]


class Sink:
    """An SMTP server on loopback that keeps what it receives; ``delay`` seconds per message."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            time.sleep(self.delay)  # a slow mail server: a delivery is in progress for a while
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"

    def ids(self) -> list[str]:
        with self.lock:
            return [str(message["Message-ID"]) for message in self.messages]


@contextmanager
def smtp_sink(delay: float = 0.0) -> Iterator[tuple[Sink, int]]:
    sink = Sink(delay)
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def until(outcome: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = outcome()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def environment(tmp_path: Path, smtp_port: int, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PRORATA_", "PROMETHEUS_"))}
    return env | {
        "DJANGO_SETTINGS_MODULE": "prorata.settings.base", "DATABASE_URL": test_database_url(),
        "PRORATA_CLOCK": "movable", "PRORATA_VAR_DIR": str(tmp_path),
        "PRORATA_ALLOWED_HOSTS": "127.0.0.1", "PRORATA_SMTP_HOST": "127.0.0.1",
        "PRORATA_SMTP_PORT": str(smtp_port), "PRORATA_SMTP_TLS": "0",
        "PRORATA_MAIL_EVERY": "1", "PRORATA_METRICS_TOKEN": TOKEN,
        "PRORATA_METRICS_DIR": str(tmp_path / "metrics"), "PRORATA_LOG_FORMAT": "json",
    } | extra


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=log.open("ab"),  # noqa: S603
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


PRORATA = [sys.executable, "-m", "prorata.cli"]


def http(method: str, url: str, body: Any = None, **headers: str) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={  # noqa: S310
        **({"Content-Type": "application/json"} if data else {}), **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def metric(text: str, line_start: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(line_start)]
    return sum(values)


@pytest.fixture
def acme(clock, tmp_path):
    catalog_load_demo()
    account, alice, _api = acme_with_standard_annual(clock)
    clock.set(utc(2026, 4, 1))
    from prorata.api.services import api_token_create

    _token, secret = api_token_create(user=alice, name="e2e")
    # The purchase's own receipt is not what this test waits for: it is sent already.
    OutboxMessage.objects.update(status=OutboxStatus.SENT)
    return account, secret


def test_an_order_over_http_is_followed_by_its_receipt_with_readyz_green_and_metrics_counting(
        acme, tmp_path):
    account, secret = acme
    with smtp_sink() as (sink, smtp_port):
        env = environment(tmp_path, smtp_port)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        web = start([*PRORATA, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"], env,
                    tmp_path / "web.log")
        worker = start([*PRORATA, "worker"], env, tmp_path / "worker.log")
        try:
            until(lambda: http("GET", base + "/healthz")[0] == 200, "the server answers")
            auth = {"Authorization": f"Bearer {secret}"}
            status, quote = http("POST", f"{base}/api/v1/accounts/{account.pk}/quote",
                                 item("pro", "annual", 2), **auth)
            assert status == 200, quote
            # The card goes to the gateway's own endpoint, as the card form sends it; the
            # checkout gets only its single-use token.
            status, token = http("POST", f"{base}/sandbox-gateway/v1/tokens",
                                 {"number": "4242 4242 4242 4242", "expiry": "12/30",
                                  "cvc": "123"})
            assert status == 201, token
            status, answer = http(
                "POST", f"{base}/api/v1/accounts/{account.pk}/checkout",
                {"items": [item("pro", "annual", 2)],
                 "expected": [json.loads(quote)["fingerprint"]],
                 "card_token": json.loads(token)["token"]},
                **auth, **{"Idempotency-Key": f"e2e-{uuid.uuid4().hex}", "X-Request-ID": "e2e-1"})
            assert status == 201, answer
            receipt = until(lambda: [m for m in sink.messages if "receipt" in str(m["Subject"])],
                            "the receipt at the SMTP sink")[0]
            assert receipt["To"] == "alice@acme.example"
            assert http("GET", base + "/readyz") == (200, b'{"status": "ok"}')
            text = until(lambda: (lambda t: t if metric(
                t, 'prorata_job_items_total{item="sent",job="deliver-mail"}') >= 1 else "")(
                http("GET", base + "/metrics", Authorization=f"Bearer {TOKEN}")[1].decode()),
                "the worker's e-mail in the metrics")
            assert metric(text, 'prorata_http_requests_total{method="POST",route="/api/v1/'
                                'accounts/<account_id>/checkout",status="201"}') == 1
            assert metric(text, 'prorata_outbox_messages{status="sent"}') >= 2
        finally:
            stop(worker)
            stop(web)
        log = (tmp_path / "web.log").read_text()
        assert '"request_id": "e2e-1"' in log  # the JSON request line, with the caller's id
        assert "4242" not in log and "4242" not in (tmp_path / "worker.log").read_text()


def _queue(count: int) -> list[str]:
    keys = [f"e2e:kill:{n}" for n in range(count)]
    with transaction.atomic():
        for key in keys:
            outbox_enqueue(to=f"{key.replace(':', '-')}@example.com", template="receipt",
                           language="en", dedupe_key=key,
                           context={"kind": "purchase", "document_number": key,
                                    "amount_paid": {"amount": 100, "currency": "EUR"}})
    return keys


def test_a_worker_killed_mid_delivery_leaves_every_e_mail_delivered_after_its_restart(
        clock, tmp_path):
    """At least once, and once as the receiver sees it: the one e-mail in flight at the kill may
    arrive twice, with the same Message-ID (derived from its dedupe key) for the receiver to drop."""
    keys = _queue(20)
    with smtp_sink(delay=0.3) as (sink, smtp_port):
        env = environment(tmp_path, smtp_port)
        worker = start([*PRORATA, "worker", "--only", "deliver-mail"], env, tmp_path / "w1.log")
        try:
            until(lambda: len(sink.ids()) >= 3, "the first deliveries")
        finally:
            stop(worker, signal.SIGKILL)  # mid-delivery: no chance to finish or mark anything
        delivered_before_restart = len(set(sink.ids()))
        assert delivered_before_restart < len(keys)  # the kill did interrupt the delivery
        # The leased messages are due again after the first retry delay of the project clock.
        clock_advance(duration=timedelta(minutes=2))
        worker = start([*PRORATA, "worker", "--only", "deliver-mail"], env, tmp_path / "w2.log")
        try:
            until(lambda: not OutboxMessage.objects.exclude(status=OutboxStatus.SENT).exists(),
                  "every message sent")
        finally:
            stop(worker)
        ids = sink.ids()
    from prorata.notifications.outbox import message_id

    assert set(ids) == {message_id(key) for key in keys}  # every one delivered
    assert len(ids) - len(set(ids)) <= 1  # at most the one in flight twice, same Message-ID


@pytest.mark.skipif(not os.environ.get("PRORATA_E2E_REDIS", "redis://127.0.0.1:6379/8"),
                    reason="no Redis")
def test_with_celery_and_redis_beat_schedules_the_delivery_and_a_worker_sends_it(
        clock, tmp_path):
    redis_url = os.environ.get("PRORATA_E2E_REDIS", "redis://127.0.0.1:6379/8")
    keys = _queue(3)
    with smtp_sink() as (sink, smtp_port):
        queue = f"prorata-e2e-{uuid.uuid4().hex[:8]}"
        env = environment(tmp_path, smtp_port, PRORATA_BROKER_URL=redis_url,
                          PRORATA_CELERY_QUEUE=queue)
        celery = [sys.executable, "-m", "celery", "-A", "prorata.jobs.celery"]
        worker = start([*celery, "worker", "--concurrency", "1", "--pool", "solo", "-Q", queue,
                        "--without-gossip", "--without-mingle", "--without-heartbeat"],
                       env, tmp_path / "celery-worker.log")
        beat = start([*celery, "beat", "--schedule", str(tmp_path / "beat-schedule")], env,
                     tmp_path / "celery-beat.log")
        refused = subprocess.run([*PRORATA, "worker"], env=env, cwd=ROOT, capture_output=True,  # noqa: S603
                                 text=True, timeout=120, check=False)
        try:
            until(lambda: len(set(sink.ids())) == len(keys), "the e-mails sent through Celery")
        finally:
            stop(beat)
            stop(worker)
    assert refused.returncode != 0 and "Celery beat schedules the jobs" in refused.stderr
    assert not OutboxMessage.objects.exclude(status=OutboxStatus.SENT).exists()
