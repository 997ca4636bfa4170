"""The billing history as a streamed CSV file through the API (issue 16)."""

from __future__ import annotations

import csv
import io

import pytest

from prorata_core.periods import utc
from tests.app.api.billing_support import acme_with_standard_annual
from tests.app.subscriptions.support import buy

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_catalog")]


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_api_streams_the_documents_as_csv_with_filters(clock):
    acme, alice, api = acme_with_standard_annual(clock)
    clock.set(utc(2026, 4, 1))
    buy(acme, alice, "pro", "annual", 2)  # example 1: a credit note and an invoice
    url = f"/api/v1/accounts/{acme.pk}/transactions.csv"
    everything = api.client.get(url, **api._headers())
    assert everything.status_code == 200 and everything.streaming
    rows = rows_of(everything)
    assert [row[1] for row in rows[1:]] == ["invoice", "credit_note", "invoice"]
    newest = rows[1]
    assert newest[3:] == ["paid", "USD", "4776.00", "0.00", "4776.00", "1790.14", "2985.86",
                          "0.00"]
    credit = rows[2]
    assert credit[3:8] == ["credit_applied", "USD", "-1790.14", "0.00", "-1790.14"]
    only_credit = rows_of(api.client.get(url, {"kind": "credit_note"}, **api._headers()))
    assert len(only_credit) == 2 and only_credit[1][1] == "credit_note"


def test_the_api_export_refuses_unknown_filters_clearly(clock):
    acme, _alice, api = acme_with_standard_annual(clock)
    url = f"/api/v1/accounts/{acme.pk}/transactions.csv"
    response = api.client.get(url, {"status": "lost"}, **api._headers())
    assert response.status_code == 422 and "lost" in response.json()["message"]
    assert "paid, credit_applied" in response.json()["message"]
