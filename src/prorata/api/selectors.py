"""Reads for the API and the tokens page. Callers have already checked access (``account_for``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet

from prorata.accounts.models import Account, Membership, User
from prorata.api.models import ApiToken
from prorata.billing.models import Document, Payment
from prorata.payments.models import PaymentMethod
from prorata.subscriptions.models import Subscription


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



# --- keyset pages for the API's lists (prorata.api.pagination) -----------------------------------
# Each returns up to ``limit + 1`` rows strictly after the position ``after`` in the list's order,
# so that the caller knows whether another page follows; no count, any depth at the same cost.

Position = tuple[datetime, int]


def _newest_after(rows: QuerySet[Any], field: str, after: Position | None) -> QuerySet[Any]:
    """``rows`` newest first by ``(field, id)``, strictly after ``after``."""
    if after is not None:
        at, pk = after
        rows = rows.filter(Q(**{f"{field}__lt": at}) | Q(**{field: at, "pk__lt": pk}))
    return rows.order_by(f"-{field}", "-id")


def memberships_page(*, user: User, after_account_id: int | None,
                     limit: int) -> list[Membership]:
    """``user``'s memberships with their accounts, by account id."""
    rows = Membership.objects.filter(user=user).select_related("account")
    if after_account_id is not None:
        rows = rows.filter(account_id__gt=after_account_id)
    return list(rows.order_by("account_id")[:limit + 1])


def members_page(*, account: Account, after_id: int | None, limit: int) -> list[Membership]:
    """The memberships of ``account`` with their users, oldest first (by membership id)."""
    rows = Membership.objects.filter(account=account).select_related("user")
    if after_id is not None:
        rows = rows.filter(pk__gt=after_id)
    return list(rows.order_by("id")[:limit + 1])


#: The position of the default card in the payment-methods list: before every other card (no
#: card has id 0), so that the page after it starts the other cards from the newest.
AFTER_DEFAULT: Position = (datetime(1970, 1, 1, tzinfo=UTC), 0)


def payment_methods_page(*, account: Account, after: Position | None,
                         limit: int) -> list[PaymentMethod]:
    """``account``'s saved cards (removed ones excluded) as
    :func:`~prorata.payments.services.payment_methods_for` orders them, the default first, then
    the others newest first; ``after`` a card's ``(created_at, id)``, or :data:`AFTER_DEFAULT`
    for the page that follows the default card."""
    active = PaymentMethod.objects.filter(account=account, removed_at__isnull=True)
    first: list[PaymentMethod] = []
    if after is None:
        first = list(active.filter(is_default=True).order_by("-created_at", "-id")[:1])
    elif after == AFTER_DEFAULT:
        after = None
    others = _newest_after(active.filter(is_default=False), "created_at", after)
    return first + list(others[:limit + 1 - len(first)])


def api_tokens_page(*, user: User, after: Position | None, limit: int) -> list[ApiToken]:
    """``user``'s tokens (revoked and expired ones included), newest first."""
    return list(_newest_after(ApiToken.objects.filter(user=user), "created_at", after)[:limit + 1])


def documents_page(*, account: Account, kind: str | None, after: Position | None,
                   limit: int) -> list[Document]:
    """The account's finalised invoices and/or credit notes (``kind``), newest issued first."""
    rows = Document.objects.filter(account=account, number__isnull=False).select_related(
        "refers_to")
    if kind:
        rows = rows.filter(kind=kind)
    return list(_newest_after(rows, "issued_at", after)[:limit + 1])


def payments_page(*, account: Account, after: Position | None, limit: int) -> list[Payment]:
    """The account's payments (attempts included: pending, failed, unknown), newest first."""
    rows = Payment.objects.filter(account=account).select_related("invoice")
    return list(_newest_after(rows, "created_at", after)[:limit + 1])


def subscriptions_page(*, account: Account, after_id: int | None,
                       limit: int) -> list[Subscription]:
    """The account's subscriptions (one per product at most), oldest first."""
    rows = Subscription.objects.filter(account=account).select_related("product", "plan", "cycle")
    if after_id is not None:
        rows = rows.filter(pk__gt=after_id)
    return list(rows.order_by("id")[:limit + 1])


def customers_page(*, email: str | None, name: str | None, after_id: int | None,
                   limit: int) -> list[Account]:
    """Customer accounts, oldest first; with ``email``, those where it is a member's address, a
    pending invitation's or the billing e-mail (case-insensitive); with ``name``, those whose
    name contains it (case-insensitive)."""
    rows = Account.objects.all()
    if email:
        from prorata.licenses.models import Invitation

        invited = Invitation.objects.filter(email__iexact=email, accepted_at__isnull=True,
                                            revoked_at__isnull=True).values("account_id")
        members = Membership.objects.filter(user__email__iexact=email).values("account_id")
        rows = rows.filter(Q(billing_email__iexact=email) | Q(pk__in=members)
                           | Q(pk__in=invited))
    if name:
        rows = rows.filter(name__icontains=name)
    if after_id is not None:
        rows = rows.filter(pk__gt=after_id)
    return list(rows.order_by("id")[:limit + 1])


def customer_contacts(*, account: Account) -> tuple[list[Membership], list[Any]]:
    """The account's billing contacts and admins (with their users), and its pending
    invitations, oldest first."""
    from prorata.licenses.models import Invitation

    members = list(Membership.objects.filter(account=account).filter(
        Q(is_billing_contact=True) | Q(is_admin=True)).select_related("user").order_by("id"))
    pending = list(Invitation.objects.filter(account=account, accepted_at__isnull=True,
                                             revoked_at__isnull=True).order_by("id"))
    return members, pending
