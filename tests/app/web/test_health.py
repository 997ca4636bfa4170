"""Health, readiness, metrics and request logs (issue 15): what an operator's tools read."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from pythonjsonlogger.json import JsonFormatter

from prorata.common import requestlog
from prorata.common.requestlog import ContextFilter
from prorata.notifications.outbox import outbox_deliver, outbox_enqueue
from prorata_core.periods import utc
from tests.app.web.billing_support import acme_world

TOKEN = "metrics-token-for-the-tests"


def test_healthz_answers_without_the_database_or_a_cookie():
    response = Client().get("/healthz")  # not a database test: a query would raise
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert not response.cookies
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_green_on_a_migrated_database_with_nothing_waiting(clock):
    response = Client().get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def _queue(key: str) -> None:
    with transaction.atomic():
        outbox_enqueue(to="alice@bistro.example", template="receipt", language="en",
                       dedupe_key=key, context={"kind": "purchase", "document_number": "2026-1",
                                                "amount_paid": {"amount": 100, "currency": "EUR"}})


@pytest.mark.django_db
def test_readyz_fails_while_an_e_mail_waits_too_long_and_tells_only_the_log(clock, caplog):
    _queue("receipt:stuck:1")
    clock.advance(timedelta(seconds=settings.PRORATA_READY_OUTBOX_MAX_AGE - 1))
    assert Client().get("/readyz").status_code == 200  # due, but not for long
    clock.advance(timedelta(seconds=2))
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}  # no detail for the public
    assert "Not ready: outbox" in caplog.text
    outbox_deliver()
    assert Client().get("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_fails_when_the_configured_broker_does_not_answer(clock, monkeypatch):
    from prorata.jobs import celery as jobs_celery

    monkeypatch.setenv("PRORATA_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    monkeypatch.setattr(jobs_celery.app.conf, "broker_url", "redis://127.0.0.1:1/0")
    assert Client().get("/readyz").status_code == 503


def test_health_endpoints_take_only_get_and_head():
    assert Client().post("/healthz").status_code == 405
    assert Client().head("/healthz").status_code == 200


@pytest.mark.django_db
def test_metrics_are_off_without_a_token_and_refused_with_a_wrong_one(settings):
    settings.PRORATA_METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 404
    settings.PRORATA_METRICS_TOKEN = TOKEN
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    assert response.status_code == 401 and "prorata_" not in response.content.decode()
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/metrics").status_code == 401


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # as exposed: sorted
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    match = re.search(rf"^{pattern}$", text, re.M)
    assert match, f"{name}{{{wanted}}} not in the metrics"
    return float(match.group(1))


@pytest.mark.django_db
def test_metrics_count_requests_per_route_and_read_the_outbox(settings, clock):
    settings.PRORATA_METRICS_TOKEN = TOKEN
    client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    first = client.get("/metrics").content.decode()
    before = _metric(first, "prorata_http_requests_total", route="/healthz", method="GET",
                     status="200") if 'route="/healthz"' in first else 0.0
    Client().get("/healthz")
    Client().get("/healthz")
    _queue("receipt:metrics:1")
    _queue("receipt:metrics:2")
    clock.advance(timedelta(minutes=3))
    text = client.get("/metrics").content.decode()
    assert _metric(text, "prorata_http_requests_total", route="/healthz", method="GET",
                   status="200") == before + 2
    assert 'prorata_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz"}' \
        in text
    assert _metric(text, "prorata_outbox_messages", status="pending") == 2
    assert _metric(text, "prorata_outbox_oldest_due_seconds") == 180
    outbox_deliver()
    text = client.get("/metrics").content.decode()
    assert _metric(text, "prorata_outbox_messages", status="sent") == 2
    assert _metric(text, "prorata_outbox_oldest_due_seconds") == 0


@pytest.mark.django_db
def test_metrics_show_charges_by_outcome_and_renewals_by_dunning_state(settings, clock, demo_catalog):
    from prorata.jobs.billing_run import bill_run

    settings.PRORATA_METRICS_TOKEN = TOKEN
    acme_world(clock)
    clock.set(utc(2027, 1, 1))
    bill_run()
    text = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}").get("/metrics").content.decode()
    assert _metric(text, "prorata_payments", method="card", status="succeeded") == 2
    assert _metric(text, "prorata_renewals", status="paid") == 1


class JsonLines(logging.Handler):
    """The project's JSON log lines, as a production server would write them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        formatter = settings.LOGGING["formatters"]["json"]
        self.setFormatter(JsonFormatter(formatter["fmt"], rename_fields=formatter["rename_fields"]))
        self.addFilter(ContextFilter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines():
    handler = JsonLines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_request_id_is_kept_when_sent_made_when_not_and_echoed(log_lines):
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="lb-1234.abc")
    assert response["X-Request-ID"] == "lb-1234.abc"
    line = json.loads(log_lines[-1])
    assert (line["logger"], line["request_id"], line["route"], line["status"]) == (
        "prorata.request", "lb-1234.abc", "/healthz", 200)
    assert line["level"] == "INFO" and "time" in line and line["duration_ms"] >= 0
    for unsafe in ("has spaces", "x" * 129, "new\nline"):
        made = Client().get("/healthz", HTTP_X_REQUEST_ID=unsafe)["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert requestlog.request_id.get() is None  # nothing left behind after the request


@pytest.mark.django_db
def test_a_journey_logs_its_account_and_never_card_data_secrets_or_one_time_links(
        clock, log_lines, settings, demo_catalog):
    from tests.app.web.test_billing_checkout import PRO, new_card, open_checkout

    acme = acme_world(clock)
    clock.set(utc(2026, 4, 1))
    client = acme.client()
    _, fields = open_checkout(acme, client, PRO)
    response = client.post(acme.url + "checkout/", {**fields, **new_card(),
                                                     "payment_method": "new"})
    assert response.status_code == 302
    outbox_deliver()
    Client().get("/accounts/reset/MQ/secret-reset-token-123/")  # a one-time link's path
    Client().post("/accounts/login/", {"username": "alice@acme.example",
                                       "password": "a-password-typed-wrong"})
    text = "\n".join(log_lines)
    checkout = [json.loads(line) for line in log_lines
                if '"route": "/billing/<int:account_id>/checkout/"' in line]
    assert checkout and {line["account_id"] for line in checkout} == {acme.account.pk}
    for secret in ("4242 4242 4242 4242", "4242424242424242", "12/30", '"123"', "cvc",
                   "secret-reset-token-123", "a-password-typed-wrong", settings.SECRET_KEY,
                   fields["idempotency_key"]):
        assert secret not in text, secret
