"""What the webinar product asks before it lets someone in (DESIGN §4, S22): the entitlement
of a user, and the product's API keys (create, revoke, authenticate).

Keys read ``prorata_ent_<prefix>_<secret>``: ``prefix`` (10 characters of lower-case base32)
finds the row, only the SHA-256 of the whole key is stored (it is shown once, at creation), and a
revoked key stops working at once. They are accepted by ``GET /api/v1/entitlements/{email}`` only:
the personal-token authentication of every other endpoint does not know them.

A user may be a member of several accounts: the entitlement is that of the membership that lets
them host if any, else of one holding a license, else of their first membership (by account id).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from prorata.accounts.models import User
from prorata.accounts.services import audit_record
from prorata.common.clock import now
from prorata.licenses.models import EntitlementKey, LicenseAssignment
from prorata.licenses.selectors import WEBINAR_PRODUCT
from prorata.subscriptions.models import Subscription, SubscriptionStatus
from prorata_core.errors import ValidationError

BRAND = "prorata_ent_"
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_KEY = re.compile(r"^prorata_ent_([a-z2-7]{10})_([A-Za-z0-9_-]{43})$")

#: Why a known user may not host: the answers the OpenAPI document lists.
REASONS = ("no_membership", "no_subscription", "no_license", "expired", "past_due")
HOSTING = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING})


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def entitlement_key_create(*, name: str, actor: User | None) -> tuple[EntitlementKey, str]:
    """A new key named ``name`` (1 to 100 characters); returns the row and the key, which is
    never stored. Audited (``entitlement_key.create``, with the prefix, never the secret)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError("Give the key a name of 1 to 100 characters saying who uses it.",
                              field="name")
    secret = secrets.token_urlsafe(32)
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    key = f"{BRAND}{prefix}_{secret}"
    with transaction.atomic():
        row = EntitlementKey.objects.create(name=name, prefix=prefix, secret_hash=_hash(key),
                                            created_at=now(), created_by=actor)
        audit_record(actor=actor, action="entitlement_key.create", obj=row,
                     after={"name": name, "prefix": prefix})
    return row, key


def entitlement_key_revoke(*, key: EntitlementKey, actor: User | None) -> bool:
    """Revoke ``key`` (audited); False if it already was."""
    with transaction.atomic():
        updated = EntitlementKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
            revoked_at=now())
        if updated:
            audit_record(actor=actor, action="entitlement_key.revoke", obj=key,
                         before={"name": key.name, "prefix": key.prefix})
    return bool(updated)


def entitlement_key_authenticate(key: str) -> EntitlementKey | None:
    """The usable key row of ``key``, or None (malformed, unknown, wrong secret, revoked);
    the secret is compared in constant time. One indexed read."""
    match = _KEY.match(key or "")
    if match is None:
        return None
    row = EntitlementKey.objects.filter(prefix=match.group(1), revoked_at__isnull=True).first()
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(key)):
        return None
    return row


@dataclass(frozen=True)
class Entitlement:
    """A known user's entitlement. ``participant_limit`` is the plan's (0 without a plan);
    ``valid_until`` the end of the paid period ``[.., valid_until)`` when ``may_host``."""

    email: str
    may_host: bool
    reason: str | None
    account_id: int | None
    account_name: str | None
    plan: str | None
    participant_limit: int
    features: list[str]
    valid_until: datetime | None


def entitlement_for(email: str) -> Entitlement | None:
    """The entitlement of the user signing in with ``email`` (case-insensitive), or None for an
    unknown or inactive user. Three indexed reads at most (memberships with their accounts,
    subscriptions with plans, the user's licenses)."""
    address = (email or "").strip().lower()
    user = User.objects.filter(email=address, is_active=True).only("id", "email").first()
    if user is None:
        return None
    members = list(user.memberships.select_related("account").order_by("account_id"))
    if not members:
        return Entitlement(user.email, False, "no_membership", None, None, None, 0, [], None)
    subscriptions = {s.account_id: s for s in Subscription.objects.select_related("plan").filter(
        account_id__in=[m.account_id for m in members], product__code=WEBINAR_PRODUCT)}
    licensed = set(LicenseAssignment.objects.filter(member__in=members)
                   .values_list("subscription_id", flat=True))
    options = []
    for member in members:
        subscription = subscriptions.get(member.account_id)
        if subscription is None:
            reason: str | None = "no_subscription"
        elif subscription.pk not in licensed:
            reason = "no_license"
        elif subscription.status == SubscriptionStatus.EXPIRED:
            reason = "expired"
        elif subscription.status == SubscriptionStatus.PAST_DUE:
            reason = "past_due"
        else:
            reason = None
        rank = (reason is not None, reason not in (None, "expired", "past_due"))
        options.append((rank, member, subscription, reason))
    _rank, member, subscription, reason = min(options, key=lambda option: option[0])
    plan = subscription.plan if subscription is not None and reason != "no_subscription" else None
    live = subscription is not None and subscription.status != SubscriptionStatus.EXPIRED
    return Entitlement(
        email=user.email, may_host=reason is None, reason=reason, account_id=member.account_id,
        account_name=member.account.name, plan=plan.code if plan is not None else None,
        participant_limit=plan.participant_limit if plan is not None and live else 0,
        features=sorted(plan.features) if plan is not None and live else [],
        valid_until=subscription.period_end if reason is None and subscription else None,
    )
