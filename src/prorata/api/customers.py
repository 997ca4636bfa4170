"""API area "operator": the operator's backend drives billing with an operator API key (issue 17).

``Authorization: Bearer prorata_sk_live_…`` (created by an operator in the console: Operator API
keys). These routes take nothing else, and the key opens nothing else (see
:mod:`prorata.api.operator`). A read-only key reads; a read-and-write key also writes, every write
with an ``Idempotency-Key`` header and audited with the key and the IP.

The key acts at staff level, through the same engine and policy as the billing center and the
console's staff orders (``checkout_place(by_staff=True)``): plan downgrades are allowed, with the
same proration; corporate accounts are ordered for and invoiced with their payment terms. Orders
are priced first (``POST …/quote``) and placed against the quote's fingerprint (``expected``):
a price that moved in between is a 409 ``quote_changed`` with the new summary, nothing written.
A card is never sent here: an order is paid with the customer's saved card (the default one, or
``payment_method_id``), which the customer adds in the billing center after accepting the
invitation.

Lists answer ``{"data", "has_more", "next_cursor"}`` with opaque cursors
(:mod:`prorata.api.pagination`). Amounts are ``{"amount", "currency", "decimal"}`` in integer
minor units, never floats. Field names are stable within ``/api/v1/``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import Http404, HttpResponse
from django.urls import reverse
from ninja import Header, Query, Router, Schema
from pydantic import ConfigDict, Field, StrictInt

from prorata.accounts.billing_details import account_billing_details_update
from prorata.accounts.countries import default_time_zone
from prorata.accounts.models import Account
from prorata.accounts.services import account_create
from prorata.accounts.throttle import client_ip
from prorata.api.billing import (
    PDF_LANGUAGES,
    DocumentDetailOut,
    DocumentOut,
    ListQuery,
    TransactionOut,
    TransactionsQuery,
    documents_list,
    transactions_list,
)
from prorata.api.licenses import PoolOut, pool_out, pools_out
from prorata.api.money import MoneyOut, Out, money
from prorata.api.operator import (
    IDEMPOTENCY_HEADER,
    OPERATOR_AUTH,
    OperatorApiRequest,
    Written,
    documented,
    require_write,
    write,
)
from prorata.api.pagination import Page, cursor_decode, page_of
from prorata.api.schemas import errors
from prorata.api.selectors import (
    customer_contacts,
    customers_page,
    payments_page,
    subscriptions_page,
)
from prorata.api.services import operator_customer_language
from prorata.api.subscriptions import CheckoutOut, SubscriptionOut, SummaryOut
from prorata.billing.models import Document, DocumentKind, Payment
from prorata.billing.receipts import document_pdf
from prorata.billing.selectors import credit_balance, document_for_account
from prorata.common.clock import now
from prorata.licenses.selectors import license_pools_page
from prorata.licenses.services import license_release_choose, member_invite
from prorata.subscriptions.errors import QuoteChanged
from prorata.subscriptions.models import OrderStatus
from prorata.subscriptions.selectors import CheckoutItem, checkout_quote
from prorata.subscriptions.services import (
    checkout_place,
    subscription_cancel_renewal,
    subscription_resume_renewal,
    subscription_start_trial,
)
from prorata_core.errors import ValidationError

router = Router(tags=["operator"], auth=OPERATOR_AUTH)

_KEY_HEADER = Header(
    None, alias=IDEMPOTENCY_HEADER,
    description="Required on every write: a new unique value per change (1-200 characters, a "
                "UUID say), the same one on a retry.")
_READ = errors(401, 404, 422)
_WRITE = errors(400, 401, 403, 404, 409, 422)


class In(Schema):
    """Input: unknown fields are refused (a misspelt field is an error, not ignored)."""

    model_config = ConfigDict(extra="forbid")


# --- the key ------------------------------------------------------------------------------------

class KeyOut(Out):
    """The key this request authenticated with (never its secret)."""

    name: str
    prefix: str
    scope: str
    test_mode: bool
    created_at: datetime
    last_used_at: datetime | None


KEY_EXAMPLE = {"name": "CRM backend", "prefix": "prorata_sk_live_k3j4m5n6p7_…",
               "scope": "read_write", "test_mode": False,
               "created_at": "2026-03-01T09:00:00Z", "last_used_at": "2026-03-11T00:00:00Z"}


@router.get("/key", response={200: KeyOut, **errors(401)},
            summary="The operator API key of this request",
            openapi_extra=documented(KeyOut, KEY_EXAMPLE))
def key(request: OperatorApiRequest) -> KeyOut:
    """Its name, scope (``read_only`` or ``read_write``) and mode (``test_mode``: made while the
    project clock was movable; it works only on such an installation)."""
    row = request.operator_key
    return KeyOut(name=row.name, prefix=row.display, scope=row.scope, test_mode=row.test_mode,
                  created_at=row.created_at, last_used_at=row.last_used_at)


# --- customers ----------------------------------------------------------------------------------

class ContactOut(Out):
    """A person of the account with a billing role, or one invited and not yet joined
    (``status: invited``, ``user_id: null``)."""

    email: str
    status: str = Field(description="'member' or 'invited'.")
    user_id: int | None
    roles: list[str]
    invited_until: datetime | None


class CustomerOut(Out):
    """A customer account. ``currency`` is empty until the first order fixes it;
    ``credit_balance`` is then the credit the next orders use (null before)."""

    id: int
    name: str
    country: str
    language: str
    currency: str
    billing_mode: str
    billing_address: str
    vat_number: str
    billing_email: str
    time_zone: str
    payment_terms_days: int
    created_at: datetime
    credit_balance: MoneyOut | None
    contacts: list[ContactOut]

    @staticmethod
    def of(account: Account) -> CustomerOut:
        members, invitations = customer_contacts(account=account)
        instant = now()
        contacts = [ContactOut(email=m.user.email, status="member", user_id=m.user_id,
                               roles=m.roles, invited_until=None) for m in members]
        contacts += [
            ContactOut(email=i.email, status="invited", user_id=None,
                       roles=[role for role, held in (("billing_contact", i.is_billing_contact),
                                                      ("admin", i.is_admin)) if held],
                       invited_until=i.expires_at)
            for i in invitations if i.status_at(instant) == "pending"
        ]
        return CustomerOut(
            id=account.pk, name=account.name, country=account.country,
            language=account.language, currency=account.currency,
            billing_mode=account.billing_mode, billing_address=account.billing_address,
            vat_number=account.vat_number, billing_email=account.billing_email,
            time_zone=account.time_zone, payment_terms_days=account.payment_terms_days,
            created_at=account.created_at,
            credit_balance=(MoneyOut.of(credit_balance(account, account.currency))
                            if account.currency else None),
            contacts=contacts,
        )


CUSTOMER_EXAMPLE = {
    "id": 42, "name": "Acme SAS", "country": "FR", "language": "fr", "currency": "EUR",
    "billing_mode": "self_service", "billing_address": "1 rue de Rivoli\n75001 Paris",
    "vat_number": "FR40303265045", "billing_email": "compta@acme.example",
    "time_zone": "Europe/Paris", "payment_terms_days": 30, "created_at": "2026-03-11T00:00:00Z",
    "credit_balance": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
    "contacts": [{"email": "jane@acme.example", "status": "invited", "user_id": None,
                  "roles": ["billing_contact", "admin"],
                  "invited_until": "2026-03-18T00:00:00Z"}],
}


class ContactIn(In):
    email: str = Field(max_length=254, description="Invited by e-mail to join as billing "
                                                   "contact and admin.")


class CustomerIn(In):
    """A new customer: the account and its billing contact, invited by e-mail (the invitation
    is in the account's ``language``) to join, add a card and see their invoices."""

    name: str = Field(min_length=1, max_length=200, description="Legal name on documents.")
    country: str = Field(min_length=2, max_length=2, description="ISO 3166 code, e.g. FR.")
    language: str = Field("en", description="'en' or 'fr': e-mails and documents.")
    billing_address: str = Field("", max_length=1000)
    vat_number: str = Field("", max_length=30)
    billing_email: str = Field("", max_length=254)
    time_zone: str = Field("", max_length=64, description="IANA zone; default: the country's.")
    contact: ContactIn


CUSTOMER_BODY = {"name": "Acme SAS", "country": "FR", "language": "fr",
                 "billing_address": "1 rue de Rivoli\n75001 Paris",
                 "vat_number": "FR40303265045", "billing_email": "compta@acme.example",
                 "contact": {"email": "jane@acme.example"}}


class CustomerPatch(In):
    """Only the fields sent change; documents already issued keep the details they had."""

    name: str | None = Field(None, min_length=1, max_length=200)
    country: str | None = Field(None, min_length=2, max_length=2)
    language: str | None = None
    billing_address: str | None = Field(None, max_length=1000)
    vat_number: str | None = Field(None, max_length=30)
    billing_email: str | None = Field(None, max_length=254)
    time_zone: str | None = Field(None, max_length=64)


class CustomersQuery(ListQuery):
    email: str | None = Field(None, max_length=254,
                              description="A member's, an invited person's or the billing "
                                          "e-mail address (exact, any case).")
    name: str | None = Field(None, max_length=200, description="Part of the name (any case).")


def _customer(customer_id: int) -> Account:
    account = Account.objects.filter(pk=customer_id).first()
    if account is None:
        raise Http404("No such customer")
    return account


def _ip(request: OperatorApiRequest) -> str | None:
    return client_ip(request)


def _page_example(item: dict[str, Any]) -> dict[str, Any]:
    return {"data": [item], "has_more": True, "next_cursor": "AQAAAAAAAAAAAAAAAAAAACrB9kD1ZQm8"}


@router.get("/customers", response={200: Page[CustomerOut], **_READ},
            summary="Find customers (by e-mail address or name), oldest first",
            openapi_extra=documented(Page[CustomerOut], _page_example(CUSTOMER_EXAMPLE)))
def customers(request: OperatorApiRequest, filters: Query[CustomersQuery]) -> dict[str, Any]:
    email = (filters.email or "").strip().lower() or None
    name = (filters.name or "").strip() or None
    scope = f"customers:{email or ''}:{name or ''}"
    after = cursor_decode(scope, filters.cursor)[1] if filters.cursor else None
    rows = customers_page(email=email, name=name, after_id=after, limit=filters.limit)
    return page_of(rows, limit=filters.limit, scope=scope, position=lambda a: (None, a.pk),
                   out=CustomerOut.of)


@router.post("/customers", response={201: CustomerOut, **_WRITE},
             summary="Create a customer and invite its billing contact",
             openapi_extra=documented(CustomerOut, CUSTOMER_EXAMPLE, status=201,
                                      body=CUSTOMER_BODY, body_schema=CustomerIn))
def customer_create(request: OperatorApiRequest, body: CustomerIn,
                    idempotency_key: str | None = _KEY_HEADER) -> HttpResponse:
    """The account is self-service (it pays by card); its contact gets an invitation e-mail
    (valid 7 days) to join as billing contact and admin. Refusals (a bad VAT number, country,
    address…) create nothing."""

    def run() -> Written:
        principal = request.auth_user
        if body.language not in dict(settings.LANGUAGES):
            raise ValidationError("language is 'en' or 'fr'.", field="language")
        country = body.country.strip().upper()
        account = account_create(name=body.name, country=country, actor=principal,
                                 language=body.language)
        account = account_billing_details_update(
            account=account, actor=principal, name=body.name,
            billing_address=body.billing_address, country=country, vat_number=body.vat_number,
            billing_email=body.billing_email,
            time_zone=body.time_zone or default_time_zone(country), ip=_ip(request))
        member_invite(actor=principal, account=account, email=body.contact.email, admin=True,
                      billing_contact=True, ip=_ip(request),
                      inviter=settings.PRORATA_SELLER_NAME)
        return Written(201, CustomerOut.of(account), account, account)

    return write(request, idempotency_key, "customer.create", run)


@router.get("/customers/{customer_id}", response={200: CustomerOut, **_READ},
            summary="One customer", openapi_extra=documented(CustomerOut, CUSTOMER_EXAMPLE))
def customer(request: OperatorApiRequest, customer_id: int) -> CustomerOut:
    return CustomerOut.of(_customer(customer_id))


@router.patch("/customers/{customer_id}", response={200: CustomerOut, **_WRITE},
              summary="Update a customer's billing details or language",
              openapi_extra=documented(CustomerOut, CUSTOMER_EXAMPLE,
                                       body={"billing_address": "2 rue de Rivoli\n75001 Paris"},
                                       body_schema=CustomerPatch))
def customer_update(request: OperatorApiRequest, customer_id: int, body: CustomerPatch,
                    idempotency_key: str | None = _KEY_HEADER) -> HttpResponse:
    """The same checks as the billing center's Billing details page; audited."""
    account = _customer(customer_id)
    require_write(request)

    def run() -> Written:
        fields = body.model_dump(exclude_unset=True)
        if any(value is None for value in fields.values()):
            raise ValidationError("A field sent cannot be null: leave it out to keep it.",
                                  field=next(k for k, v in fields.items() if v is None))
        current = Account.objects.get(pk=account.pk)
        if "language" in fields:
            current = operator_customer_language(account=current, language=fields["language"],
                                                 actor=request.auth_user, ip=_ip(request))
        details = {"name", "country", "billing_address", "vat_number", "billing_email",
                   "time_zone"}
        if details & set(fields):
            current = account_billing_details_update(
                account=current, actor=request.auth_user,
                name=fields.get("name", current.name),
                billing_address=fields.get("billing_address", current.billing_address),
                country=fields.get("country", current.country),
                vat_number=fields.get("vat_number", current.vat_number),
                billing_email=fields.get("billing_email", current.billing_email),
                time_zone=fields.get("time_zone", current.time_zone), ip=_ip(request))
        return Written(200, CustomerOut.of(current), current, current)

    return write(request, idempotency_key, "customer.update", run)


@router.post("/customers/{customer_id}/contacts", response={201: CustomerOut, **_WRITE},
             summary="Invite another billing contact by e-mail",
             openapi_extra=documented(CustomerOut, CUSTOMER_EXAMPLE, status=201,
                                      body={"email": "ben@acme.example"}, body_schema=ContactIn))
def contact_invite(request: OperatorApiRequest, customer_id: int, body: ContactIn,
                   idempotency_key: str | None = _KEY_HEADER) -> HttpResponse:
    """A newer invitation of the same address replaces the pending one; a member's address is
    a 409 ``already_member``."""
    account = _customer(customer_id)

    def run() -> Written:
        member_invite(actor=request.auth_user, account=account, email=body.email, admin=True,
                      billing_contact=True, ip=_ip(request),
                      inviter=settings.PRORATA_SELLER_NAME)
        return Written(201, CustomerOut.of(account), account, account)

    return write(request, idempotency_key, "customer.invite", run)


# --- subscriptions: trials, quotes, orders, renewal ---------------------------------------------

SUBSCRIPTION_EXAMPLE = {
    "id": 7, "product": "webinar", "product_name": "Webinar", "plan": "pro",
    "plan_name": "Pro", "cycle": "monthly", "quantity": 3, "status": "active",
    "auto_renew": True, "unit_amount": {"amount": 4900, "currency": "EUR", "decimal": "49.00"},
    "invoiced_amount": {"amount": 17640, "currency": "EUR", "decimal": "176.40"},
    "period_start": "2026-03-11T00:00:00Z", "period_end": "2026-04-11T00:00:00Z",
    "next_billing_date": "2026-04-11T00:00:00Z",
}


class TrialIn(In):
    product_code: str = Field(max_length=64)
    plan_code: str = Field("free_trial", max_length=64, description="A plan with trial days.")


@router.post("/customers/{customer_id}/trials", response={201: SubscriptionOut, **_WRITE},
             summary="Start a free trial",
             openapi_extra=documented(SubscriptionOut, SUBSCRIPTION_EXAMPLE | {
                 "plan": "free_trial", "plan_name": "Free trial", "quantity": 1,
                 "status": "trialing", "auto_renew": False,
                 "unit_amount": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
                 "invoiced_amount": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
                 "period_end": "2026-03-25T00:00:00Z",
                 "next_billing_date": "2026-03-25T00:00:00Z"}, status=201,
                 body={"product_code": "webinar", "plan_code": "free_trial"},
                 body_schema=TrialIn))
def trial_start(request: OperatorApiRequest, customer_id: int, body: TrialIn,
                idempotency_key: str | None = _KEY_HEADER) -> HttpResponse:
    """One license for the plan's trial days, nothing invoiced; an order then buys a plan (from
    the trial: a first purchase), or the trial expires. A product already subscribed is
    refused (422)."""
    account = _customer(customer_id)

    def run() -> Written:
        row = subscription_start_trial(account=account, product_code=body.product_code,
                                       plan_code=body.plan_code, actor=request.auth_user)
        row = type(row).objects.select_related("product", "plan", "cycle").get(pk=row.pk)
        return Written(201, SubscriptionOut.of(row), account, row)

    return write(request, idempotency_key, "subscription.start_trial", run)


class ItemIn(In):
    product_code: str = Field(max_length=64)
    plan_code: str = Field(max_length=64)
    cycle_code: str = Field(max_length=64)
    quantity: int = Field(ge=1, le=1_000_000, strict=True,
                          description="Licenses (an integer: true is not 1).")


class QuoteIn(In):
    items: list[ItemIn] = Field(min_length=1, max_length=20)


ITEM_BODY = {"product_code": "webinar", "plan_code": "pro", "cycle_code": "monthly",
             "quantity": 3}
SUMMARY_EXAMPLE: dict[str, Any] = {
    "at": "2026-03-11T00:00:00Z", "currency": "EUR",
    "tax": {"rate_bp": 2000, "rule": "domestic", "country": "FR", "mention": None},
    "credit_balance": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
    "items": [{
        "product": "webinar", "product_name": "Webinar", "kind": "purchase",
        "fingerprint": "6f1c0d2e9a", "subscription_id": 7, "changes": ["plan"],
        "configuration": {"plan": "pro", "plan_name": "Pro", "cycle": "monthly", "quantity": 3,
                          "unit_amount": {"amount": 4900, "currency": "EUR",
                                          "decimal": "49.00"}},
        "previous": None, "currency": "EUR",
        "period": {"start": "2026-03-11T00:00:00Z", "end": "2026-04-11T00:00:00Z"},
        "next_billing_date": "2026-04-11T00:00:00Z",
        "lines": [{"kind": "charge", "description": "Webinar Pro, monthly × 3",
                   "plan_code": "pro", "cycle_code": "monthly",
                   "period_start": "2026-03-11T00:00:00Z", "period_end": "2026-04-11T00:00:00Z",
                   "quantity": 3,
                   "unit_amount": {"amount": 4900, "currency": "EUR", "decimal": "49.00"},
                   "ratio": "1/1",
                   "amount": {"amount": 14700, "currency": "EUR", "decimal": "147.00"},
                   "tax_rate_bp": 2000,
                   "tax": {"amount": 2940, "currency": "EUR", "decimal": "29.40"}}],
        "totals": {"subtotal": {"amount": 14700, "currency": "EUR", "decimal": "147.00"},
                   "tax": {"amount": 2940, "currency": "EUR", "decimal": "29.40"},
                   "total": {"amount": 17640, "currency": "EUR", "decimal": "176.40"},
                   "credit_applied": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
                   "amount_due": {"amount": 17640, "currency": "EUR", "decimal": "176.40"},
                   "credit_created": {"amount": 0, "currency": "EUR", "decimal": "0.00"}},
        "credit_balance": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
    }],
    "totals": {"subtotal": {"amount": 14700, "currency": "EUR", "decimal": "147.00"},
               "tax": {"amount": 2940, "currency": "EUR", "decimal": "29.40"},
               "total": {"amount": 17640, "currency": "EUR", "decimal": "176.40"},
               "credit_applied": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
               "amount_due": {"amount": 17640, "currency": "EUR", "decimal": "176.40"},
               "credit_created": {"amount": 0, "currency": "EUR", "decimal": "0.00"}},
    "expected": ["6f1c0d2e9a"],
}


def _items(items: list[ItemIn]) -> list[CheckoutItem]:
    return [CheckoutItem(i.product_code, i.plan_code, i.cycle_code, i.quantity) for i in items]


@router.post("/customers/{customer_id}/quote",
             response={200: SummaryOut, **errors(401, 403, 404, 409, 422)},
             summary="Price an order for the customer (nothing is saved)",
             openapi_extra=documented(SummaryOut, SUMMARY_EXAMPLE, body={"items": [ITEM_BODY]},
                                      body_schema=QuoteIn))
def quote(request: OperatorApiRequest, customer_id: int, body: QuoteIn) -> SummaryOut:
    """The order summary at staff level: a first purchase, a change (an upgrade or a
    downgrade, with the same proration: a credit for the unused time, a full new period from
    now), tax, and the account's credit. ``expected`` is what the order sends back. A read-only
    key is refused (403): quoting is the first step of a write."""
    account = _customer(customer_id)
    require_write(request)
    return SummaryOut.of(checkout_quote(account=account, user=request.auth_user,
                                        items=_items(body.items), by_staff=True))


class OrderIn(In):
    """``items`` exactly as quoted, and the quote's ``expected`` fingerprints. When money is
    due, the customer's saved card ``payment_method_id`` is charged, else their default card
    (422 ``payment_method_required`` if they have none yet). A corporate account is invoiced
    with its payment terms instead."""

    items: list[ItemIn] = Field(min_length=1, max_length=20)
    expected: list[str] = Field(min_length=1, max_length=20)
    payment_method_id: int | None = Field(None, strict=True)


ORDER_EXAMPLE = {
    "order_id": 12, "status": "paid",
    "invoice": {"id": 31, "kind": "invoice", "number": "INV-2026-000031", "status": "paid",
                "issued_at": "2026-03-11T00:00:00Z", "due_at": None,
                "paid_at": "2026-03-11T00:00:00Z", "refers_to": None, "currency": "EUR",
                "subtotal": {"amount": 14700, "currency": "EUR", "decimal": "147.00"},
                "tax": {"amount": 2940, "currency": "EUR", "decimal": "29.40"},
                "total": {"amount": 17640, "currency": "EUR", "decimal": "176.40"},
                "credit_applied": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
                "amount_paid": {"amount": 17640, "currency": "EUR", "decimal": "176.40"},
                "amount_due": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
                "tax_rule": "domestic", "tax_mention": "",
                "pdf_url": "/api/v1/customers/42/invoices/31/pdf"},
    "credit_notes": [],
    "amount_charged": {"amount": 17640, "currency": "EUR", "decimal": "176.40"},
    "credit_created": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
    "next_billing_dates": {"webinar": "2026-04-11T00:00:00Z"},
    "message": "",
}


def _document_url(document: Document) -> str:
    kind = "credit_note_pdf" if document.kind == DocumentKind.CREDIT_NOTE else "invoice_pdf"
    return reverse(f"api-v1:operator_{kind}",
                   kwargs={"customer_id": document.account_id, "document_id": document.pk})


@router.post("/customers/{customer_id}/orders",
             response={201: CheckoutOut, 202: CheckoutOut,
                       **errors(400, 401, 402, 403, 404, 409, 422)},
             summary="Place an order: a purchase or a change (upgrade or downgrade)",
             openapi_extra=documented(CheckoutOut, ORDER_EXAMPLE, status=201,
                                      body={"items": [ITEM_BODY], "expected": ["6f1c0d2e9a"]},
                                      body_schema=OrderIn, more={202: ORDER_EXAMPLE | {
                                          "status": "placed", "invoice": None,
                                          "amount_charged": {"amount": 0, "currency": "EUR",
                                                             "decimal": "0.00"},
                                          "message": "The bank has not confirmed the payment "
                                                     "yet: do not pay again."}}))
def order(request: OperatorApiRequest, customer_id: int, body: OrderIn,
          idempotency_key: str | None = _KEY_HEADER) -> HttpResponse:
    """Priced again now through the one engine, it must be exactly the quote (``expected``),
    else 409 ``quote_changed`` with the new summary in ``params.summary`` and nothing written.
    A refused card is a 402 (``payment_declined``, ``insufficient_funds``): nothing changed but
    the failed attempt. Answers 201 (``paid``, or ``invoiced`` for a corporate account) or 202
    (``placed``: the bank's answer is being confirmed; do not order again). The customer gets
    the billing center's own confirmation and receipt."""
    account = _customer(customer_id)
    require_write(request)

    def run() -> Written:
        try:
            result = checkout_place(
                account=account, user=request.auth_user,
                idempotency_key=f"operator:{(idempotency_key or '').strip()}",
                expected=body.expected, items=_items(body.items),
                payment_method_id=body.payment_method_id, by_staff=True)
        except QuoteChanged as exc:
            exc.params = {**exc.params,
                          "summary": SummaryOut.of(exc.quote).model_dump(mode="json")}
            raise
        out = CheckoutOut.of(result)
        out.invoice = (DocumentOut.of(result.invoice, _document_url(result.invoice))
                       if result.invoice is not None else None)
        out.credit_notes = [DocumentOut.of(n, _document_url(n)) for n in result.credit_notes]
        status = 202 if result.status == OrderStatus.PLACED else 201
        return Written(status, out, account, result.order)

    return write(request, idempotency_key, "order.place", run, atomic=False)


class SubscriptionsQuery(ListQuery):
    pass


@router.get("/customers/{customer_id}/subscriptions",
            response={200: Page[SubscriptionOut], **_READ},
            summary="The customer's subscriptions, oldest first",
            openapi_extra=documented(Page[SubscriptionOut],
                                     _page_example(SUBSCRIPTION_EXAMPLE)))
def subscriptions(request: OperatorApiRequest, customer_id: int,
                  filters: Query[SubscriptionsQuery]) -> dict[str, Any]:
    account = _customer(customer_id)
    scope = f"customer.subscriptions:{account.pk}"
    after = cursor_decode(scope, filters.cursor)[1] if filters.cursor else None
    rows = subscriptions_page(account=account, after_id=after, limit=filters.limit)
    return page_of(rows, limit=filters.limit, scope=scope, position=lambda s: (None, s.pk),
                   out=SubscriptionOut.of)


class RenewalIn(In):
    reason: str = Field("", max_length=1000, description="Kept in the history and audit log.")


def _renewal(request: OperatorApiRequest, customer_id: int, product_code: str,
             idempotency_key: str | None, *, cancel: bool, reason: str = "") -> HttpResponse:
    account = _customer(customer_id)

    def run() -> Written:
        if cancel:
            row = subscription_cancel_renewal(account=account, user=request.auth_user,
                                              product_code=product_code, reason=reason,
                                              by_staff=True)
        else:
            row = subscription_resume_renewal(account=account, user=request.auth_user,
                                              product_code=product_code, by_staff=True)
        row = type(row).objects.select_related("product", "plan", "cycle").get(pk=row.pk)
        return Written(200, SubscriptionOut.of(row), account, row)

    operation = "subscription.cancel_renewal" if cancel else "subscription.resume_renewal"
    return write(request, idempotency_key, operation, run)


@router.post("/customers/{customer_id}/subscriptions/{product_code}/cancel-renewal",
             response={200: SubscriptionOut, **_WRITE},
             summary="Cancel the next renewal: active to the end of the paid period",
             openapi_extra=documented(SubscriptionOut, SUBSCRIPTION_EXAMPLE | {
                 "auto_renew": False}, body={"reason": "Moving to another tool"},
                 body_schema=RenewalIn))
def cancel_renewal(request: OperatorApiRequest, customer_id: int, product_code: str,
                   body: RenewalIn, idempotency_key: str | None = _KEY_HEADER) -> HttpResponse:
    """Idempotent; the billing contacts get the confirmation e-mail. Only an active (or past
    due) subscription renews: a trial is refused (409 ``change_refused``)."""
    return _renewal(request, customer_id, product_code, idempotency_key, cancel=True,
                    reason=body.reason)


@router.post("/customers/{customer_id}/subscriptions/{product_code}/resume-renewal",
             response={200: SubscriptionOut, **_WRITE},
             summary="Resume a cancelled renewal before the period ends",
             openapi_extra=documented(SubscriptionOut, SUBSCRIPTION_EXAMPLE))
def resume_renewal(request: OperatorApiRequest, customer_id: int, product_code: str,
                   idempotency_key: str | None = _KEY_HEADER) -> HttpResponse:
    """Idempotent; the billing contacts get the confirmation e-mail."""
    return _renewal(request, customer_id, product_code, idempotency_key, cancel=False)


# --- licenses ----------------------------------------------------------------------------------

POOL_EXAMPLE = {
    "subscription_id": 7, "product": "webinar", "bought": 3, "used": 3, "free": 0,
    "holders": [{"member_id": 11, "email": "jane@acme.example",
                 "assigned_at": "2026-03-11T09:30:00Z"},
                {"member_id": 12, "email": "paul@acme.example",
                 "assigned_at": "2026-03-12T14:00:00Z"},
                {"member_id": 13, "email": "lea@acme.example",
                 "assigned_at": "2026-03-12T14:05:00Z"}],
    "releasing": ["paul@acme.example"],
}


class LicensesQuery(ListQuery):
    pass


@router.get("/customers/{customer_id}/licenses", response={200: Page[PoolOut], **_READ},
            summary="The customer's license pools: bought, used, who holds each license",
            openapi_extra=documented(Page[PoolOut], _page_example(POOL_EXAMPLE)))
def licenses(request: OperatorApiRequest, customer_id: int,
             filters: Query[LicensesQuery]) -> dict[str, Any]:
    """One pool per subscription, by subscription id; ``releasing`` names the members chosen
    to lose their license at the next order for that product."""
    account = _customer(customer_id)
    scope = f"customer.licenses:{account.pk}"
    after = cursor_decode(scope, filters.cursor)[1] if filters.cursor else None
    rows = license_pools_page(account=account, after_id=after, limit=filters.limit)
    return page_of(rows, limit=filters.limit, scope=scope,
                   position=lambda pool: (None, pool.subscription.pk),
                   out=lambda pool: pool_out(account, pool))


class ReleasesBody(In):
    """The license count the next order will leave, and the members (ids of
    ``holders[].member_id``) who lose their license when it is placed."""

    quantity: StrictInt = Field(ge=1, le=100_000)
    member_ids: list[StrictInt] = Field(max_length=100_000)


@router.put("/customers/{customer_id}/subscriptions/{product_code}/license-releases",
            response={200: Page[PoolOut], **_WRITE},
            summary="Choose who loses a license before an order that leaves fewer licenses",
            openapi_extra=documented(Page[PoolOut], {"data": [POOL_EXAMPLE], "has_more": False,
                                                      "next_cursor": None},
                                     body={"quantity": 2, "member_ids": [12]},
                                     body_schema=ReleasesBody))
def license_releases(request: OperatorApiRequest, customer_id: int, product_code: str,
                     body: ReleasesBody,
                     idempotency_key: str | None = _KEY_HEADER) -> HttpResponse:
    """An order that leaves fewer licenses than members hold is refused with 409
    ``licenses_to_free`` (``params.to_free``: how many to choose) until this choice is made.
    It replaces an earlier choice; nothing is unassigned until the order is placed, and then
    in its transaction (the members are e-mailed; ``license.unassigned`` events). 409
    ``licenses_to_free`` here too when fewer holders are named than must be freed; with
    enough licenses the choice is cleared. Answers every pool of the customer."""
    account = _customer(customer_id)

    def run() -> Written:
        license_release_choose(actor=request.auth_user, account=account,
                               product_code=product_code, quantity=body.quantity,
                               member_ids=body.member_ids)
        pools = pools_out(account)
        return Written(200, Page[PoolOut](data=pools, has_more=False, next_cursor=None),
                       account)

    return write(request, idempotency_key, "license.releases_choose", run)


# --- documents, payments, ledger ----------------------------------------------------------------

DOCUMENT_EXAMPLE = ORDER_EXAMPLE["invoice"]
CREDIT_NOTE_EXAMPLE = DOCUMENT_EXAMPLE | {
    "id": 32, "kind": "credit_note", "number": "CN-2026-000032", "status": "paid",
    "refers_to": "INV-2026-000031",
    "subtotal": {"amount": -4900, "currency": "EUR", "decimal": "-49.00"},
    "tax": {"amount": -980, "currency": "EUR", "decimal": "-9.80"},
    "total": {"amount": -5880, "currency": "EUR", "decimal": "-58.80"},
    "amount_paid": {"amount": 0, "currency": "EUR", "decimal": "0.00"},
    "pdf_url": "/api/v1/customers/42/credit-notes/32/pdf"}
DETAIL_EXTRA = {
    "lines": [{"kind": "charge", "description": "Webinar Pro, monthly × 3",
               "period_start": "2026-03-11T00:00:00Z", "period_end": "2026-04-11T00:00:00Z",
               "quantity": 3,
               "unit_amount": {"amount": 4900, "currency": "EUR", "decimal": "49.00"},
               "ratio": "1/1", "amount": {"amount": 14700, "currency": "EUR", "decimal": "147.00"},
               "tax_rate_bp": 2000, "tax": {"amount": 2940, "currency": "EUR", "decimal": "29.40"}}],
    "seller": {"name": "Prorata Webinars SAS", "country": "FR"},
    "buyer": {"name": "Acme SAS", "country": "FR"},
}
PDF_RESPONSE = {"responses": {"200": {
    "description": "The PDF (Content-Disposition names the file)",
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"},
                                    "example": "%PDF-1.7 …"}}}}}


def _kind_document(customer_id: int, document_id: int, kind: str) -> tuple[Account, Document]:
    account = _customer(customer_id)
    document = document_for_account(account=account, document_id=document_id)
    if document is None or document.kind != kind:
        raise Http404("No such document")
    return account, document


def _pdf(request: OperatorApiRequest, customer_id: int, document_id: int, kind: str,
         language: str | None) -> HttpResponse:
    account, document = _kind_document(customer_id, document_id, kind)
    language = language or account.language
    if language not in PDF_LANGUAGES:
        raise ValidationError("language is 'en' or 'fr'.", language=language)
    filename, pdf = document_pdf(document=document, language=language)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


_LANGUAGE = Query(None, description="'en' or 'fr' (default: the customer's language)")


@router.get("/customers/{customer_id}/invoices", response={200: Page[DocumentOut], **_READ},
            summary="The customer's invoices, newest first",
            openapi_extra=documented(Page[DocumentOut], _page_example(DOCUMENT_EXAMPLE)))
def invoices(request: OperatorApiRequest, customer_id: int,
             filters: Query[ListQuery]) -> dict[str, Any]:
    return documents_list(_customer(customer_id), kind=DocumentKind.INVOICE, filters=filters,
                          scope="customer.documents", pdf_url=_document_url)


@router.get("/customers/{customer_id}/invoices/{document_id}",
            response={200: DocumentDetailOut, **_READ}, summary="One invoice, with its lines",
            openapi_extra=documented(DocumentDetailOut, DOCUMENT_EXAMPLE | DETAIL_EXTRA))
def invoice(request: OperatorApiRequest, customer_id: int,
            document_id: int) -> DocumentDetailOut:
    _, document = _kind_document(customer_id, document_id, DocumentKind.INVOICE)
    return DocumentDetailOut.of(document, _document_url(document))


@router.get("/customers/{customer_id}/invoices/{document_id}/pdf", response=_READ,
            url_name="operator_invoice_pdf", summary="One invoice as PDF",
            openapi_extra=PDF_RESPONSE)
def invoice_pdf(request: OperatorApiRequest, customer_id: int, document_id: int,
                language: str | None = _LANGUAGE) -> HttpResponse:
    return _pdf(request, customer_id, document_id, DocumentKind.INVOICE, language)


@router.get("/customers/{customer_id}/credit-notes", response={200: Page[DocumentOut], **_READ},
            summary="The customer's credit notes, newest first",
            openapi_extra=documented(Page[DocumentOut], _page_example(CREDIT_NOTE_EXAMPLE)))
def credit_notes(request: OperatorApiRequest, customer_id: int,
                 filters: Query[ListQuery]) -> dict[str, Any]:
    """A credit note's amounts are negative; ``refers_to`` is the invoice it corrects."""
    return documents_list(_customer(customer_id), kind=DocumentKind.CREDIT_NOTE,
                          filters=filters, scope="customer.documents", pdf_url=_document_url)


@router.get("/customers/{customer_id}/credit-notes/{document_id}",
            response={200: DocumentDetailOut, **_READ},
            summary="One credit note, with its lines",
            openapi_extra=documented(DocumentDetailOut, CREDIT_NOTE_EXAMPLE | DETAIL_EXTRA))
def credit_note(request: OperatorApiRequest, customer_id: int,
                document_id: int) -> DocumentDetailOut:
    _, document = _kind_document(customer_id, document_id, DocumentKind.CREDIT_NOTE)
    return DocumentDetailOut.of(document, _document_url(document))


@router.get("/customers/{customer_id}/credit-notes/{document_id}/pdf", response=_READ,
            url_name="operator_credit_note_pdf", summary="One credit note as PDF",
            openapi_extra=PDF_RESPONSE)
def credit_note_pdf(request: OperatorApiRequest, customer_id: int, document_id: int,
                    language: str | None = _LANGUAGE) -> HttpResponse:
    return _pdf(request, customer_id, document_id, DocumentKind.CREDIT_NOTE, language)


class PaymentOut(Out):
    """A card charge or a transfer: ``status`` ``pending``, ``succeeded``, ``failed`` (with the
    bank's ``failure_code`` and ``message``) or ``unknown`` (being reconciled: never charged
    again blindly). ``invoice`` is the number of the invoice it pays, when there is one."""

    id: int
    status: str
    method: str
    method_label: str
    amount: MoneyOut
    invoice: str | None
    attempt: int
    failure_code: str
    message: str
    created_at: datetime
    completed_at: datetime | None

    @staticmethod
    def of(payment: Payment) -> PaymentOut:
        invoice = payment.invoice
        return PaymentOut(
            id=payment.pk, status=payment.status, method=payment.method,
            method_label=payment.method_label, amount=money(payment.amount, payment.currency),
            invoice=invoice.number if invoice is not None else None, attempt=payment.attempt,
            failure_code=payment.failure_code, message=payment.message,
            created_at=payment.created_at, completed_at=payment.completed_at)


PAYMENT_EXAMPLE = {"id": 5, "status": "succeeded", "method": "card",
                   "method_label": "Visa •••• 4242",
                   "amount": {"amount": 17640, "currency": "EUR", "decimal": "176.40"},
                   "invoice": "INV-2026-000031", "attempt": 1, "failure_code": "",
                   "message": "", "created_at": "2026-03-11T00:00:00Z",
                   "completed_at": "2026-03-11T00:00:01Z"}


@router.get("/customers/{customer_id}/payments", response={200: Page[PaymentOut], **_READ},
            summary="The customer's payments and attempts, newest first",
            openapi_extra=documented(Page[PaymentOut], _page_example(PAYMENT_EXAMPLE)))
def payments(request: OperatorApiRequest, customer_id: int,
             filters: Query[ListQuery]) -> dict[str, Any]:
    account = _customer(customer_id)
    scope = f"customer.payments:{account.pk}"
    after = cursor_decode(scope, filters.cursor) if filters.cursor else None
    rows = payments_page(account=account, after=after, limit=filters.limit)
    return page_of(rows, limit=filters.limit, scope=scope,
                   position=lambda p: (p.created_at, p.pk), out=PaymentOut.of)


LEDGER_EXAMPLE = {"id": 88, "at": "2026-03-11T00:00:00Z", "kind": "payment",
                  "amount": {"amount": 17640, "currency": "EUR", "decimal": "176.40"},
                  "memo": "Payment of INV-2026-000031 (Visa •••• 4242)",
                  "document": {"id": 31, "kind": "invoice", "number": "INV-2026-000031",
                               "pdf_url": "/api/v1/customers/42/invoices/31/pdf"}}


@router.get("/customers/{customer_id}/ledger", response={200: Page[TransactionOut], **_READ},
            summary="The customer's ledger entries, newest first",
            openapi_extra=documented(Page[TransactionOut], _page_example(LEDGER_EXAMPLE)))
def ledger(request: OperatorApiRequest, customer_id: int,
           filters: Query[TransactionsQuery]) -> dict[str, Any]:
    """Every charge (invoice, negative), credit (credit note), payment and refund; ``amount``
    is signed in the customer's favour. Filters as the account's transactions."""
    return transactions_list(_customer(customer_id), filters, scope="customer.ledger",
                             pdf_url=_document_url)
