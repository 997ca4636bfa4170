"""Reads of webinars: their participant limits (the S5 rule), who may schedule, the lists."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count

from prorata.accounts.models import Account, Membership, User
from prorata.catalog.models import Plan
from prorata.common.clock import now
from prorata.licenses.models import LicenseAssignment
from prorata.licenses.selectors import WEBINAR_PRODUCT
from prorata.subscriptions.models import Subscription, SubscriptionEvent, SubscriptionStatus
from prorata.webinars.models import Webinar
from prorata_core.webinars import Spell, participant_limit

#: Statuses in which license holders may schedule new webinars.
HOSTING_STATUSES = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING})


def webinar_subscription(account: Account) -> Subscription | None:
    return (Subscription.objects.select_related("plan", "product")
            .filter(account=account, product__code=WEBINAR_PRODUCT).first())


def plan_spells(*, account: Account, subscription: Subscription | None = None,
                at: datetime | None = None) -> list[Spell]:
    """The account's plan history for the webinar product as spells (participants allowed from
    each change on; 0 while expired), from the subscription's history events, then the row itself
    at ``at`` (the project clock's instant): whatever wrote the row, its plan counts."""
    subscription = subscription or webinar_subscription(account)
    if subscription is None:
        return []
    limits = dict(Plan.objects.filter(product_id=subscription.product_id)
                  .values_list("code", "participant_limit"))
    spells: list[Spell] = []
    plan: str | None = None
    status: str | None = None
    for instant, before, after in (SubscriptionEvent.objects.filter(subscription=subscription)
                                   .order_by("at", "id").values_list("at", "before", "after")):
        if plan is None and before:
            plan, status = before.get("plan"), before.get("status")
        after = after or {}
        plan, status = after.get("plan", plan), after.get("status", status)
        spells.append(Spell(instant, 0 if status == SubscriptionStatus.EXPIRED or plan is None
                            else int(limits.get(plan, 0))))
    current = (0 if subscription.status == SubscriptionStatus.EXPIRED
               else subscription.plan.participant_limit)
    instant = at or now()
    if not spells or spells[-1].start <= instant:
        spells.append(Spell(instant, current))
    return spells


def limit_of(webinar: Webinar, spells: list[Spell], at: datetime) -> int:
    return participant_limit(limit_when_scheduled=webinar.limit_when_scheduled,
                             scheduled_at=webinar.scheduled_at, starts_at=webinar.starts_at,
                             now=at, spells=spells)


def current_plan_limit(account: Account) -> int:
    """The participant limit of the account's plan now (0 without a live subscription)."""
    subscription = webinar_subscription(account)
    if subscription is None or subscription.status == SubscriptionStatus.EXPIRED:
        return 0
    return subscription.plan.participant_limit


def hosting_refusal(*, user: User, account: Account) -> str | None:
    """Why ``user`` may not schedule a new webinar for ``account`` now (a
    :data:`prorata.webinars.errors.REASONS` key), or None when they may."""
    member = Membership.objects.filter(user=user, account=account).first()
    subscription = webinar_subscription(account)
    if subscription is None:
        return "no_subscription"
    if member is None or not LicenseAssignment.objects.filter(
            subscription=subscription, member=member).exists():
        return "no_license"
    if subscription.status == SubscriptionStatus.EXPIRED:
        return "expired"
    if subscription.status == SubscriptionStatus.PAST_DUE:
        return "past_due"
    return None


@dataclass(frozen=True)
class WebinarRow:
    webinar: Webinar
    limit: int
    registered: int
    host_licensed: bool


def upcoming_webinars(*, account: Account, at: datetime | None = None) -> list[WebinarRow]:
    """The account's webinars not cancelled and not over at ``at``, by start, with their limit,
    registrations and whether their organizer still holds a license."""
    instant = at or now()
    subscription = webinar_subscription(account)
    spells = plan_spells(account=account, subscription=subscription, at=instant)
    licensed = set(LicenseAssignment.objects.filter(subscription=subscription)
                   .values_list("member__user_id", flat=True)) if subscription else set()
    webinars = (Webinar.objects.select_related("organizer")
                .filter(account=account, cancelled_at__isnull=True)
                .annotate(registered=Count("registrations")).order_by("starts_at", "id"))
    return [WebinarRow(w, limit_of(w, spells, instant), w.registered,  # type: ignore[attr-defined]
                       w.organizer_id in licensed)
            for w in webinars if w.ends_at > instant]


def webinar_limit(webinar: Webinar, at: datetime | None = None) -> int:
    instant = at or now()
    return limit_of(webinar, plan_spells(account=webinar.account, at=instant), instant)
