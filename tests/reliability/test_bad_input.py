"""Bad input (issue 18): each case the issue names gets a clear 4xx with an error code and a
message, and writes nothing; where the only honest answer is the page itself (a filter that
includes everything), it is that page, never a 500. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.test import Client, override_settings
from django.urls import reverse

from prorata.billing.models import Document, DocumentKind, Payment
from prorata.billing.services import invoice_record_payment
from prorata.payments.models import SandboxCard
from prorata.subscriptions.errors import VatNumberOutsideEu
from prorata.subscriptions.services import CheckoutItem, checkout_place
from prorata_core.errors import InvalidAmount
from prorata_core.money import Money
from prorata_core.periods import utc
from tests.app.api.conftest import token_for
from tests.app.api.operator_support import key_for
from tests.app.console_auth import console_login
from tests.app.subscriptions.support import buy, card, customer, staff
from tests.app.web.conftest import PASSWORD

#: Tables that a refused request may still touch: the session of the signed-in test client.
_VOLATILE = {"django_session"}


def rows() -> dict[str, int]:
    """The number of rows of every table: a refused request changes none of them."""
    return {model._meta.db_table: model._base_manager.count() for model in apps.get_models()
            if model._meta.db_table not in _VOLATILE}


@pytest.fixture
def world(clock, demo_catalog):
    clock.set(utc(2026, 1, 1))
    advisor = staff("ada@prorata.example", "corporate_advisor")
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    alice.set_password(PASSWORD)
    alice.save()
    buy(acme, alice, "lite", "monthly", 3, card_token=card())
    globex, _hans = customer("Globex", "DE", "hans@globex.example", currency="EUR",
                            corporate_advisor=advisor)
    buy(globex, advisor, "pro", "annual", 1, by_staff=True)  # an open invoice, net 30
    web = Client()
    web.force_login(alice)
    return {"acme": acme, "alice": alice, "advisor": advisor, "globex": globex, "web": web,
            "token": token_for(alice), "operator": key_for()[1],
            "invoice": Document.objects.filter(account=globex, kind=DocumentKind.INVOICE).get()}


def api(secret: str, method: str, path: str, body=None, raw: bytes | str | None = None,
        **headers):
    if method == "get":
        return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {secret}", **headers)
    data = raw if raw is not None else json.dumps(body or {})
    return getattr(Client(), method)(path, data, content_type="application/json",
                                     HTTP_AUTHORIZATION=f"Bearer {secret}", **headers)


def refused(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert set(body) == {"code", "message", "params"} and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


ITEM = {"product_code": "webinar", "plan_code": "standard", "cycle_code": "monthly",
        "quantity": 2}


# --- an API body over the size limit ----------------------------------------------------------

@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_a_body_over_the_size_limit_is_a_413(world):
    before = rows()
    big = json.dumps(ITEM | {"vat_number": "x" * 20_000})
    quote = f"/api/v1/accounts/{world['acme'].pk}/quote"
    body = refused(api(world["token"], "post", quote, raw=big), 413, "request_too_large")
    assert body["params"] == {"limit": 10_000}
    refused(api(world["operator"], "post", "/api/v1/customers", raw=big,
                HTTP_IDEMPOTENCY_KEY="big-1"), 413, "request_too_large")
    assert rows() == before


def test_a_body_that_is_not_json_is_a_400_with_its_code(world):
    before = rows()
    quote = f"/api/v1/accounts/{world['acme'].pk}/quote"
    for raw in ("{not json", "\x1d", b"\xff\xfe"):
        refused(api(world["token"], "post", quote, raw=raw), 400, "invalid_json")
    assert rows() == before


def test_the_openapi_document_lists_the_400_and_413_of_every_body():
    document = Client().get("/api/v1/openapi.json").json()
    with_body = [(path, method, operation) for path, item in document["paths"].items()
                 for method, operation in item.items() if "requestBody" in operation]
    assert len(with_body) > 10
    for path, method, operation in with_body:
        assert {"400", "413"} <= set(map(str, operation["responses"])), (method, path)


# --- a card expiry year of 40000, and digits that are not ASCII --------------------------------

@pytest.mark.parametrize("expiry, number, cvc", [
    ("12/40000", "4242 4242 4242 4242", "123"),
    ("1²/30", "4242 4242 4242 4242", "123"),  # "²".isdigit(), but int("²") fails
    ("١٢/٣٠", "4242 4242 4242 4242", "123"),  # Arabic-Indic digits read as 12/30
    ("12/30", "4242 4242 4242 424²", "123"),
    ("12/30", "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", "123"),
    ("12/30", "4242 4242 4242 4242", "١٢٣"),
])
def test_a_card_that_cannot_be_is_a_422(world, expiry, number, cvc):
    before = SandboxCard.objects.count()
    response = Client().post("/sandbox-gateway/v1/tokens",
                             json.dumps({"number": number, "expiry": expiry, "cvc": cvc}),
                             content_type="application/json")
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "card_rejected" and error["message"] and error["field"]
    assert SandboxCard.objects.count() == before


# --- a NUL byte in any text field or form -------------------------------------------------------

def _web_requests(world) -> list[tuple[Client, str, str, dict]]:
    acme, web = world["acme"].pk, world["web"]
    anonymous = Client()
    console = console_login(Client(), world["advisor"])
    transfer = reverse("admin:billing_document_transfer", args=[world["invoice"].pk])
    return [
        (web, "get", f"/billing/{acme}/transactions/?kind=%00", {}),
        (web, "get", f"/billing/{acme}/transactions/?start=2026-01-01%00", {}),
        (web, "get", f"/billing/{acme}/transactions/?cursor=%00", {}),
        (web, "post", f"/billing/{acme}/support/",
         {"kind": "billing_question", "message": "Where is my invoice?\x00"}),
        (web, "post", f"/billing/{acme}/details/", {"name": "Acme\x00Corp", "country": "US"}),
        (web, "post", "/profile/", {"first_name": "Al\x00ice"}),
        (web, "post", f"/billing/{acme}/subscriptions/webinar/modify/",
         {"plan": "pro\x00", "cycle": "monthly", "quantity": "3"}),
        (anonymous, "post", "/accounts/login/",
         {"username": "alice@acme.example\x00", "password": PASSWORD}),
        (anonymous, "post", "/accounts/password_reset/", {"email": "alice\x00@acme.example"}),
        (anonymous, "post", "/accounts/signup/",
         {"email": "new\x00@example.com", "password1": "x", "password2": "x", "name": "N"}),
        (console, "get", "/console/billing/document/?q=%00", {}),
        (console, "get", "/console/accounts/account/?q=ac%00me", {}),
        (console, "post", transfer, {"amount": "10.00", "reference": "TR-1\x00"}),
    ]


def test_a_nul_byte_in_a_page_or_form_is_a_400_page(world):
    requests = _web_requests(world)
    before = rows()
    for client, method, url, data in requests:
        response = getattr(client, method)(url, data)
        assert response.status_code == 400, (method, url, response.status_code)
        assert b'data-code="nul_character"' in response.content, (method, url)
    assert rows() == before
    assert not Payment.objects.filter(method="bank_transfer").exists()


def test_a_nul_byte_in_the_api_is_a_422(world):
    before = rows()
    acme = world["acme"].pk
    for secret, method, path, body in [
        (world["token"], "post", f"/api/v1/accounts/{acme}/quote", ITEM | {"plan_code": "p\x00"}),
        (world["token"], "put", f"/api/v1/accounts/{acme}/cart/items/webinar",
         {"plan_code": "lite\x00", "cycle_code": "monthly", "quantity": 1}),
        (world["token"], "get", f"/api/v1/accounts/{acme}/transactions?kind=%00", None),
        (world["operator"], "post", "/api/v1/customers", {"name": "A\x00", "country": "FR"}),
    ]:
        response = (api(secret, method, path, body) if body is not None
                    else Client().get(path, HTTP_AUTHORIZATION=f"Bearer {secret}"))
        refused(response, 422)
    assert rows() == before


# --- a cursor id past 2^63, and a date filter of 9999-12-31 ---------------------------------------

@pytest.mark.parametrize("cursor", [
    f"2026-01-01T00:00:00+00:00|{2**63}", f"2026-01-01T00:00:00+00:00|{2**70}",
    "2026-01-01T00:00:00+00:00|-1", "2026-01-01T00:00:00+00:00|٣", "9999-12-31T23:59:59+00:00|1",
])
def test_a_cursor_past_the_largest_id_is_the_first_page(world, cursor):
    response = world["web"].get(f"/billing/{world['acme'].pk}/transactions/", {"cursor": cursor})
    assert response.status_code == 200
    first = Document.objects.filter(account=world["acme"]).get().number
    assert first.encode() in response.content  # the first page, not an empty one


def test_a_huge_cursor_or_id_in_the_api_is_refused(world):
    acme = world["acme"].pk
    refused(api(world["token"], "get",
                f"/api/v1/accounts/{acme}/transactions?cursor={'9' * 40}"), 422, "invalid_cursor")
    for path in (f"/api/v1/accounts/{2**63}", f"/api/v1/accounts/{2**70}/invoices",
                 f"/api/v1/accounts/{acme}/invoices/{2**63}"):
        response = Client().get(path, HTTP_AUTHORIZATION=f"Bearer {world['token']}")
        assert response.status_code in (404, 422), (path, response.content)


def test_a_date_filter_of_9999_12_31_is_no_500(world):
    acme = world["acme"].pk
    for query in ({"end": "9999-12-31"}, {"start": "9999-12-31"},
                  {"start": "0001-01-01", "end": "9999-12-31"}):
        response = world["web"].get(f"/billing/{acme}/transactions/", query)
        assert response.status_code == 200, query
    first = Document.objects.filter(account=world["acme"]).get().number
    assert first.encode() in world["web"].get(f"/billing/{acme}/transactions/",
                                              {"end": "9999-12-31"}).content  # everything
    for query in ("end=9999-12-31T23:59:59Z", "start=9999-12-31T23:59:59Z",
                  "end=9999-12-31", "start=10000-01-01"):
        response = Client().get(f"/api/v1/accounts/{acme}/transactions?{query}",
                                HTTP_AUTHORIZATION=f"Bearer {world['token']}")
        assert response.status_code in (200, 422), (query, response.content)


# --- a duplicate bank reference in the console transfer form --------------------------------------

def test_a_bank_reference_recorded_twice_is_refused_with_a_message(world):
    invoice, advisor = world["invoice"], world["advisor"]
    console = console_login(Client(), advisor)
    url = reverse("admin:billing_document_transfer", args=[invoice.pk])
    first = console.post(url, {"amount": "100.00", "reference": "TR-2026-001"})
    assert first.status_code == 302
    before = rows()
    second = console.post(url, {"amount": "100.00", "reference": "TR-2026-001"})
    assert second.status_code == 200
    assert b"already recorded" in second.content
    assert rows() == before
    assert Payment.objects.filter(invoice=invoice).count() == 1


# --- quantity: true --------------------------------------------------------------------------------

def test_a_boolean_quantity_is_refused_not_read_as_one(world):
    before = rows()
    acme = world["acme"].pk
    for quantity in (True, False, "3", 3.0, "٣"):
        refused(api(world["token"], "post", f"/api/v1/accounts/{acme}/quote",
                    ITEM | {"quantity": quantity}), 422, "invalid_input")
        refused(api(world["token"], "put", f"/api/v1/accounts/{acme}/cart/items/webinar",
                    {"plan_code": "lite", "cycle_code": "monthly", "quantity": quantity}), 422,
                "invalid_input")
        refused(api(world["token"], "post", f"/api/v1/accounts/{acme}/checkout",
                    {"items": [ITEM | {"quantity": quantity}], "expected": ["x"]},
                    HTTP_IDEMPOTENCY_KEY=f"bool-{quantity!r}"), 422, "invalid_input")
    assert rows() == before


# --- a VAT number on a non-EU account: the quote and the checkout agree -------------------------

def test_a_vat_number_outside_the_eu_is_refused_by_the_quote_and_the_checkout(world):
    before = rows()
    acme = world["acme"].pk
    quote = refused(api(world["token"], "post", f"/api/v1/accounts/{acme}/quote",
                        ITEM | {"vat_number": "FR40303265045"}), 422, "vat_number_outside_eu")
    checkout = refused(api(world["token"], "post", f"/api/v1/accounts/{acme}/checkout",
                           {"items": [ITEM], "expected": ["x"], "vat_number": "FR40303265045"},
                           HTTP_IDEMPOTENCY_KEY="vat-1"), 422, "vat_number_outside_eu")
    assert quote["message"] == checkout["message"]
    with pytest.raises(VatNumberOutsideEu):
        checkout_place(account=world["acme"], user=world["alice"], idempotency_key="vat-2",
                       expected=["x"], items=[CheckoutItem("webinar", "standard", "monthly", 2)],
                       vat_number="FR40303265045")
    assert rows() == before
    # blank is "none typed": both price with the account's own (none here)
    assert api(world["token"], "post", f"/api/v1/accounts/{acme}/quote",
               ITEM | {"vat_number": " "}).status_code == 200


# --- non-ASCII digits in money fields -----------------------------------------------------------

@pytest.mark.parametrize("text", ["١٢٣.٠٠", "१२३", "１２３.００", "12³", "1\n2"])
def test_non_ascii_digits_are_not_an_amount(text):
    with pytest.raises(InvalidAmount):
        Money.of(text, "EUR")


def test_the_transfer_form_refuses_non_ascii_digits(world):
    invoice = world["invoice"]
    console = console_login(Client(), world["advisor"])
    url = reverse("admin:billing_document_transfer", args=[invoice.pk])
    before = rows()
    for amount in ("١٠٠.٠٠", "１００"):
        response = console.post(url, {"amount": amount, "reference": f"TR-{amount}"})
        assert response.status_code == 200
        assert b"is not an amount" in response.content
    assert rows() == before
    with pytest.raises(InvalidAmount):
        invoice_record_payment(invoice=invoice, amount=Money.of("٥٠", "EUR"), reference="TR-x",
                               actor=world["advisor"])
