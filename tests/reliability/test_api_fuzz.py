"""Schemathesis over the whole OpenAPI document (issue 18, "Bad input"; plan T21).

Every operation of ``/api/v1/openapi.json`` gets :data:`EXAMPLES` generated requests (valid and
invalid data, Hypothesis derandomized so that a red run replays), sent in-process through the
WSGI application: the customer routes with a billing contact's personal API token, the operator
routes (``/key``, ``/customers…``) with a read-and-write operator key. Half of the requests aim
at the caller's own account or customer (``account_id`` / ``customer_id`` replaced by theirs),
so that the handlers past the 404 are reached too. Every response must be no 5xx, a documented
status, and a body that matches the documented schema; the invariants hold afterwards.

Run on SQLite, and on PostgreSQL with ``DATABASE_URL`` set (a NUL byte is refused there).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from prorata.wsgi import application
from tests.app.api.conftest import token_for
from tests.app.api.operator_support import key_for
from tests.app.subscriptions.support import buy, card, customer

#: Generated requests per operation and credential: 49 operations × 12 ≈ 600 requests, under
#: a minute on SQLite on the 2-core machine.
EXAMPLES = 12
OPERATOR_PREFIXES = ("/key", "/customers")

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@dataclass
class Caller:
    token: str
    operator_key: str
    account_id: int


@pytest.fixture
def caller(clock, demo_catalog) -> Caller:
    account, user = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(account, user, "lite", "monthly", 3, card_token=card())
    return Caller(token_for(user), key_for()[1], account.pk)


@pytest.fixture
def in_process_requests():
    """The WSGI handler closes the database connection at each request's start and end when it is
    not in autocommit: it is not, inside the test's transaction. Django's test client unhooks the
    same handler for the same reason."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _aim(case, caller: Caller) -> None:
    parameters = case.path_parameters or {}
    # Half the requests (decided by their content, so a replay decides the same) target the
    # caller's own objects, the other half keep the generated ids.
    if zlib.crc32(repr(sorted(parameters.items())).encode()) % 2:
        for name in ("account_id", "customer_id"):
            if name in parameters:
                parameters[name] = caller.account_id


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_and_no_schema_violation(case, caller, in_process_requests):
    operator = case.path.startswith(OPERATOR_PREFIXES)
    _aim(case, caller)
    secret = caller.operator_key if operator else caller.token
    response = case.call(headers={"Authorization": f"Bearer {secret}"})
    case.validate_response(response, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance,
        response_schema_conformance,
    ])
