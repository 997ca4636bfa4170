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

from prorata.accounts.access import current_access
from prorata.accounts.models import Account, Membership, StaffRole, User
from prorata.accounts.queries import account_with_membership


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


def staff_roles(user: User) -> frozenset[str]:
    """The staff roles (group names) of an active staff user; empty for customers. One query,
    read once per request (:class:`~prorata.accounts.access.RequestAccess`)."""
    if not (user.is_active and user.is_staff):
        return frozenset()
    access = current_access()
    cached = access.staff_roles.get(user.pk) if access is not None else None
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if access is not None:
            access.staff_roles[user.pk] = cached
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
    """``user``'s membership of ``account``, or None (one query, read once per request:
    :class:`~prorata.accounts.access.RequestAccess`)."""
    access = current_access()
    key = (user.pk, account.pk)
    if access is not None and key in access.memberships:
        return access.memberships[key]
    member = Membership.objects.filter(user=user, account=account).first()
    if access is not None:
        access.memberships[key] = member
    return member


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


def _account_with_membership(user: User, account_id: int) -> Account | None:
    """The account and ``user``'s membership of it in one hand-written query
    (:func:`~prorata.accounts.queries.account_with_membership`: every page and endpoint starts
    here), the membership kept for :func:`membership` for the rest of the request."""
    if not -(2**63) <= account_id < 2**63:
        raise OverflowError(account_id)
    user_id = user.pk if user.is_authenticated else None
    found = account_with_membership(user_id=user_id, account_id=account_id)
    if found is None:
        return None
    account, member = found
    access = current_access()
    if user_id is not None and access is not None:
        access.memberships[user_id, account.pk] = member
    return account


def remember_memberships(user: User, pairs: list[tuple[Account, Membership]]) -> None:
    """Keep, for this request, the accounts ``user`` is a member of with the memberships, read
    by the caller in the same query as the user (the API token's): :func:`account_for` and
    :func:`membership` then need no query of their own for them. Any other account is read as
    usual (and is a 404 for a stranger). Outside a request, nothing is kept."""
    access = current_access()
    if access is None:
        return
    for account, member in pairs:
        access.accounts[user.pk, account.pk] = account
        access.memberships[user.pk, account.pk] = member


def account_for(user: User, account_id: int | str, action: Action) -> Account:
    """The account ``account_id`` if ``user`` may do ``action`` on it.

    Raises Http404 when the user may not even see the account (or it does not exist), and
    PermissionDenied when they see it but lack the role. Call it first in every view and endpoint.
    """
    try:
        wanted = int(account_id)
        access = current_access()
        known = access.accounts.get((user.pk, wanted)) if access is not None else None
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
