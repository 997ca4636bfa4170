"""Bad input to the operator API (and the account routes' lists): a clear 4xx with the error JSON,
nothing written, never a 500 — cursor garbage, numbers past 2^63, NUL characters, booleans for
numbers, unknown fields."""

from __future__ import annotations

import pytest

from prorata.accounts.models import Account, AuditEntry
from prorata.api.models import OperatorRequest
from prorata.subscriptions.models import Order, Subscription
from tests.app.api.conftest import ApiClient, token_for
from tests.app.api.operator_support import NEW_CUSTOMER, OperatorClient, key_for

pytestmark = pytest.mark.django_db

HUGE = 2**63
ITEM = {"product_code": "webinar", "plan_code": "lite", "cycle_code": "monthly", "quantity": 1}


@pytest.fixture
def api(clock, demo_catalog) -> OperatorClient:
    return OperatorClient(key_for()[1])


@pytest.fixture
def cid(api) -> int:
    return api.post("/api/v1/customers", NEW_CUSTOMER).json()["id"]


def refused(response, status: int = 422, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "params"} and body["message"]
    if code:
        assert body["code"] == code, body
    return body


def unchanged(before: tuple[int, ...]) -> None:
    assert snapshot() == before


def snapshot() -> tuple[int, ...]:
    return (Account.objects.count(), Subscription.objects.count(), Order.objects.count(),
            AuditEntry.objects.count(), OperatorRequest.objects.count())


@pytest.mark.parametrize("cursor", [
    "garbage", "", " ", "2026-03-11T00:00:00+00:00|8", "A" * 32, "A" * 31 + "=", "é" * 32,
    "AQAAAAAAAAAAAAAAAAAAACrB9kD1ZQm8", "%00", "\x00" * 32, "A" * 5000,
])
def test_cursor_garbage_is_a_422(api, cid, cursor):
    for url in ("/api/v1/customers", f"/api/v1/customers/{cid}/invoices",
                f"/api/v1/customers/{cid}/credit-notes", f"/api/v1/customers/{cid}/payments",
                f"/api/v1/customers/{cid}/ledger", f"/api/v1/customers/{cid}/subscriptions"):
        response = api.get(url, query_params={"cursor": cursor})
        if cursor == "":
            assert response.status_code == 200  # no cursor: the first page
            continue
        refused(response)


def test_a_cursor_belongs_to_its_list_and_filters(api, cid):
    for n in range(3):
        api.post("/api/v1/customers", NEW_CUSTOMER | {"name": f"Other {n}"})
    cursor = api.get("/api/v1/customers", query_params={"limit": 1}).json()["next_cursor"]
    assert cursor and api.get("/api/v1/customers",
                              query_params={"limit": 1, "cursor": cursor}).status_code == 200
    refused(api.get("/api/v1/customers", query_params={"cursor": cursor, "name": "Other"}),
            code="invalid_cursor")
    refused(api.get(f"/api/v1/customers/{cid}/subscriptions", query_params={"cursor": cursor}),
            code="invalid_cursor")


def test_numbers_past_2_63_are_refused(api, cid):
    before = snapshot()
    for url in (f"/api/v1/customers/{HUGE}", f"/api/v1/customers/{HUGE}/invoices",
                f"/api/v1/customers/{cid}/invoices/{HUGE}",
                f"/api/v1/customers/{cid}/invoices/{HUGE}/pdf",
                f"/api/v1/customers/{-HUGE - 1}", f"/api/v1/customers/{2**200}"):
        assert api.get(url).status_code in (404, 422), url
    for query in ({"limit": HUGE}, {"limit": 0}, {"limit": -1}, {"limit": "1e3"}):
        refused(api.get("/api/v1/customers", query_params=query))
    summary = api.post(f"/api/v1/customers/{cid}/quote", {"items": [ITEM]}).json()
    for body in ({"items": [ITEM | {"quantity": HUGE}], "expected": summary["expected"]},
                 {"items": [ITEM], "expected": summary["expected"], "payment_method_id": HUGE},
                 {"items": [ITEM], "expected": summary["expected"],
                  "payment_method_id": -HUGE - 1}):
        response = api.post(f"/api/v1/customers/{cid}/orders", body)
        assert 400 <= response.status_code < 500, response.content
    refused(api.post(f"/api/v1/customers/{HUGE}/trials", {"product_code": "webinar"}), 404)
    unchanged(before)


def test_nul_characters_are_refused_before_anything_is_read(api, cid):
    before = snapshot()
    refused(api.post("/api/v1/customers", NEW_CUSTOMER | {"name": "Acme\x00SAS"}))
    refused(api.post("/api/v1/customers", NEW_CUSTOMER | {"contact": {"email": "a\x00@b.c"}}))
    refused(api.post("/api/v1/customers", raw='{"name": "x\\u0000"}'))
    refused(api.patch(f"/api/v1/customers/{cid}", {"billing_address": "\x00"}))
    refused(api.get("/api/v1/customers", query_params={"email": "jane\x00@acme.example"}))
    refused(api.get("/api/v1/customers?name=%00"))
    refused(api.post(f"/api/v1/customers/{cid}/subscriptions/web%00inar/cancel-renewal"))
    refused(api.post(f"/api/v1/customers/{cid}/trials", {"product_code": "\x00"}))
    unchanged(before)
    # An escaped backslash before "u0000" is no NUL: that name is only refused as a bad name.
    assert api.post("/api/v1/customers", raw='{"name": "x\\\\u0000"}').status_code == 422


def test_nul_characters_are_refused_on_the_account_routes_too(clock, world):
    alice = ApiClient(token_for(world.alice))
    response = alice.get(f"/api/v1/accounts/{world.a.pk}/transactions?kind=%00")
    refused(response)
    refused(alice.post(f"/api/v1/accounts/{world.a.pk}/quote", ITEM | {"plan_code": "\x00"}))


@pytest.mark.parametrize("quantity", [True, False, "1", 1.0, 1.5, None, [1], {"n": 1}, 0, -1])
def test_a_quantity_is_an_integer_not_a_boolean(api, cid, quantity):
    before = snapshot()
    refused(api.post(f"/api/v1/customers/{cid}/quote", {"items": [ITEM | {"quantity": quantity}]}))
    refused(api.post(f"/api/v1/customers/{cid}/orders",
                     {"items": [ITEM | {"quantity": quantity}], "expected": ["x"]}))
    unchanged(before)


def test_the_account_routes_refuse_a_boolean_quantity_too(clock, world, demo_catalog):
    alice = ApiClient(token_for(world.alice))
    refused(alice.post(f"/api/v1/accounts/{world.a.pk}/quote", ITEM | {"quantity": True}))
    response = alice.client.put(
        f"/api/v1/accounts/{world.a.pk}/cart/items/webinar",
        '{"plan_code": "lite", "cycle_code": "monthly", "quantity": true}',
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    refused(response)


def test_unknown_fields_bad_json_and_bad_values_write_nothing(api, cid):
    before = snapshot()
    refused(api.post("/api/v1/customers", NEW_CUSTOMER | {"plan": "pro"}))
    refused(api.post("/api/v1/customers", raw="{not json"), 400)
    refused(api.post("/api/v1/customers", raw="[]"))
    refused(api.post("/api/v1/customers", NEW_CUSTOMER | {"country": "ZZ"}))
    refused(api.post("/api/v1/customers", NEW_CUSTOMER | {"language": "de"}))
    refused(api.post("/api/v1/customers", NEW_CUSTOMER | {"contact": {"email": "nobody"}}))
    refused(api.post("/api/v1/customers", NEW_CUSTOMER | {"vat_number": "FR123"}))
    refused(api.post("/api/v1/customers", NEW_CUSTOMER | {"time_zone": "Mars/Olympus"}))
    refused(api.patch(f"/api/v1/customers/{cid}", {"name": None}))
    refused(api.patch(f"/api/v1/customers/{cid}", {"language": "de"}))
    refused(api.post(f"/api/v1/customers/{cid}/trials", {"product_code": "webinar",
                                                          "plan_code": "pro"}))
    refused(api.post(f"/api/v1/customers/{cid}/quote", {"items": []}))
    refused(api.post(f"/api/v1/customers/{cid}/orders", {"items": [ITEM], "expected": []}))
    refused(api.post("/api/v1/customers", NEW_CUSTOMER, key="k" * 201), 400,
            "idempotency_key_required")
    refused(api.get(f"/api/v1/customers/{cid}/invoices/1/pdf?language=de"), 404)
    unchanged(before)
    assert Account.objects.get(pk=cid).name == "Acme SAS"
