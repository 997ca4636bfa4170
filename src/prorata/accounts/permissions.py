"""The one answer to "may this user do X on account A" (DESIGN §5).

Every page and every API endpoint that touches an account goes through :func:`account_for`, which
returns the account or raises :class:`~django.http.Http404` — never a 403 that would tell a stranger
that account B exists. Inside their own account, a member who lacks the role gets
:class:`~django.core.exceptions.PermissionDenied` (403): the account's existence is no secret to them.

Customer roles: any member may ``VIEW_ACCOUNT``; billing contacts ``VIEW_BILLING`` and
``MANAGE_BILLING`` (buy, change, cancel, pay, see invoices and payment methods); admins
``MANAGE_MEMBERS``; billing contacts and admins ``MANAGE_LICENSES``; organizers ``HOST_WEBINARS``.
Staff: support agents view every account's billing; corporate advisors view and manage the billing of
the corporate accounts they advise; superusers everything. Operators run the catalog, not accounts.
"""

from __future__ import annotations

from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from prorata.accounts.models import Account, Membership, StaffRole, User
from prorata.common.db import concrete_columns, model_from_row, prepared_cursor


class Action(StrEnum):
    VIEW_ACCOUNT = "view_account"
    VIEW_BILLING = "view_billing"
    MANAGE_BILLING = "manage_billing"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_LICENSES = "manage_licenses"
    HOST_WEBINARS = "host_webinars"


_MEMBER_RULES: dict[Action, tuple[str, ...]] = {
    Action.VIEW_ACCOUNT: (),
    Action.VIEW_BILLING: ("is_billing_contact",),
    Action.MANAGE_BILLING: ("is_billing_contact",),
    Action.MANAGE_MEMBERS: ("is_admin",),
    Action.MANAGE_LICENSES: ("is_billing_contact", "is_admin"),
    Action.HOST_WEBINARS: ("is_organizer",),
}


def staff_roles(user: User) -> set[str]:
    """The staff roles (group names) of an active staff user; empty for customers."""
    if not (user.is_active and user.is_staff):
        return set()
    cached: set[str] | None = getattr(user, "_prorata_staff_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._prorata_staff_roles = cached  # type: ignore[attr-defined]
    return cached


def _staff_may(user: User, action: Action, account: Account) -> bool:
    if user.is_superuser and user.is_active:
        return True
    roles = staff_roles(user)
    if not roles:
        return False
    if StaffRole.CORPORATE_ADVISOR in roles and account.advisor_id == user.pk:
        return action in {Action.VIEW_ACCOUNT, Action.VIEW_BILLING, Action.MANAGE_BILLING}
    if StaffRole.SUPPORT_AGENT in roles:
        return action in {Action.VIEW_ACCOUNT, Action.VIEW_BILLING}
    return False


def membership(user: User, account: Account) -> Membership | None:
    """``user``'s membership of ``account``, or None (one query, cached on the user per request)."""
    cache: dict[int, Membership | None] = user.__dict__.setdefault("_prorata_memberships", {})
    if account.pk not in cache:
        cache[account.pk] = Membership.objects.filter(user=user, account=account).first()
    return cache[account.pk]


def can(user: User, action: Action, account: Account) -> bool:
    """Whether ``user`` may do ``action`` on ``account``. Anonymous and inactive users may nothing."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return _staff_may(user, action, account)
    member = membership(user, account)
    if member is None:
        return False
    needed = _MEMBER_RULES[action]
    return not needed or any(getattr(member, flag) for flag in needed)


def is_member_or_staff_viewer(user: User, account: Account) -> bool:
    return can(user, Action.VIEW_ACCOUNT, account)


_ACCOUNT_COLUMNS = ", ".join(f"a.{name}" for name in concrete_columns(Account))
_MEMBER_COLUMNS = ", ".join(f"m.{name}" for name in concrete_columns(Membership))
_ACCOUNT_SQL = (
    f"SELECT {_ACCOUNT_COLUMNS}, {_MEMBER_COLUMNS} FROM accounts_account a "  # noqa: S608
    "LEFT JOIN accounts_membership m ON m.account_id = a.id AND m.user_id = %s WHERE a.id = %s"
)
_ACCOUNT_END = len(concrete_columns(Account))


def _account_with_membership(user: User, account_id: int) -> Account | None:
    """The account and ``user``'s membership of it in one hand-written query, the membership
    cached on the user for :func:`membership` (every page and endpoint starts here)."""
    if not -(2**63) <= account_id < 2**63:
        raise OverflowError(account_id)
    user_id = user.pk if user.is_authenticated else None
    with prepared_cursor() as cursor:
        cursor.execute(_ACCOUNT_SQL, [user_id, account_id])
        row = cursor.fetchone()
    if row is None:
        return None
    account = model_from_row(Account, row[:_ACCOUNT_END])
    if user_id is not None:
        member = (model_from_row(Membership, row[_ACCOUNT_END:])
                  if row[_ACCOUNT_END] is not None else None)
        user.__dict__.setdefault("_prorata_memberships", {})[account.pk] = member
    return account


def remember_memberships(user: User, pairs: list[tuple[Account, Membership]]) -> None:
    """Keep, for this request, the accounts ``user`` is a member of with the memberships, read
    by the caller in the same query as the user (the API token's): :func:`account_for` and
    :func:`membership` then need no query of their own for them. Any other account is read as
    usual (and is a 404 for a stranger)."""
    user.__dict__["_prorata_accounts"] = {account.pk: account for account, _ in pairs}
    user.__dict__.setdefault("_prorata_memberships", {}).update(
        {account.pk: member for account, member in pairs})


def account_for(user: User, account_id: int | str, action: Action) -> Account:
    """The account ``account_id`` if ``user`` may do ``action`` on it.

    Raises Http404 when the user may not even see the account (or it does not exist), and
    PermissionDenied when they see it but lack the role. Call it first in every view and endpoint.
    """
    try:
        wanted = int(account_id)
        known = user.__dict__.get("_prorata_accounts", {}).get(wanted)
        account = known if known is not None else _account_with_membership(user, wanted)
    except (ValueError, TypeError, OverflowError):
        raise Http404("No such account") from None
    if account is None or not can(user, Action.VIEW_ACCOUNT, account):
        raise Http404("No such account")
    if not can(user, action, account):
        raise PermissionDenied(f"You may not {action.value.replace('_', ' ')} on this account.")
    return account


def accounts_of(user: User) -> QuerySet[Account]:
    """The accounts ``user`` belongs to (customers) — the list the billing center offers."""
    if not user.is_authenticated:
        return Account.objects.none()
    return Account.objects.filter(memberships__user=user).order_by("name", "id")
