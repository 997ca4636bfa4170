"""Who may place which order online (DESIGN §1 S3, S13, S16; §3 example 3; §5).

Billing contacts may, online: upgrade the plan, add or remove licenses, change the billing period,
buy a first plan (from nothing or a free trial) and reactivate an expired subscription. A plan
downgrade needs support; a corporate account does nothing online (its advisor does); a ``past_due``
subscription is paid first; a free trial is only ever followed by a purchase. Staff (support agents,
advisors) may do what customers may not, with the same pricing.

Every refusal is a :class:`~prorata_core.errors.ChangeRefused` whose message says what to do instead.
"""

from __future__ import annotations

from enum import StrEnum

from prorata_core.errors import (
    AdvisorPriced,
    AlreadySubscribed,
    ChangeRefused,
    CorporateAccount,
    CurrencyLocked,
    DowngradeNeedsSupport,
    NothingToChange,
    NotInCatalog,
    PastDue,
    SubscriptionExpired,
    TrialOnlyPurchase,
)
from prorata_core.lifecycle import Status
from prorata_core.orders import Configuration, OrderKind

__all__ = ["BillingMode", "Change", "Status", "check_order", "classify"]


class BillingMode(StrEnum):
    SELF_SERVICE = "self_service"
    CORPORATE = "corporate"


class Change(StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    MORE_LICENSES = "more_licenses"
    FEWER_LICENSES = "fewer_licenses"
    CYCLE_CHANGE = "cycle_change"


def classify(current: Configuration, target: Configuration) -> frozenset[Change]:
    """What differs from ``current`` to ``target``; empty when nothing does."""
    changes: set[Change] = set()
    if target.plan.rank > current.plan.rank:
        changes.add(Change.UPGRADE)
    elif target.plan.rank < current.plan.rank:
        changes.add(Change.DOWNGRADE)
    if target.quantity > current.quantity:
        changes.add(Change.MORE_LICENSES)
    elif target.quantity < current.quantity:
        changes.add(Change.FEWER_LICENSES)
    if target.cycle != current.cycle:
        changes.add(Change.CYCLE_CHANGE)
    return frozenset(changes)


def check_order(
    *,
    kind: OrderKind,
    billing_mode: BillingMode,
    status: Status | None,
    current: Configuration | None,
    target: Configuration,
    by_staff: bool = False,
    contact: str = "Corporate Billing",
) -> frozenset[Change]:
    """Refuse an order the actor may not place; return what it changes (empty for a purchase).

    ``status`` and ``current`` describe the existing subscription (``None`` when there is none).
    ``by_staff`` is true for support agents and advisors acting in the console. ``contact`` names who a
    corporate account must turn to (their advisor, or Corporate Billing). A renewal is the system's
    own act and is not checked here.
    """
    target.plan.check_licenses(target.quantity)
    if target.plan.is_trial:
        raise NotInCatalog(
            f"{target.plan.name} is granted, not sold; choose a paid plan.", plan=target.plan.code
        )
    if billing_mode is BillingMode.CORPORATE and not by_staff:
        raise CorporateAccount(
            f"This account is billed through the Corporate Billing Center: contact {contact} to "
            "change, cancel or renew it.",
            contact=contact,
        )
    if not target.plan.self_service and not by_staff:
        raise AdvisorPriced(
            f"{target.plan.name} is priced by an advisor: contact us and an advisor will prepare "
            "your offer.",
            plan=target.plan.code,
        )
    if kind is OrderKind.RENEWAL:
        return frozenset()
    if kind is OrderKind.PURCHASE:
        if status is Status.EXPIRED:
            raise SubscriptionExpired(
                "This subscription has expired: choose Subscribe now to reactivate it.",
            )
        if status is not None and status is not Status.TRIALING:
            raise AlreadySubscribed(
                "This product is already subscribed: use Modify subscription to change it.",
            )
        return frozenset()
    if kind is OrderKind.REACTIVATION:
        if status is not Status.EXPIRED:
            raise AlreadySubscribed(
                "Only an expired subscription can be reactivated; use Modify subscription instead.",
            )
        return frozenset()
    # A change of an existing subscription.
    if current is None or status is None:
        raise ChangeRefused("There is no subscription to change: subscribe first.")
    if status is Status.EXPIRED:
        raise SubscriptionExpired(
            "This subscription has expired: choose Subscribe now to reactivate it.",
        )
    if status is Status.TRIALING:
        raise TrialOnlyPurchase(
            "A free trial cannot be modified: choose Subscribe now to buy a plan.",
        )
    if status is Status.PAST_DUE and not by_staff:
        raise PastDue(
            "This subscription has an unpaid invoice: pay it (or update your card) first, then "
            "modify the subscription.",
        )
    if target.currency != current.currency:
        raise CurrencyLocked(
            f"This subscription is billed in {current.currency}; it cannot change to "
            f"{target.currency}.",
            currency=current.currency,
        )
    changes = classify(current, target)
    if not changes:
        raise NothingToChange(
            "That is already your subscription: change the plan, the number of licenses or the "
            "billing period.",
        )
    if Change.DOWNGRADE in changes and not by_staff:
        raise DowngradeNeedsSupport(
            "A plan downgrade is done by our support team. Send the prefilled support request and "
            "we will take care of it.",
            plan=current.plan.code,
            target_plan=target.plan.code,
        )
    return changes
