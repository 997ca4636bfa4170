"""API area "accounts": who am I, my accounts, an account, its members.

The pattern every area follows (see :mod:`prorata.api.v1`): the handler calls ``account_for``
first, parses its input, calls one service or selector, and returns one output schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Query, Router, Schema

from prorata.accounts.models import Account, Membership, User
from prorata.accounts.permissions import Action, account_for, can, membership, staff_roles
from prorata.api import examples
from prorata.api.auth import ApiRequest
from prorata.api.billing import ListQuery
from prorata.api.operator import documented
from prorata.api.pagination import Page, cursor_decode, page_of
from prorata.api.schemas import errors
from prorata.api.selectors import members_page, memberships_of, memberships_page

router = Router(tags=["accounts"])


class AccountRef(Schema):
    """An account the user belongs to, with the user's roles in it."""

    id: int
    name: str
    roles: list[str]

    @staticmethod
    def of(member: Membership) -> AccountRef:
        return AccountRef(id=member.account_id, name=member.account.name, roles=member.roles)


class MeOut(Schema):
    id: int
    email: str
    first_name: str
    last_name: str
    language: str
    staff_roles: list[str]
    accounts: list[AccountRef]


class AccountBillingOut(Schema):
    """Billing details; present only for users who may see billing (billing contacts, staff)."""

    billing_address: str
    vat_number: str
    payment_terms_days: int
    advisor_email: str | None


class AccountOut(Schema):
    id: int
    name: str
    country: str
    currency: str
    billing_mode: str
    language: str
    created_at: datetime
    roles: list[str]
    billing: AccountBillingOut | None

    @staticmethod
    def of(account: Account, user: User) -> AccountOut:
        member = membership(user, account)
        billing = None
        if can(user, Action.VIEW_BILLING, account):
            billing = AccountBillingOut(
                billing_address=account.billing_address, vat_number=account.vat_number,
                payment_terms_days=account.payment_terms_days,
                advisor_email=account.advisor.email if account.advisor else None,
            )
        return AccountOut(
            id=account.pk, name=account.name, country=account.country, currency=account.currency,
            billing_mode=account.billing_mode, language=account.language,
            created_at=account.created_at, roles=member.roles if member else [], billing=billing,
        )


class MemberOut(Schema):
    user_id: int
    email: str
    first_name: str
    last_name: str
    roles: list[str]


@router.get("/me", response={200: MeOut, **errors(401)}, summary="The signed-in user",
            openapi_extra=documented(MeOut, examples.ME))
def me(request: ApiRequest) -> MeOut:
    """The user behind the token or session, with their accounts and roles in each."""
    user = request.auth_user
    return MeOut(
        id=user.pk, email=user.email, first_name=user.first_name, last_name=user.last_name,
        language=user.language, staff_roles=sorted(staff_roles(user)),
        accounts=[AccountRef.of(m) for m in memberships_of(user=user)],
    )


@router.get("/accounts", response={200: Page[AccountRef], **errors(401, 422)},
            summary="The accounts the user belongs to, by id (paginated)",
            openapi_extra=documented(Page[AccountRef], examples.ACCOUNTS_PAGE))
def accounts(request: ApiRequest, filters: Query[ListQuery]) -> dict[str, Any]:
    """The list envelope: ``data``, ``has_more``, ``next_cursor`` (opaque; pass it back as
    ``cursor``)."""
    user = request.auth_user
    scope = f"user.accounts:{user.pk}"
    after = cursor_decode(scope, filters.cursor)[1] if filters.cursor else None
    rows = memberships_page(user=user, after_account_id=after, limit=filters.limit)
    return page_of(rows, limit=filters.limit, scope=scope,
                   position=lambda m: (None, m.account_id), out=AccountRef.of)


@router.get("/accounts/{account_id}", response={200: AccountOut, **errors(401, 404, 422)},
            summary="One account", openapi_extra=documented(AccountOut, examples.ACCOUNT))
def account_detail(request: ApiRequest, account_id: int) -> AccountOut:
    """Any member may see the account; billing details only with the billing-contact role.

    404 for an account the user does not belong to (never 403: that would confirm it exists).
    """
    account = account_for(request.auth_user, account_id, Action.VIEW_ACCOUNT)
    return AccountOut.of(account, request.auth_user)


@router.get("/accounts/{account_id}/members",
            response={200: Page[MemberOut], **errors(401, 403, 404, 422)},
            summary="The members of an account and their roles, oldest first (paginated)",
            openapi_extra=documented(Page[MemberOut], examples.page(examples.MEMBERS)))
def account_members(request: ApiRequest, account_id: int,
                    filters: Query[ListQuery]) -> dict[str, Any]:
    """Needs the admin role (``MANAGE_MEMBERS``): other members of the account get 403. The
    list envelope: ``data``, ``has_more``, ``next_cursor`` (opaque; pass it back as
    ``cursor``)."""
    account = account_for(request.auth_user, account_id, Action.MANAGE_MEMBERS)
    scope = f"account.members:{account.pk}"
    after = cursor_decode(scope, filters.cursor)[1] if filters.cursor else None
    rows = members_page(account=account, after_id=after, limit=filters.limit)
    return page_of(rows, limit=filters.limit, scope=scope, position=lambda m: (None, m.pk),
                   out=lambda m: MemberOut(user_id=m.user_id, email=m.user.email,
                                           first_name=m.user.first_name,
                                           last_name=m.user.last_name, roles=m.roles))
