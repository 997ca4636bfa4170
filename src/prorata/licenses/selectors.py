"""Reads of license pools and members (the Licenses and Members pages, the checkout's question
of who loses a license, the confirmation's count of unassigned licenses)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch, QuerySet

from prorata.accounts.models import Account, Membership
from prorata.common.clock import now
from prorata.licenses.models import Invitation, LicenseAssignment
from prorata.subscriptions.models import Subscription

#: The product whose licenses let a member host webinars (the demo catalog's only product).
WEBINAR_PRODUCT = "webinar"


@dataclass(frozen=True)
class Pool:
    """One subscription's licenses: ``bought`` (its quantity) and who holds them."""

    subscription: Subscription
    holders: list[LicenseAssignment]

    @property
    def bought(self) -> int:
        return self.subscription.quantity

    @property
    def used(self) -> int:
        return len(self.holders)

    @property
    def free(self) -> int:
        return max(0, self.bought - self.used)

    @property
    def over(self) -> int:
        """Assignments beyond the count bought (never, unless written past the services)."""
        return max(0, self.used - self.bought)


def license_pools(*, account: Account) -> list[Pool]:
    """The account's subscriptions with their holders (by assignment time), by product."""
    return _pools(_pool_subscriptions(account).order_by("product__name", "id"))


def license_pools_page(*, account: Account, after_id: int | None, limit: int) -> list[Pool]:
    """Up to ``limit + 1`` of the account's pools, by subscription id (oldest first), after
    subscription ``after_id``: the API's keyset page (:mod:`prorata.api.pagination`)."""
    rows = _pool_subscriptions(account)
    if after_id is not None:
        rows = rows.filter(pk__gt=after_id)
    return _pools(rows.order_by("id")[:limit + 1])


def _pool_subscriptions(account: Account) -> QuerySet[Subscription]:
    holders = Prefetch("license_assignments", to_attr="holders_list",
                       queryset=LicenseAssignment.objects.select_related("member__user")
                       .order_by("assigned_at", "id"))
    return (Subscription.objects.select_related("product", "plan", "cycle")
            .filter(account=account).prefetch_related(holders))


def _pools(subscriptions: QuerySet[Subscription]) -> list[Pool]:
    return [Pool(s, list(s.holders_list)) for s in subscriptions]  # type: ignore[attr-defined]


def members_of(*, account: Account) -> list[Membership]:
    """The account's members with their user and ``licenses`` (how many they hold), by name."""
    return list(Membership.objects.select_related("user").filter(account=account)
                .annotate(licenses=Count("license_assignments"))
                .order_by("user__first_name", "user__last_name", "user__email", "id"))


def pending_invitations(*, account: Account) -> list[Invitation]:
    """The account's invitations that can still be used, newest first."""
    return list(Invitation.objects.filter(account=account, accepted_at__isnull=True,
                                          revoked_at__isnull=True, expires_at__gt=now())
                .order_by("-created_at", "-id"))


def unassigned_licenses(*, account: Account, product_code: str = WEBINAR_PRODUCT) -> int:
    """How many licenses of the account's subscription to ``product_code`` nobody holds."""
    subscription = (Subscription.objects.filter(account=account, product__code=product_code)
                    .annotate(used=Count("license_assignments")).first())
    if subscription is None:
        return 0
    return max(0, subscription.quantity - subscription.used)  # type: ignore[attr-defined]


def holders_of(*, account: Account, product_code: str = WEBINAR_PRODUCT) -> list[Membership]:
    """The members holding a license of the account's ``product_code`` subscription."""
    return list(Membership.objects.select_related("user")
                .filter(account=account,
                        license_assignments__subscription__product__code=product_code)
                .order_by("user__email", "id"))


def holds_license(*, member: Membership | None, product_code: str = WEBINAR_PRODUCT) -> bool:
    if member is None:
        return False
    return LicenseAssignment.objects.filter(
        member=member, subscription__product__code=product_code).exists()
