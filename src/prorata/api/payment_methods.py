"""API area "payment methods": the account's saved cards (S20).

A card number is never returned, stored or logged: a card is added by sending its details once
(the gateway tokenises them) and is shown afterwards by brand, last four digits and expiry. An id
of another account's card (or of a removed one) is a 404 ``payment_method_not_found``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from prorata.accounts.permissions import Action, account_for
from prorata.api import examples
from prorata.api.auth import ApiRequest
from prorata.api.billing import ListQuery
from prorata.api.money import Out
from prorata.api.operator import documented
from prorata.api.pagination import Page, cursor_decode, page_of
from prorata.api.schemas import errors
from prorata.api.selectors import AFTER_DEFAULT, payment_methods_page
from prorata.payments.models import PaymentMethod
from prorata.payments.services import (
    payment_method_add,
    payment_method_remove,
    payment_method_set_default,
)

router = Router(tags=["payment methods"])


class PaymentMethodOut(Out):
    id: int
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    is_default: bool
    created_at: datetime

    @staticmethod
    def of(method: PaymentMethod) -> PaymentMethodOut:
        return PaymentMethodOut(id=method.pk, brand=method.brand, last4=method.last4,
                                exp_month=method.exp_month, exp_year=method.exp_year,
                                is_default=method.is_default, created_at=method.created_at)


class PaymentMethodIn(Schema):
    """A card, as the single-use ``token`` that the gateway's card form gave the browser (the
    card number is sent to the gateway, never here; with the sandbox gateway, its test cards:
    4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined when charged).
    ``make_default``: renewals charge it from now on (the account's first card is its default
    anyway)."""

    token: str = Field(min_length=1, max_length=200)
    make_default: bool = True


@router.get("/accounts/{account_id}/payment-methods",
            response={200: Page[PaymentMethodOut], **errors(401, 403, 404, 422)},
            summary="The account's saved cards, the default first, then newest first (paginated)",
            openapi_extra=documented(Page[PaymentMethodOut], examples.page(examples.PAYMENT_METHODS)))
def payment_methods(request: ApiRequest, account_id: int,
                    filters: Query[ListQuery]) -> dict[str, Any]:
    """The list envelope: ``data``, ``has_more``, ``next_cursor`` (opaque; pass it back as
    ``cursor``)."""
    account = account_for(request.auth_user, account_id, Action.VIEW_BILLING)
    scope = f"account.payment_methods:{account.pk}"
    after = cursor_decode(scope, filters.cursor) if filters.cursor else None
    rows = payment_methods_page(account=account, after=after, limit=filters.limit)
    return page_of(rows, limit=filters.limit, scope=scope,
                   position=lambda m: AFTER_DEFAULT if m.is_default else (m.created_at, m.pk),
                   out=PaymentMethodOut.of)


@router.post("/accounts/{account_id}/payment-methods",
             response={201: PaymentMethodOut, **errors(401, 403, 404, 409, 422)},
             summary="Save a card",
             openapi_extra=documented(PaymentMethodOut, examples.PAYMENT_METHOD, status=201,
                                      body={"token": "tok_sandbox_9b539935355935a64d46a090"},
                                      body_schema=PaymentMethodIn))
def payment_method_create(
    request: ApiRequest, account_id: int, body: PaymentMethodIn
) -> Status[PaymentMethodOut]:
    """A token the gateway does not know, already used or expired is a 422
    ``card_token_invalid``; nothing is saved. A corporate account pays by bank transfer: 409
    ``corporate_pays_by_transfer``."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_BILLING)
    method = payment_method_add(account=account, token=body.token, make_default=body.make_default,
                                actor=request.auth_user)
    return Status(201, PaymentMethodOut.of(method))


@router.post("/accounts/{account_id}/payment-methods/{payment_method_id}/default",
             response={200: PaymentMethodOut, **errors(401, 403, 404, 422)},
             summary="Make a saved card the default (the one renewals charge)",
             openapi_extra=documented(PaymentMethodOut, examples.PAYMENT_METHOD))
def payment_method_default(
    request: ApiRequest, account_id: int, payment_method_id: int
) -> PaymentMethodOut:
    account = account_for(request.auth_user, account_id, Action.MANAGE_BILLING)
    return PaymentMethodOut.of(payment_method_set_default(
        account=account, payment_method_id=payment_method_id, actor=request.auth_user))


@router.delete("/accounts/{account_id}/payment-methods/{payment_method_id}",
               response={204: None, **errors(401, 403, 404, 422)},
               summary="Remove a saved card")
def payment_method_delete(
    request: ApiRequest, account_id: int, payment_method_id: int
) -> Status[None]:
    """If it was the default, the most recently added remaining card becomes the default."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_BILLING)
    payment_method_remove(account=account, payment_method_id=payment_method_id,
                          actor=request.auth_user)
    return Status(204, None)
