"""API area "licenses": an account's license pools, assigning and unassigning them, and the
choice of who loses a license before an order that leaves fewer licenses than are assigned
(issue 13: the API's checkout answers 409 ``licenses_to_free`` until this choice is made).

Billing contacts and account admins (``Action.MANAGE_LICENSES``), as on the Licenses page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Query, Router, Schema
from pydantic import Field, StrictInt

from prorata.accounts.models import Account
from prorata.accounts.permissions import Action, account_for
from prorata.api import examples
from prorata.api.auth import ApiRequest
from prorata.api.billing import ListQuery
from prorata.api.operator import documented
from prorata.api.pagination import Page, cursor_decode, page_of
from prorata.api.schemas import errors
from prorata.licenses.selectors import Pool, license_pools, license_pools_page
from prorata.licenses.services import (
    license_assign,
    license_release_choose,
    license_unassign,
    pending_releases,
)

router = Router(tags=["licenses"])


class HolderOut(Schema):
    member_id: int
    email: str
    assigned_at: datetime


class PoolOut(Schema):
    """One subscription's licenses: ``bought`` (its quantity), ``used`` and who holds them."""

    subscription_id: int
    product: str
    bought: int
    used: int
    free: int
    holders: list[HolderOut]
    releasing: list[str] = Field(
        description="The e-mails of members chosen to lose their license at the next order.")

    @staticmethod
    def of(pool: Pool, releasing: list[str]) -> PoolOut:
        return PoolOut(
            subscription_id=pool.subscription.pk, product=pool.subscription.product.code,
            bought=pool.bought, used=pool.used, free=pool.free,
            holders=[HolderOut(member_id=a.member_id, email=a.member.user.email,
                               assigned_at=a.assigned_at) for a in pool.holders],
            releasing=releasing)


class AssignIn(Schema):
    member_id: StrictInt = Field(ge=1, description="A member of this account (Members API ids).")


class ReleasesIn(Schema):
    quantity: StrictInt = Field(ge=1, le=100_000,
                                description="The license count the next order will leave.")
    member_ids: list[StrictInt] = Field(
        max_length=100_000,
        description="Members holding a license who lose it when that order is placed.")


def pool_out(account: Account, pool: Pool) -> PoolOut:
    """One pool as the API answers it, with the members chosen to lose a license."""
    return PoolOut.of(pool, [r.email for r in pending_releases(
        account=account, product_code=pool.subscription.product.code)])


def pools_out(account: Account) -> list[PoolOut]:
    """Every pool of ``account`` (what the license writes answer)."""
    return [pool_out(account, pool) for pool in license_pools(account=account)]


@router.get("/accounts/{account_id}/licenses",
            response={200: Page[PoolOut], **errors(401, 403, 404, 422)},
            summary="The account's license pools and who holds each license, by subscription "
                    "(paginated)",
            openapi_extra=documented(Page[PoolOut], examples.page(examples.POOLS)))
def licenses(request: ApiRequest, account_id: int, filters: Query[ListQuery]) -> dict[str, Any]:
    """The list envelope: ``data``, ``has_more``, ``next_cursor`` (opaque; pass it back as
    ``cursor``), oldest subscription first. The writes below answer every pool of the account
    (a bare array: the state after the change, not a list to page through)."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_LICENSES)
    scope = f"account.licenses:{account.pk}"
    after = cursor_decode(scope, filters.cursor)[1] if filters.cursor else None
    rows = license_pools_page(account=account, after_id=after, limit=filters.limit)
    return page_of(rows, limit=filters.limit, scope=scope,
                   position=lambda pool: (None, pool.subscription.pk),
                   out=lambda pool: pool_out(account, pool))


@router.post("/accounts/{account_id}/licenses/{subscription_id}/assignments",
             response={200: list[PoolOut], **errors(401, 403, 404, 409, 422)},
             summary="Give a free license to a member (409 no_free_license when all are used)",
             openapi_extra=documented(list[PoolOut], examples.POOLS, body={"member_id": 3},
                                      body_schema=AssignIn))
def assign(request: ApiRequest, account_id: int, subscription_id: int,
           body: AssignIn) -> list[PoolOut]:
    """Audited, and the member is e-mailed. Add licenses with a checkout first when the pool is
    full."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_LICENSES)
    license_assign(actor=request.auth_user, account=account, subscription_id=subscription_id,
                   member_id=body.member_id, ip=request.META.get("REMOTE_ADDR"))
    return pools_out(account)


@router.delete("/accounts/{account_id}/licenses/{subscription_id}/assignments/{member_id}",
               response={200: list[PoolOut], **errors(401, 403, 404, 409, 422)},
               summary="Take back a member's license (their scheduled webinars stay, S5)",
               openapi_extra=documented(list[PoolOut], examples.POOLS))
def unassign(request: ApiRequest, account_id: int, subscription_id: int,
             member_id: int) -> list[PoolOut]:
    account = account_for(request.auth_user, account_id, Action.MANAGE_LICENSES)
    license_unassign(actor=request.auth_user, account=account, subscription_id=subscription_id,
                     member_id=member_id, ip=request.META.get("REMOTE_ADDR"))
    return pools_out(account)


@router.put("/accounts/{account_id}/subscriptions/{product_code}/license-releases",
            response={200: list[PoolOut], **errors(401, 403, 404, 409, 422)},
            summary="Choose who loses a license before an order that leaves fewer licenses",
            openapi_extra=documented(list[PoolOut], examples.POOLS, body={"quantity": 1, "member_ids": [3]},
                                     body_schema=ReleasesIn))
def releases(request: ApiRequest, account_id: int, product_code: str,
             body: ReleasesIn) -> list[PoolOut]:
    """Replaces an earlier choice. Nothing is unassigned until the order is placed, and then in
    its transaction. 409 ``licenses_to_free`` when fewer holders are named than are too many
    (``params.to_free`` says how many); with enough licenses the choice is cleared."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_LICENSES)
    license_release_choose(actor=request.auth_user, account=account, product_code=product_code,
                           quantity=body.quantity, member_ids=body.member_ids)
    return pools_out(account)
