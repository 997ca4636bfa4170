"""The entitlement endpoint's two roads agree (issue 13's speed): the one-statement lookup gives
what the ORM's queries give, in every case; and the WSGI fast path answers exactly as the
django-ninja route does (status, body, ETag, headers), handing every refusal to Django."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_started
from django.db import close_old_connections
from django.test import Client

from prorata.accounts.models import Account, Membership, User
from prorata.api.fastpath import EntitlementFastPath
from prorata.common import metrics
from prorata.licenses.entitlements import entitlement_key_create, entitlement_key_revoke
from prorata.licenses.queries import entitlement_lookup, entitlement_lookup_orm
from prorata.licenses.services import license_assign
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from tests.app.licenses.support import acme

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(clock, demo_catalog):
    world = acme(clock)
    license_assign(actor=world.alice, account=world.account,
                   subscription_id=world.subscription.pk,
                   member_id=world.membership(world.carol).pk)
    # Carol is also a member of a second account with no subscription; Dora of none at all.
    other = Account.objects.create(name="Zeta", country="FR", currency="EUR",
                                   created_at=world.subscription.created_at)
    Membership.objects.create(account=other, user=world.carol, is_organizer=True)
    User.objects.create_user("dora@acme.example", "pw")
    User.objects.create_user("gone@acme.example", "pw", is_active=False)
    world.key_row, world.key = entitlement_key_create(name="Webinar product", actor=None)
    return world


ADDRESSES = ["carol@acme.example", "CAROL@acme.example ", "bob@acme.example",
             "alice@acme.example", "dora@acme.example", "gone@acme.example",
             "nobody@acme.example", ""]


@pytest.mark.parametrize("status", [SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE,
                                    SubscriptionStatus.EXPIRED, SubscriptionStatus.TRIALING])
def test_the_one_statement_lookup_reads_what_the_orm_reads(world, status):
    Subscription.objects.filter(pk=world.subscription.pk).update(status=status)
    for email in ADDRESSES:
        fast = entitlement_lookup(email=email, key=world.key, product="webinar")
        reference = entitlement_lookup_orm(email=email, key=world.key, product="webinar")
        assert fast == reference, email
    assert entitlement_lookup(email="carol@acme.example", key=world.key, product="webinar").members[0].licensed


def test_an_unusable_key_reads_nothing_on_either_road(world):
    for key in ("", "prorata_ent_nope", world.key[:-1] + ("A" if world.key[-1] != "A" else "B")):
        assert entitlement_lookup(email="carol@acme.example", key=key, product="webinar").key_ok is False
        assert entitlement_lookup_orm(email="carol@acme.example", key=key, product="webinar").key_ok is False
    entitlement_key_revoke(key=world.key_row, actor=None)
    assert entitlement_lookup(email="carol@acme.example", key=world.key, product="webinar").key_ok is False
    assert entitlement_lookup_orm(email="carol@acme.example", key=world.key, product="webinar").key_ok is False


class Called:
    """The Django application behind the fast path, recording whether it was asked."""

    def __init__(self) -> None:
        self.django = WSGIHandler()
        self.count = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.count += 1
        # As Django's test client does: closing the connection at the request's start would end
        # the test's transaction.
        request_started.disconnect(close_old_connections)
        try:
            return list(self.django(environ, start_response))
        finally:
            request_started.connect(close_old_connections)


def wsgi_get(app, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "",
               "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
               "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO(),
               "SERVER_PROTOCOL": "HTTP/1.1", **headers}
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], *_: Any) -> None:
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    body = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], body


COMPARED = ("ETag", "Cache-Control", "Content-Type", "X-Content-Type-Options",
            "X-Frame-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy")


@pytest.mark.parametrize("email", ["carol@acme.example", "bob@acme.example",
                                   "dora@acme.example"])
def test_the_fast_path_answers_as_the_route_does(world, email):
    behind = Called()
    app = EntitlementFastPath(behind)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {world.key}"}
    status, headers, body = wsgi_get(app, f"/api/v1/entitlements/{email}", **auth,
                                     HTTP_X_REQUEST_ID="probe-1")
    assert behind.count == 0, "answered by the fast path, not by Django"
    route = Client().get(f"/api/v1/entitlements/{email}",
                         HTTP_AUTHORIZATION=f"Bearer {world.key}")
    assert (status, body) == (route.status_code, route.content) == (200, route.content)
    for name in COMPARED:
        assert headers.get(name) == route.headers.get(name), name
    assert headers["X-Request-ID"] == "probe-1"
    again = wsgi_get(app, f"/api/v1/entitlements/{email}", **auth,
                     HTTP_IF_NONE_MATCH=headers["ETag"])
    assert again[0] == 304 and again[2] == b"" and again[1]["ETag"] == headers["ETag"]
    assert behind.count == 0


def test_the_fast_path_counts_its_answers_in_the_metrics(world):
    app = EntitlementFastPath(Called())
    counter = metrics.REQUESTS.labels("/api/v1/entitlements/<email>", "GET", "200")
    before = counter._value.get()
    wsgi_get(app, "/api/v1/entitlements/carol@acme.example",
             HTTP_AUTHORIZATION=f"Bearer {world.key}")
    assert counter._value.get() == before + 1


@pytest.mark.parametrize("path, headers, status, code", [
    ("/api/v1/entitlements/nobody@acme.example", {}, 404, "unknown_user"),
    ("/api/v1/entitlements/carol@acme.example", {"HTTP_AUTHORIZATION": "Bearer prorata_ent_x"},
     401, "invalid_token"),
    ("/api/v1/entitlements/carol@acme.example", {"HTTP_AUTHORIZATION": ""}, 401,
     "not_authenticated"),
    ("/api/v1/entitlements/carol@acme.example", {"HTTP_HOST": "evil.example"}, 400, None),
])
def test_every_refusal_is_left_to_django(world, path, headers, status, code):
    behind = Called()
    app = EntitlementFastPath(behind)
    got = wsgi_get(app, path, **{"HTTP_AUTHORIZATION": f"Bearer {world.key}", **headers})
    assert behind.count == 1
    assert got[0] == status
    if code is not None:
        import json

        assert json.loads(got[2])["code"] == code


def test_a_revoked_key_stops_the_fast_path_at_once(world):
    behind = Called()
    app = EntitlementFastPath(behind)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {world.key}"}
    assert wsgi_get(app, "/api/v1/entitlements/carol@acme.example", **auth)[0] == 200
    entitlement_key_revoke(key=world.key_row, actor=None)
    assert wsgi_get(app, "/api/v1/entitlements/carol@acme.example", **auth)[0] == 401
    assert behind.count == 1


def test_the_production_application_has_the_fast_path():
    import prorata.wsgi

    assert isinstance(prorata.wsgi.application, EntitlementFastPath)


def test_an_expired_period_changes_the_answer_on_both_roads(world, clock):
    Subscription.objects.filter(pk=world.subscription.pk).update(
        status=SubscriptionStatus.EXPIRED,
        period_end=world.subscription.period_end - timedelta(days=1))
    fast = entitlement_lookup(email="carol@acme.example", key=world.key, product="webinar")
    assert fast == entitlement_lookup_orm(email="carol@acme.example", key=world.key, product="webinar")
