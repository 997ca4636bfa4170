"""The licenses app's hand-written query: the entitlement lookup of the webinar product's
sign-in path (``GET /api/v1/entitlements/{email}``), in one statement.

:func:`entitlement_lookup` reads, in one round trip, whether the product key is usable and the
user's memberships with their accounts, the accounts' webinar subscriptions with their plans and
the member's license; :func:`entitlement_lookup_orm` is its reference, the ORM's five queries
(``tests/app/licenses/test_queries.py`` compares the two in every case; what the shortcut saves is
in ``benchmarks/README.md``, "Entitlement endpoint"). Who may call: the entitlement API only
(:mod:`prorata.api.entitlements` and :mod:`prorata.api.fastpath`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prorata.accounts.models import User
from prorata.common.db import instant_from_db, prepared_cursor
from prorata.licenses.models import EntitlementKey, LicenseAssignment
from prorata.subscriptions.models import Subscription

#: A product key: ``prorata_ent_<prefix>_<secret>`` (see :mod:`prorata.licenses.entitlements`).
KEY = re.compile(r"^prorata_ent_([a-z2-7]{10})_([A-Za-z0-9_-]{43})$")


def key_hash(key: str) -> str:
    """What is stored of a key: the SHA-256 of the whole key, in hex."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class MemberState:
    """What the entitlement reads of one membership of the user: its account, the account's
    subscription to the webinar product (``subscription_id`` None when it has none) with its
    plan, and whether the member holds one of its licenses."""

    account_id: int
    account_name: str
    subscription_id: int | None
    status: str | None
    period_end: datetime | None
    plan: str | None
    participant_limit: int
    features: tuple[str, ...]
    licensed: bool


@dataclass(frozen=True)
class Lookup:
    """The rows an entitlement is decided from: whether the product key is usable, the user's
    address (None: no active user signs in with it) and their memberships by account id."""

    key_ok: bool
    email: str | None
    members: tuple[MemberState, ...]



# The key is compared by the SHA-256 of the whole key, found by its indexed prefix: comparing
# hashes in SQL leaks nothing an attacker can use (they cannot choose what the stored hash of
# their guess looks like). The user joins only when the key is usable, so an unusable key reads
# no user. One row per membership (none: the user row alone, or the key row alone).
_LOOKUP_SQL = """
SELECT k.id, u.email, m.account_id, a.name, s.id, s.status, s.period_end,
       p.code, p.participant_limit, p.features, la.id
FROM (SELECT 1 AS one) o
LEFT JOIN licenses_entitlementkey k
       ON k.prefix = %s AND k.secret_hash = %s AND k.revoked_at IS NULL
LEFT JOIN accounts_user u ON u.email = %s AND u.is_active AND k.id IS NOT NULL
LEFT JOIN accounts_membership m ON m.user_id = u.id
LEFT JOIN accounts_account a ON a.id = m.account_id
LEFT JOIN catalog_product pr ON pr.code = %s
LEFT JOIN subscriptions_subscription s ON s.account_id = m.account_id AND s.product_id = pr.id
LEFT JOIN catalog_plan p ON p.id = s.plan_id
LEFT JOIN licenses_licenseassignment la ON la.subscription_id = s.id AND la.member_id = m.id
ORDER BY m.account_id
"""

_REFUSED = Lookup(key_ok=False, email=None, members=())


def _address(email: str) -> str:
    return (email or "").strip().lower()


def _aware(value: Any) -> datetime | None:
    """An instant as the ORM returns it: aware, UTC (SQLite's cursor gives naive UTC)."""
    if value is None:
        return None
    return instant_from_db(value)


def entitlement_lookup(*, email: str, key: str, product: str) -> Lookup:
    """What :func:`~prorata.licenses.entitlements.entitlement_decide` needs to answer for
    ``email`` (case-insensitive) asked with the product key ``key``, in one statement;
    ``key_ok`` False (and nothing else read) for a malformed, unknown or revoked key."""
    match = KEY.match(key or "")
    if match is None:
        return _REFUSED
    with prepared_cursor() as cursor:
        cursor.execute(_LOOKUP_SQL, [match.group(1), key_hash(key), _address(email),
                                     product])
        rows = cursor.fetchall()
    if rows[0][0] is None:
        return _REFUSED
    members = []
    for (_key, _email, account_id, account_name, subscription_id, status, period_end, plan,
         limit, features, assignment) in rows:
        if account_id is None:
            continue
        if isinstance(features, str | bytes):
            features = json.loads(features)
        members.append(MemberState(
            account_id=account_id, account_name=account_name, subscription_id=subscription_id,
            status=status, period_end=_aware(period_end), plan=plan,
            participant_limit=limit or 0, features=tuple(features or ()),
            licensed=assignment is not None))
    return Lookup(key_ok=True, email=rows[0][1], members=tuple(members))


def entitlement_lookup_orm(*, email: str, key: str | None, product: str) -> Lookup:
    """The reference for :func:`entitlement_lookup`: the ORM's queries. ``key`` None: the caller
    has checked the key already (the API route's authentication)."""
    if key is not None:
        match = KEY.match(key)
        if match is None or not EntitlementKey.objects.filter(
                prefix=match.group(1), secret_hash=key_hash(key), revoked_at__isnull=True).exists():
            return _REFUSED
    user = User.objects.filter(email=_address(email), is_active=True).only("id", "email").first()
    if user is None:
        return Lookup(key_ok=True, email=None, members=())
    members = list(user.memberships.select_related("account").order_by("account_id"))
    subscriptions = {s.account_id: s for s in Subscription.objects.select_related("plan").filter(
        account_id__in=[m.account_id for m in members], product__code=product)}
    licensed = set(LicenseAssignment.objects.filter(member__in=members)
                   .values_list("member_id", "subscription_id"))
    states = []
    for member in members:
        subscription = subscriptions.get(member.account_id)
        plan = subscription.plan if subscription is not None else None
        states.append(MemberState(
            account_id=member.account_id, account_name=member.account.name,
            subscription_id=subscription.pk if subscription is not None else None,
            status=subscription.status if subscription is not None else None,
            period_end=subscription.period_end if subscription is not None else None,
            plan=plan.code if plan is not None else None,
            participant_limit=plan.participant_limit if plan is not None else 0,
            features=tuple(plan.features) if plan is not None else (),
            licensed=subscription is not None and (member.pk, subscription.pk) in licensed))
    return Lookup(key_ok=True, email=user.email, members=tuple(states))
