"""What each staff role may see in the console (DESIGN §5), as querysets filters.

- superusers: everything;
- support agents: every customer account, its people, requests and audit rows;
- corporate advisors: only the accounts they advise (``Account.advisor``), and what belongs to them;
- operators: the catalog and the settings, and the audit rows of those changes; no account.

Every console page that lists rows of an account filters them with :func:`account_scope`, so that
a role sees the same accounts on every page. Staff always see their own audit rows.
"""

from __future__ import annotations

from django.db.models import Q

from prorata.accounts.models import Membership, StaffRole, User
from prorata.accounts.permissions import staff_roles

#: Audit actions about the catalog and the settings (what an operator changes and may read back).
OPERATOR_AUDIT_PREFIXES = ("catalog.", "setting.")

NOTHING = Q(pk__in=[])


def account_scope(user: User, path: str = "") -> Q:
    """A filter on the accounts ``user`` may see, reached through ``path`` ("" for Account itself,
    "account__" for a row with an ``account`` foreign key)."""
    if user.is_superuser and user.is_active:
        return Q()
    roles = staff_roles(user)
    if StaffRole.SUPPORT_AGENT in roles:
        return Q()
    if StaffRole.CORPORATE_ADVISOR in roles:
        return Q(**{f"{path}advisor": user})
    return NOTHING


def audit_scope(user: User) -> Q:
    """Audit rows ``user`` may read: those of the accounts they see, their own, and for operators
    the catalog's and settings' changes. Rows of no account (sign-in lockouts, staff role changes)
    are for support agents and superusers."""
    if user.is_superuser and user.is_active:
        return Q()
    roles = staff_roles(user)
    own = Q(actor=user)
    if StaffRole.SUPPORT_AGENT in roles:
        return Q()
    scope = own
    if StaffRole.CORPORATE_ADVISOR in roles:
        scope |= Q(account__advisor=user)
    if StaffRole.OPERATOR in roles:
        for prefix in OPERATOR_AUDIT_PREFIXES:
            scope |= Q(action__startswith=prefix)
    return scope


def user_scope(user: User) -> Q:
    """People ``user`` may see: themself; support agents every customer (not other staff);
    advisors the members of the accounts they advise."""
    if user.is_superuser and user.is_active:
        return Q()
    roles = staff_roles(user)
    scope = Q(pk=user.pk)
    if StaffRole.SUPPORT_AGENT in roles:
        scope |= Q(is_staff=False)
    if StaffRole.CORPORATE_ADVISOR in roles:
        scope |= Q(pk__in=Membership.objects.filter(account__advisor=user).values("user_id"))
    return scope
