"""Operator API keys (issue 17): made in the console (shown once, stored hashed, named, scoped,
revocable, last use shown, test mode with the movable clock), accepted only by the operator
routes, and never written to a log."""

from __future__ import annotations

import hashlib
import io
import logging
import re

import pytest
from django.test import Client, override_settings

from prorata.accounts.models import Account, AuditEntry
from prorata.api.models import OperatorKey
from prorata.api.services import operator_key_revoke
from tests.app.api.conftest import token_for
from tests.app.api.operator_support import NEW_CUSTOMER, OperatorClient, key_for, operator
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import staff

pytestmark = pytest.mark.django_db

KEY = re.compile(r"prorata_sk_(live|test)_[a-z2-7]{10}_[A-Za-z0-9_-]{43}")


def console_create(client: Client, name: str = "CRM backend", scope: str = "read_write"):
    return client.post("/console/api/operatorkey/add/", {"name": name, "scope": scope},
                       REMOTE_ADDR="198.51.100.4")


def test_an_operator_creates_a_key_in_the_console_and_sees_it_once(clock):
    client = console_login(Client(), operator())
    assert client.get("/console/api/operatorkey/add/").status_code == 200
    response = console_create(client)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    found = KEY.findall(response.content.decode())
    assert len(found) == 1 and found[0] == "test"  # the clock is movable: a test key
    secret = KEY.search(response.content.decode()).group(0)
    row = OperatorKey.objects.get()
    assert (row.name, row.scope, row.test_mode) == ("CRM backend", "read_write", True)
    # Stored hashed: the row holds the SHA-256, never the key or its secret part.
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    stored = " ".join(str(v) for v in OperatorKey.objects.values().get().values())
    assert secret not in stored and secret[-43:] not in stored
    # The list shows its name, start, scope and mode, never the key again.
    listing = client.get("/console/api/operatorkey/").content.decode()
    assert "CRM backend" in listing and row.display in listing
    assert secret not in listing and secret[-43:] not in listing
    assert secret not in client.get(f"/console/api/operatorkey/{row.pk}/change/").content.decode()
    # Audited: who, the IP, the prefix and scope, never the secret.
    entry = AuditEntry.objects.get(action="operator_key.create")
    assert (entry.actor_email, entry.ip) == ("olga@prorata.example", "198.51.100.4")
    assert entry.after["prefix"] == row.prefix and entry.after["scope"] == "read_write"
    assert secret[-43:] not in str(entry.after)


def test_a_bad_name_or_scope_creates_no_key(clock):
    client = console_login(Client(), operator())
    assert console_create(client, name="   ").status_code == 400
    assert console_create(client, scope="admin").status_code == 400
    assert not OperatorKey.objects.exists()
    assert not AuditEntry.objects.filter(action="operator_key.create").exists()


def test_support_agents_cannot_make_or_revoke_keys(clock):
    row, _secret = key_for()
    client = console_login(Client(), staff("sam@prorata.example", "support_agent"))
    assert console_create(client).status_code == 403
    assert client.post(f"/console/api/operatorkey/{row.pk}/revoke/").status_code == 403
    assert OperatorKey.objects.count() == 1
    assert OperatorKey.objects.get().revoked_at is None


def test_a_revoked_key_is_a_401_and_the_revocation_is_audited(clock):
    row, secret = key_for()
    api = OperatorClient(secret)
    assert api.get("/api/v1/customers").status_code == 200
    client = console_login(Client(), operator())
    response = client.post(f"/console/api/operatorkey/{row.pk}/revoke/",
                           REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 302
    refused = api.get("/api/v1/customers")
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_token"
    assert refused.json()["params"]["reason"] == "revoked"
    assert api.post("/api/v1/customers", NEW_CUSTOMER).status_code == 401
    assert not Account.objects.exists()
    entry = AuditEntry.objects.get(action="operator_key.revoke")
    assert (entry.actor_email, entry.ip) == ("olga@prorata.example", "198.51.100.9")
    # Revoking twice changes and records nothing more.
    assert operator_key_revoke(key=row, actor=operator()) is False
    assert AuditEntry.objects.filter(action="operator_key.revoke").count() == 1
    # The change page offers no revocation any more, and posts change nothing.
    assert client.post(f"/console/api/operatorkey/{row.pk}/change/",
                       {"name": "renamed"}).status_code == 403
    assert OperatorKey.objects.get().name == "CRM backend"


def test_a_read_only_key_reads_but_cannot_write(clock, demo_catalog):
    _row, writer = key_for("read_write")
    customer_id = OperatorClient(writer).post("/api/v1/customers", NEW_CUSTOMER).json()["id"]
    _row, reader = key_for("read_only", name="Reporting")
    api = OperatorClient(reader)
    assert api.get("/api/v1/customers").status_code == 200
    assert api.get(f"/api/v1/customers/{customer_id}").status_code == 200
    assert api.get(f"/api/v1/customers/{customer_id}/invoices").status_code == 200
    accounts, audit = Account.objects.count(), AuditEntry.objects.count()
    item = {"product_code": "webinar", "plan_code": "lite", "cycle_code": "monthly",
            "quantity": 1}
    for response in (
        api.post("/api/v1/customers", NEW_CUSTOMER),
        api.patch(f"/api/v1/customers/{customer_id}", {"name": "Renamed"}),
        api.post(f"/api/v1/customers/{customer_id}/trials", {"product_code": "webinar"}),
        api.post(f"/api/v1/customers/{customer_id}/quote", {"items": [item]}),
        api.post(f"/api/v1/customers/{customer_id}/orders",
                 {"items": [item], "expected": ["x"]}),
        api.post(f"/api/v1/customers/{customer_id}/subscriptions/webinar/cancel-renewal"),
    ):
        assert response.status_code == 403, response.content
        body = response.json()
        assert body["code"] == "read_only_key" and set(body) == {"code", "message", "params"}
    assert (Account.objects.count(), AuditEntry.objects.count()) == (accounts, audit)
    assert Account.objects.get(pk=customer_id).name == "Acme SAS"


def test_keys_and_personal_tokens_open_only_their_own_routes(clock, world):
    _row, secret = key_for()
    personal = token_for(world.alice)
    as_alice = OperatorClient(personal)
    refused = as_alice.get("/api/v1/customers")
    assert refused.status_code == 401 and refused.json()["params"]["reason"] == "malformed"
    session = Client()
    session.force_login(world.alice)
    assert session.get("/api/v1/customers").status_code == 401
    as_key = OperatorClient(secret)
    assert as_key.get("/api/v1/me").status_code == 401
    assert as_key.get(f"/api/v1/accounts/{world.a.pk}/invoices").status_code == 401
    wrong = OperatorClient(secret[:-4] + "AAAA")
    assert wrong.get("/api/v1/customers").json()["params"]["reason"] == "unknown"


def test_the_last_use_is_recorded_and_shown(clock):
    row, secret = key_for()
    OperatorClient(secret, ip="203.0.113.50").get("/api/v1/key")
    row.refresh_from_db()
    assert row.last_used_at == clock.now() and row.last_used_ip == "203.0.113.50"
    listing = console_login(Client(), operator()).get("/console/api/operatorkey/")
    assert "203.0.113.50" in listing.content.decode()
    me = OperatorClient(secret).get("/api/v1/key").json()
    assert me == {"name": "CRM backend", "prefix": row.display, "scope": "read_write",
                  "test_mode": True, "created_at": "2026-03-11T00:00:00Z",
                  "last_used_at": "2026-03-11T00:00:00Z"}


def test_a_test_key_only_works_with_the_movable_clock_and_a_live_key_only_without(clock):
    _row, test_secret = key_for()
    assert test_secret.startswith("prorata_sk_test_")
    with override_settings(PRORATA_CLOCK="wall"):
        refused = OperatorClient(test_secret).get("/api/v1/key")
        assert refused.status_code == 401
        assert refused.json()["params"] == {"reason": "mode_mismatch", "mode": "test"}
        live, live_secret = key_for(name="Production backend")
        assert live.test_mode is False and live_secret.startswith("prorata_sk_live_")
        assert OperatorClient(live_secret).get("/api/v1/key").json()["test_mode"] is False
    assert OperatorClient(live_secret).get("/api/v1/key").status_code == 401
    assert OperatorClient(test_secret).get("/api/v1/key").status_code == 200


class _Capture(logging.Handler):
    """Every record, formatted as production does (JSON, with the request context) and with
    every attribute it carries."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        from pythonjsonlogger.json import JsonFormatter

        from prorata.common.requestlog import ContextFilter

        self.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self.addFilter(ContextFilter())
        self.stream = io.StringIO()

    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write(self.format(record) + "\n")
        self.stream.write(repr(record.__dict__) + "\n")


def test_keys_never_reach_the_logs(clock, demo_catalog, monkeypatch):
    capture = _Capture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        client = console_login(Client(), operator())
        page = console_create(client).content.decode()
        secret = KEY.search(page).group(0)
        read_only = KEY.search(console_create(client, "Reports", "read_only").content.decode()
                               ).group(0)
        api = OperatorClient(secret)
        assert api.get("/api/v1/customers?limit=1").status_code == 200
        assert api.post("/api/v1/customers", NEW_CUSTOMER).status_code == 201
        assert api.post("/api/v1/customers", {"name": ""}).status_code == 422
        assert OperatorClient(read_only).post("/api/v1/customers", NEW_CUSTOMER
                                              ).status_code == 403
        assert OperatorClient(secret[:-2] + "xx").get("/api/v1/key").status_code == 401
        assert OperatorClient(secret + "x").get("/api/v1/key").status_code == 401
        # A server error, whose log line names the request.
        import prorata.api.customers as routes

        def broken(**kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(routes, "customers_page", broken)
        crashing = OperatorClient(secret, client=Client(raise_request_exception=False))
        assert crashing.get("/api/v1/customers").status_code == 500
        row = OperatorKey.objects.get(name="CRM backend")
        client.post(f"/console/api/operatorkey/{row.pk}/revoke/")
        assert api.get("/api/v1/key").status_code == 401
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)
    logged = capture.stream.getvalue()
    assert "Internal Server Error" in logged and "/api/v1/customers" in logged  # it did log
    for value in (secret, read_only):
        assert value not in logged
        # nor the secret part alone: its last 43 characters (which may hold "_" themselves)
        assert value[-43:] not in logged
        assert value[-43:][:16] not in logged  # nor a long piece of it
