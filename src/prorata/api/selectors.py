"""Reads for the API and the tokens page. Callers have already checked access (``account_for``)."""

from __future__ import annotations

from django.db.models import QuerySet

from prorata.accounts.models import Account, Membership, User
from prorata.api.models import ApiToken


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    """``user``'s tokens, newest first (revoked and expired ones included)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def api_token_of(*, user: User, token_id: int) -> ApiToken | None:
    """``user``'s token ``token_id``, or None (also when it is someone else's)."""
    return ApiToken.objects.filter(user=user, pk=token_id).first()


def memberships_of(*, user: User) -> QuerySet[Membership]:
    """``user``'s memberships with their accounts, in the order of :func:`accounts_of`."""
    return (
        Membership.objects.filter(user=user)
        .select_related("account")
        .order_by("account__name", "account_id")
    )


def members_of(*, account: Account) -> QuerySet[Membership]:
    """The memberships of ``account`` with their users, by e-mail address."""
    return Membership.objects.filter(account=account).select_related("user").order_by("user__email")

