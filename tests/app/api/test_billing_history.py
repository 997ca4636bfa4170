"""Transactions in keyset pages, payment methods, and the OpenAPI document of the billing API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from prorata.billing.models import LedgerKind
from prorata.billing.services import Movement, ledger_append
from prorata.payments.models import PaymentMethod
from prorata_core.periods import utc
from tests.app.api.billing_support import BillingClient, card_body
from tests.app.api.conftest import token_for
from tests.app.subscriptions.support import customer

pytestmark = pytest.mark.django_db

KINDS = [LedgerKind.INVOICE, LedgerKind.PAYMENT, LedgerKind.CREDIT_NOTE, LedgerKind.REFUND]


@pytest.fixture
def history(clock):
    """An account with 23 ledger entries, one a day from 2026-01-01 (two on the last day, the
    same instant: the id breaks the tie), kinds in turn."""
    account, user = customer("Histories", "US", "hana@history.example", currency="USD")
    start = utc(2026, 1, 1)
    with transaction.atomic():
        for day in range(22):
            ledger_append(account=account, currency="USD", at=start + timedelta(days=day),
                          movements=[Movement(KINDS[day % 4], 100 + day, memo=f"entry {day}")])
        ledger_append(account=account, currency="USD", at=start + timedelta(days=21),
                      movements=[Movement(LedgerKind.PAYMENT, 999, memo="entry 22")])
    return account, BillingClient(token_for(user))


def test_transactions_come_in_keyset_pages_newest_first_without_a_total(history):
    account, api = history
    url = f"/api/v1/accounts/{account.pk}/transactions"
    memos, cursor, pages = [], None, 0
    while True:
        query = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = api.get(url, query_params=query).json()
        assert set(page) == {"data", "has_more", "next_cursor"}  # no count, by design
        memos += [entry["memo"] for entry in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if cursor is None:
            break
        # Opaque: neither the instant nor the id of the last entry can be read in it.
        assert "|" not in cursor and "2026" not in cursor and len(cursor) == 32
    assert pages == 5
    assert memos == ["entry 22", *[f"entry {day}" for day in range(21, -1, -1)]]


def test_transactions_filter_by_kind_and_dates(history):
    account, api = history
    url = f"/api/v1/accounts/{account.pk}/transactions"
    refunds = api.get(url, query_params={"kind": "refund"}).json()["data"]
    assert [e["memo"] for e in refunds] == ["entry 19", "entry 15", "entry 11", "entry 7",
                                            "entry 3"]
    assert refunds[0]["amount"] == {"amount": 119, "currency": "USD", "decimal": "1.19"}
    both = api.get(f"{url}?kind=refund,payment&limit=3").json()
    assert [e["kind"] for e in both["data"]] == ["payment", "payment", "refund"]
    window = api.get(url, query_params={"start": "2026-01-03T00:00:00Z",
                                        "end": "2026-01-05T00:00:00Z"}).json()
    assert [e["memo"] for e in window["data"]] == ["entry 3", "entry 2"]


def test_transactions_refuse_an_unknown_kind_or_a_forged_cursor(history):
    account, api = history
    url = f"/api/v1/accounts/{account.pk}/transactions"
    unknown = api.get(url, query_params={"kind": "gift"})
    assert unknown.status_code == 422 and "gift" in unknown.json()["message"]
    forged = api.get(url, query_params={"cursor": "yesterday"})
    assert forged.status_code == 422 and "cursor" in forged.json()["message"]
    assert forged.json()["code"] == "invalid_cursor"
    # The old readable cursor, and a real cursor under other filters, are refused too.
    readable = api.get(url, query_params={"cursor": "2026-01-10T00:00:00+00:00|8"})
    assert readable.status_code == 422 and readable.json()["code"] == "invalid_cursor"
    cursor = api.get(url, query_params={"limit": 2}).json()["next_cursor"]
    assert api.get(url, query_params={"limit": 2, "cursor": cursor}).status_code == 200
    other = api.get(url, query_params={"limit": 2, "cursor": cursor, "kind": "refund"})
    assert other.status_code == 422 and other.json()["code"] == "invalid_cursor"
    tampered = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")
    assert api.get(url, query_params={"cursor": tampered}).status_code == 422
    assert api.get(url, query_params={"limit": 0}).status_code == 422
    assert api.get(url, query_params={"limit": 101}).status_code == 422


def test_payment_methods_added_made_default_and_removed_never_show_a_number(clock):
    account, user = customer("Cards", "US", "cora@cards.example", currency="USD")
    api = BillingClient(token_for(user))
    url = f"/api/v1/accounts/{account.pk}/payment-methods"
    assert api.get(url).json() == {"data": [], "has_more": False, "next_cursor": None}
    first = api.post(url, card_body())
    assert first.status_code == 201, first.content
    first = first.json()
    assert (first["brand"], first["last4"], first["is_default"]) == ("Visa", "4242", True)
    assert "4242 4242" not in str(first) and "number" not in first and "cvc" not in first
    second = api.post(url, card_body("5555 5555 5555 4444", make_default=False))
    assert second.status_code == 201
    second = second.json()
    assert second["is_default"] is False
    assert [m["id"] for m in api.get(url).json()["data"]] == [first["id"], second["id"]]
    # make the second the default
    made = api.post(f"{url}/{second['id']}/default")
    assert made.status_code == 200 and made.json()["is_default"] is True
    assert [m["id"] for m in api.get(url).json()["data"] if m["is_default"]] == [second["id"]]
    # remove it: the other becomes the default again
    assert api.delete(f"{url}/{second['id']}").status_code == 204
    remaining = api.get(url).json()["data"]
    assert [(m["id"], m["is_default"]) for m in remaining] == [(first["id"], True)]
    assert api.delete(f"{url}/{second['id']}").json()["code"] == "payment_method_not_found"
    # a token unknown to the gateway, or one already used, is refused; nothing saved
    used = card_body()
    assert api.post(url, used).status_code == 201
    api.delete(f"{url}/{PaymentMethod.objects.latest('id').pk}")
    for bad_body in (used, {"token": "tok_sandbox_nope"}):
        bad = api.post(url, bad_body)
        assert bad.status_code == 422
        assert bad.json()["code"] == "card_token_invalid"
    # a card number is not even a field here
    assert api.post(url, {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2030,
                          "cvc": "123"}).status_code == 422
    assert PaymentMethod.objects.filter(account=account).count() == 3  # one removed


def test_another_accounts_card_is_a_404(clock):
    account, user = customer("Cards", "US", "cora@cards.example", currency="USD")
    other, someone = customer("Other", "US", "otto@other.example", currency="USD")
    theirs = BillingClient(token_for(someone)).post(
        f"/api/v1/accounts/{other.pk}/payment-methods", card_body()).json()
    api = BillingClient(token_for(user))
    url = f"/api/v1/accounts/{account.pk}/payment-methods/{theirs['id']}"
    assert api.post(f"{url}/default").status_code == 404
    assert api.delete(url).status_code == 404
    assert PaymentMethod.objects.get(pk=theirs["id"]).removed_at is None


def test_the_openapi_document_lists_the_billing_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    base = "/api/v1/accounts/{account_id}"
    expected = {
        f"{base}/quote": {"post"},
        f"{base}/cart": {"get"},
        f"{base}/cart/items/{{product_code}}": {"put", "delete"},
        f"{base}/checkout": {"post"},
        f"{base}/subscriptions": {"get"},
        f"{base}/invoices": {"get"},
        f"{base}/invoices/{{document_id}}": {"get"},
        f"{base}/invoices/{{document_id}}/pdf": {"get"},
        f"{base}/transactions": {"get"},
        f"{base}/payment-methods": {"get", "post"},
        f"{base}/payment-methods/{{payment_method_id}}/default": {"post"},
        f"{base}/payment-methods/{{payment_method_id}}": {"delete"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
    checkout = paths[f"{base}/checkout"]["post"]
    assert {"201", "202", "400", "402", "409", "422"} <= set(checkout["responses"])
    assert "Idempotency-Key" in [p["name"] for p in checkout["parameters"]]
    pdf = paths[f"{base}/invoices/{{document_id}}/pdf"]["get"]
    assert "application/pdf" in pdf["responses"]["200"]["content"]
