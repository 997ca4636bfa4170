"""Example answers of the API's customer routes for the OpenAPI document, recorded from the demo
(``make run``: alice@acme.example, Acme Corp, on the demo clock) and checked against each route's
schema at import by :func:`prorata.api.operator.documented`. The operator routes keep theirs beside
them in :mod:`prorata.api.customers`."""

from __future__ import annotations

from typing import Any


def page(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``rows`` as the last page of a list (the envelope of prorata.api.pagination)."""
    return {"data": rows, "has_more": False, "next_cursor": None}


ME: dict[str, Any] = {
    "id": 4,
    "email": "alice@acme.example",
    "first_name": "Alice",
    "last_name": "Anderson",
    "language": "",
    "staff_roles": [],
    "accounts": [{"id": 1, "name": "Acme Corp", "roles": ["billing_contact"]}],
}

ACCOUNTS_PAGE: dict[str, Any] = {
    "data": [{"id": 1, "name": "Acme Corp", "roles": ["billing_contact"]}],
    "has_more": False,
    "next_cursor": None,
}

ACCOUNT: dict[str, Any] = {
    "id": 1,
    "name": "Acme Corp",
    "country": "US",
    "currency": "USD",
    "billing_mode": "self_service",
    "language": "en",
    "created_at": "2026-03-11T00:00:00Z",
    "roles": ["billing_contact"],
    "billing": {
        "billing_address": "",
        "vat_number": "",
        "payment_terms_days": 30,
        "advisor_email": None,
    },
}

TOKENS_PAGE: dict[str, Any] = {
    "data": [
        {
            "id": 1,
            "name": "docs",
            "display": "prorata_oxqdyobvqn_…",
            "created_at": "2026-03-11T00:00:00Z",
            "last_used_at": "2026-03-11T00:00:00Z",
            "expires_at": None,
            "revoked_at": None,
            "status": "active",
        }
    ],
    "has_more": True,
    "next_cursor": "AQAAAAAAAAAAAAAAAAAAACrB9kD1ZQm8",
}

TOKEN_REVOKED: dict[str, Any] = TOKENS_PAGE["data"][0] | {
    "revoked_at": "2026-03-11T00:00:00Z",
    "status": "revoked",
}

SUBSCRIPTION: dict[str, Any] = {
    "id": 1,
    "product": "webinar",
    "product_name": "Webinar",
    "plan": "standard",
    "plan_name": "Standard",
    "cycle": "annual",
    "quantity": 4,
    "status": "active",
    "auto_renew": True,
    "unit_amount": {"amount": 118800, "currency": "USD", "decimal": "1188.00"},
    "invoiced_amount": {"amount": 475200, "currency": "USD", "decimal": "4752.00"},
    "period_start": "2026-03-11T00:00:00Z",
    "period_end": "2027-03-11T00:00:00Z",
    "next_billing_date": "2027-03-11T00:00:00Z",
}

SUBSCRIPTIONS_PAGE: dict[str, Any] = page([SUBSCRIPTION])

SUBSCRIPTION_RENEWAL_OFF: dict[str, Any] = SUBSCRIPTION | {"auto_renew": False}


#: One invoice as the lists show it (DocumentOut).
INVOICE_ROW: dict[str, Any] = {
    "id": 5,
    "kind": "invoice",
    "number": "2026-000004",
    "status": "paid",
    "issued_at": "2026-03-11T00:00:00Z",
    "due_at": None,
    "paid_at": "2026-03-11T00:00:00Z",
    "refers_to": None,
    "currency": "USD",
    "subtotal": {"amount": 475200, "currency": "USD", "decimal": "4752.00"},
    "tax": {"amount": 0, "currency": "USD", "decimal": "0.00"},
    "total": {"amount": 475200, "currency": "USD", "decimal": "4752.00"},
    "credit_applied": {"amount": 192684, "currency": "USD", "decimal": "1926.84"},
    "amount_paid": {"amount": 282516, "currency": "USD", "decimal": "2825.16"},
    "amount_due": {"amount": 0, "currency": "USD", "decimal": "0.00"},
    "tax_rule": "outside_eu",
    "tax_mention": "",
    "pdf_url": "/api/v1/accounts/1/invoices/5/pdf",
}

INVOICES_PAGE: dict[str, Any] = {
    "data": [INVOICE_ROW],
    "has_more": True,
    "next_cursor": "AQAGTLRRLSAAAAAAAAAAAAU9cguuUEo2",
}

INVOICE: dict[str, Any] = INVOICE_ROW | {
    "lines": [
        {
            "kind": "charge",
            "description": "Standard, annual, 4 licenses",
            "period_start": "2026-03-11T00:00:00Z",
            "period_end": "2027-03-11T00:00:00Z",
            "quantity": 4,
            "unit_amount": {"amount": 118800, "currency": "USD", "decimal": "1188.00"},
            "ratio": "1/1",
            "amount": {"amount": 475200, "currency": "USD", "decimal": "4752.00"},
            "tax_rate_bp": 0,
            "tax": {"amount": 0, "currency": "USD", "decimal": "0.00"},
        }
    ],
    "seller": {
        "name": "Prorata Webinars SAS",
        "address": "12 rue de la Paix\n75002 Paris\nFrance",
        "country": "FR",
        "vat_number": "FR40303265045",
    },
    "buyer": {"name": "Acme Corp", "address": "", "country": "US", "vat_number": ""},
}

TRANSACTIONS_PAGE: dict[str, Any] = {
    "data": [
        {
            "id": 9,
            "at": "2026-03-11T00:00:00Z",
            "kind": "payment",
            "amount": {"amount": 282516, "currency": "USD", "decimal": "2825.16"},
            "memo": "Visa •••• 4242 (12/2030) · 2026-000004",
            "document": {
                "id": 5,
                "kind": "invoice",
                "number": "2026-000004",
                "pdf_url": "/api/v1/accounts/1/invoices/5/pdf",
            },
        }
    ],
    "has_more": True,
    "next_cursor": "AQAGTLRRLSAAAAAAAAAAAAni35M9lb-h",
}

PAYMENT_METHOD: dict[str, Any] = {
    "id": 3,
    "brand": "Visa",
    "last4": "4242",
    "exp_month": 12,
    "exp_year": 2030,
    "is_default": True,
    "created_at": "2026-03-11T00:00:00Z",
}

QUOTE: dict[str, Any] = {
    "product": "webinar",
    "product_name": "Webinar",
    "kind": "change",
    "fingerprint": "e77c97e566b468ad8b79980b64e757b9",
    "subscription_id": 1,
    "changes": ["upgrade"],
    "configuration": {
        "plan": "pro",
        "plan_name": "Pro",
        "cycle": "annual",
        "quantity": 4,
        "unit_amount": {"amount": 238800, "currency": "USD", "decimal": "2388.00"},
    },
    "previous": {
        "plan": "standard",
        "plan_name": "Standard",
        "cycle": "annual",
        "quantity": 4,
        "unit_amount": {"amount": 118800, "currency": "USD", "decimal": "1188.00"},
    },
    "currency": "USD",
    "period": {"start": "2026-03-11T00:00:00Z", "end": "2027-03-11T00:00:00Z"},
    "next_billing_date": "2027-03-11T00:00:00Z",
    "lines": [
        {
            "kind": "credit",
            "description": "Unused time of Standard, annual, 4 licenses",
            "plan_code": "standard",
            "cycle_code": "annual",
            "period_start": "2026-03-11T00:00:00Z",
            "period_end": "2027-03-11T00:00:00Z",
            "quantity": 4,
            "unit_amount": {"amount": 118800, "currency": "USD", "decimal": "1188.00"},
            "ratio": "311723/1168000",
            "amount": {"amount": -126824, "currency": "USD", "decimal": "-1268.24"},
            "tax_rate_bp": 0,
            "tax": {"amount": 0, "currency": "USD", "decimal": "0.00"},
        },
        {
            "kind": "charge",
            "description": "Pro, annual, 4 licenses",
            "plan_code": "pro",
            "cycle_code": "annual",
            "period_start": "2026-03-11T00:00:00Z",
            "period_end": "2027-03-11T00:00:00Z",
            "quantity": 4,
            "unit_amount": {"amount": 238800, "currency": "USD", "decimal": "2388.00"},
            "ratio": "1/1",
            "amount": {"amount": 955200, "currency": "USD", "decimal": "9552.00"},
            "tax_rate_bp": 0,
            "tax": {"amount": 0, "currency": "USD", "decimal": "0.00"},
        },
    ],
    "totals": {
        "subtotal": {"amount": 828376, "currency": "USD", "decimal": "8283.76"},
        "tax": {"amount": 0, "currency": "USD", "decimal": "0.00"},
        "total": {"amount": 828376, "currency": "USD", "decimal": "8283.76"},
        "credit_applied": {"amount": 0, "currency": "USD", "decimal": "0.00"},
        "amount_due": {"amount": 828376, "currency": "USD", "decimal": "8283.76"},
        "credit_created": {"amount": 0, "currency": "USD", "decimal": "0.00"},
    },
    "credit_balance": {"amount": 0, "currency": "USD", "decimal": "0.00"},
}

CART: dict[str, Any] = {
    "items": [
        {"product_code": "webinar", "plan_code": "pro", "cycle_code": "annual", "quantity": 4}
    ],
    "summary": {
        "at": "2026-03-11T00:00:00Z",
        "currency": "USD",
        "tax": {"rate_bp": 0, "rule": "outside_eu", "country": "US", "mention": None},
        "credit_balance": {"amount": 0, "currency": "USD", "decimal": "0.00"},
        "items": [QUOTE],
        "totals": QUOTE["totals"],
        "expected": [QUOTE["fingerprint"]],
    },
}

CART_EMPTY: dict[str, Any] = {"items": [], "summary": None}

CHECKOUT: dict[str, Any] = {
    "order_id": 6,
    "status": "paid",
    "invoice": {
        "id": 9,
        "kind": "invoice",
        "number": "2026-000006",
        "status": "paid",
        "issued_at": "2026-03-11T00:00:00Z",
        "due_at": None,
        "paid_at": "2026-03-11T00:00:00Z",
        "refers_to": None,
        "currency": "USD",
        "subtotal": {"amount": 955200, "currency": "USD", "decimal": "9552.00"},
        "tax": {"amount": 0, "currency": "USD", "decimal": "0.00"},
        "total": {"amount": 955200, "currency": "USD", "decimal": "9552.00"},
        "credit_applied": {"amount": 126824, "currency": "USD", "decimal": "1268.24"},
        "amount_paid": {"amount": 828376, "currency": "USD", "decimal": "8283.76"},
        "amount_due": {"amount": 0, "currency": "USD", "decimal": "0.00"},
        "tax_rule": "outside_eu",
        "tax_mention": "",
        "pdf_url": "/api/v1/accounts/1/invoices/9/pdf",
    },
    "credit_notes": [
        {
            "id": 8,
            "kind": "credit_note",
            "number": "CN-2026-000003",
            "status": "paid",
            "issued_at": "2026-03-11T00:00:00Z",
            "due_at": None,
            "paid_at": "2026-03-11T00:00:00Z",
            "refers_to": "2026-000004",
            "currency": "USD",
            "subtotal": {"amount": -126824, "currency": "USD", "decimal": "-1268.24"},
            "tax": {"amount": 0, "currency": "USD", "decimal": "0.00"},
            "total": {"amount": -126824, "currency": "USD", "decimal": "-1268.24"},
            "credit_applied": {"amount": 0, "currency": "USD", "decimal": "0.00"},
            "amount_paid": {"amount": 0, "currency": "USD", "decimal": "0.00"},
            "amount_due": {"amount": 0, "currency": "USD", "decimal": "0.00"},
            "tax_rule": "outside_eu",
            "tax_mention": "",
            "pdf_url": "/api/v1/accounts/1/invoices/8/pdf",
        }
    ],
    "amount_charged": {"amount": 828376, "currency": "USD", "decimal": "8283.76"},
    "credit_created": {"amount": 0, "currency": "USD", "decimal": "0.00"},
    "next_billing_dates": {"webinar": "2027-03-11T00:00:00Z"},
    "message": "",
    "action_url": "",
}

ENTITLEMENT: dict[str, Any] = {
    "email": "carol@acme.example",
    "may_host": True,
    "reason": None,
    "plan": "pro",
    "participant_limit": 1000,
    "features": ["api_access", "custom_branding", "recording", "webcasts"],
    "account": {"id": 1, "name": "Acme Corp"},
    "valid_until": "2027-03-11T00:00:00Z",
}

HISTORY_CSV = (
    "issued_at,type,number,status,currency,subtotal,tax,total,credit_applied,amount_paid,"
    "amount_due\n"
    "2026-03-11T00:00:00Z,invoice,2026-000005,paid,EUR,385.00,77.00,462.00,223.55,238.45,0.00\n"
    "2026-03-11T00:00:00Z,credit_note,CN-2026-000002,credit_applied,EUR,-186.29,-37.26,-223.55,"
    "0.00,0.00,0.00\n"
)

MEMBERS: list[dict[str, Any]] = [
    {
        "user_id": 4,
        "email": "alice@acme.example",
        "first_name": "Alice",
        "last_name": "Anderson",
        "roles": ["billing_contact"],
    },
    {
        "user_id": 5,
        "email": "bob@acme.example",
        "first_name": "Bob",
        "last_name": "Brown",
        "roles": ["admin"],
    },
    {
        "user_id": 6,
        "email": "carol@acme.example",
        "first_name": "Carol",
        "last_name": "Clark",
        "roles": ["organizer"],
    },
]

PAYMENT_METHODS: list[dict[str, Any]] = [
    {
        "id": 1,
        "brand": "Visa",
        "last4": "4242",
        "exp_month": 12,
        "exp_year": 2030,
        "is_default": True,
        "created_at": "2026-01-01T00:00:00Z",
    },
]

POOLS: list[dict[str, Any]] = [
    {
        "subscription_id": 1,
        "product": "webinar",
        "bought": 4,
        "used": 1,
        "free": 3,
        "holders": [
            {"member_id": 3, "email": "carol@acme.example", "assigned_at": "2026-03-11T00:00:00Z"}
        ],
        "releasing": [],
    },
]

#: A 202: the bank's answer is not known yet (or it asks the customer to authenticate: then
#: ``action_url`` is the page to send them to).
CHECKOUT_PLACED: dict[str, Any] = CHECKOUT | {
    "status": "placed",
    "invoice": None,
    "credit_notes": [],
    "amount_charged": {"amount": 0, "currency": "USD", "decimal": "0.00"},
    "message": "The bank has not confirmed the payment yet: do not pay again.",
}
