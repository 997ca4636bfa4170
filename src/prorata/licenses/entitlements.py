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

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from prorata.accounts.models import User
from prorata.accounts.services import audit_record
from prorata.common.cardnumbers import mask_card_numbers
from prorata.common.clock import now
from prorata.licenses.models import EntitlementKey
from prorata.licenses.queries import KEY as _KEY
from prorata.licenses.queries import Lookup, key_hash
from prorata.licenses.selectors import WEBINAR_PRODUCT
from prorata.subscriptions.models import SubscriptionStatus
from prorata_core.errors import ValidationError

BRAND = "prorata_ent_"
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


#: Why a known user may not host: the answers the OpenAPI document lists.
REASONS = ("no_membership", "no_subscription", "no_license", "expired", "past_due")
HOSTING = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING})


def entitlement_key_create(*, name: str, actor: User | None) -> tuple[EntitlementKey, str]:
    """A new key named ``name`` (1 to 100 characters); returns the row and the key, which is
    never stored. Audited (``entitlement_key.create``, with the prefix, never the secret)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError("Give the key a name of 1 to 100 characters saying who uses it.",
                              field="name")
    name = mask_card_numbers(name)
    secret = secrets.token_urlsafe(32)
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    key = f"{BRAND}{prefix}_{secret}"
    with transaction.atomic():
        row = EntitlementKey.objects.create(name=name, prefix=prefix, secret_hash=key_hash(key),
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
    if row is None or not hmac.compare_digest(row.secret_hash, key_hash(key)):
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


def entitlement_decide(lookup: Lookup) -> Entitlement | None:
    """The entitlement of the user of ``lookup``, or None for an unknown or inactive user: the
    membership that lets them host if any, else one holding a license (expired or past due),
    else the first by account id. Pure: both roads (:func:`entitlement_for` and the WSGI fast
    path, :mod:`prorata.api.fastpath`) decide with it."""
    if lookup.email is None:
        return None
    if not lookup.members:
        return Entitlement(lookup.email, False, "no_membership", None, None, None, 0, [], None)
    options = []
    for member in lookup.members:
        if member.subscription_id is None:
            reason: str | None = "no_subscription"
        elif not member.licensed:
            reason = "no_license"
        elif member.status == SubscriptionStatus.EXPIRED:
            reason = "expired"
        elif member.status == SubscriptionStatus.PAST_DUE:
            reason = "past_due"
        else:
            reason = None
        rank = (reason is not None, reason not in (None, "expired", "past_due"))
        options.append((rank, member, reason))
    _rank, member, reason = min(options, key=lambda option: option[0])
    has_plan = member.subscription_id is not None
    live = has_plan and member.status != SubscriptionStatus.EXPIRED
    return Entitlement(
        email=lookup.email, may_host=reason is None, reason=reason,
        account_id=member.account_id, account_name=member.account_name,
        plan=member.plan if has_plan else None,
        participant_limit=member.participant_limit if live else 0,
        features=sorted(member.features) if live else [],
        valid_until=member.period_end if reason is None else None,
    )


def entitlement_for(email: str) -> Entitlement | None:
    """The entitlement of the user signing in with ``email`` (case-insensitive), or None for an
    unknown or inactive user; the caller has checked the product key. Through the ORM (the
    reference road; the WSGI fast path reads the same rows in one statement)."""
    from prorata.licenses.queries import entitlement_lookup_orm

    return entitlement_decide(entitlement_lookup_orm(email=email, key=None,
                                                     product=WEBINAR_PRODUCT))
