"""Helpers for the billing center's API tests: customers set up through the services, and an API
client that also sends PUT and extra headers."""

from __future__ import annotations

import json
from typing import Any

from tests.app.api.conftest import ApiClient, token_for
from tests.app.subscriptions.support import GOOD_CARD, buy, card, customer

DECLINED_CARD = "4000 0000 0000 0002"


def card_body(number: str = GOOD_CARD, **fields: Any) -> dict[str, Any]:
    """The body that saves a card over the API: the card form's single-use token for it."""
    return {"token": card(number), **fields}


class BillingClient(ApiClient):
    def put(self, path: str, data: Any = None, **extra: Any):
        return self.client.put(path, json.dumps(data or {}), content_type="application/json",
                               **self._headers(), **extra)

    def checkout(self, account_id: int, body: dict[str, Any], key: str | None = "key-1"):
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
        return self.post(f"/api/v1/accounts/{account_id}/checkout", body, **headers)

    def quote(self, account_id: int, plan: str, cycle: str, quantity: int,
              product: str = "webinar"):
        return self.post(f"/api/v1/accounts/{account_id}/quote", {
            "product_code": product, "plan_code": plan, "cycle_code": cycle,
            "quantity": quantity})


def item(plan: str, cycle: str, quantity: int, product: str = "webinar") -> dict[str, Any]:
    return {"product_code": product, "plan_code": plan, "cycle_code": cycle, "quantity": quantity}


def money(decimal: str, currency: str) -> dict[str, Any]:
    """The API's money object for a decimal string (minor units derived, 2 decimals)."""
    units = int(decimal.replace(".", ""))
    return {"amount": units, "currency": currency, "decimal": decimal}


def acme_with_standard_annual(clock):  # type: ignore[no-untyped-def]
    """DESIGN example 1's starting point: Standard annual × 2 bought 2026-01-01, paid by card."""
    from prorata_core.periods import utc

    clock.set(utc(2026, 1, 1))
    acme, alice = customer("Acme Corp", "US", "alice@acme.example", currency="USD")
    buy(acme, alice, "standard", "annual", 2, card_token=card())
    return acme, alice, BillingClient(token_for(alice))


def bistro_with_lite_monthly(clock):  # type: ignore[no-untyped-def]
    """DESIGN example 2's starting point: Lite monthly × 5 bought 2026-03-01 with French VAT."""
    from prorata_core.periods import utc

    clock.set(utc(2026, 3, 1))
    bistro, bea = customer("Bistro", "FR", "bea@bistro.example", currency="EUR", language="fr")
    buy(bistro, bea, "lite", "monthly", 5, card_token=card())
    return bistro, bea, BillingClient(token_for(bea))
