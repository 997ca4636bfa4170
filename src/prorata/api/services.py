"""Services that write API tokens: create, revoke, and authenticate (which records the last use).

Every instant comes from the project clock, read once per call. Creation and revocation are audited
in the same transaction (``api_token.create`` / ``api_token.revoke``); the audit row never holds the
secret, only the non-secret prefix.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from prorata.accounts.models import User
from prorata.accounts.permissions import remember_memberships
from prorata.accounts.services import audit_record
from prorata.api.errors import InvalidApiToken
from prorata.api.models import ApiToken
from prorata.api.queries import token_with_memberships
from prorata.common.clock import format_instant, now
from prorata.common.db import retry_transient
from prorata_core.errors import ValidationError

#: Every token starts with this, so that secret scanners and people recognise it.
BRAND = "prorata_"
#: The prefix alphabet (lower-case base32): easy to read aloud and to select with a double click.
_PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_PREFIX_LENGTH = 10
_TOKEN = re.compile(r"^prorata_([a-z2-7]{10})_([A-Za-z0-9_-]{43})$")
#: ``last_used_at`` is rewritten at most once a minute per token: one API call is not one UPDATE.
LAST_USED_PRECISION = timedelta(minutes=1)
NAME_MAX_LENGTH = 100


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _new_prefix() -> str:
    return "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(_PREFIX_LENGTH))


def api_token_create(
    *,
    user: User,
    name: str,
    valid_for: timedelta | None = None,
    ip: str | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the full token, which is never stored.

    ``name`` says what the token is for (1 to 100 characters). With ``valid_for`` (positive) the
    token expires that long after the project clock's instant; without it, it lasts until revoked.
    Bad input raises ValidationError and creates nothing.
    """
    name = name.strip()
    if not name:
        raise ValidationError("Give the token a name that says what it is for.")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(
            f"A token name has at most {NAME_MAX_LENGTH} characters.", max_length=NAME_MAX_LENGTH
        )
    if valid_for is not None and valid_for <= timedelta(0):
        raise ValidationError(
            "A token's validity must be a positive duration; leave it empty for no expiry.",
            valid_for_seconds=int(valid_for.total_seconds()),
        )
    instant = now()
    expires_at = instant + valid_for if valid_for is not None else None
    secret = secrets.token_urlsafe(32)  # 256 bits, 43 characters
    # A prefix collision (50 random bits) is all but impossible; the unique constraint decides.
    for attempt in range(3):
        prefix = _new_prefix()
        token = f"{BRAND}{prefix}_{secret}"
        try:
            with transaction.atomic():
                row = ApiToken.objects.create(
                    user=user, name=name, prefix=prefix, secret_hash=_hash(token),
                    created_at=instant, expires_at=expires_at,
                )
                audit_record(
                    actor=user, action="api_token.create", obj=row, ip=ip,
                    after={"name": name, "prefix": prefix,
                           "expires_at": format_instant(expires_at) if expires_at else None},
                )
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        return row, token
    raise AssertionError("unreachable")  # pragma: no cover


def api_token_revoke(*, actor: User, token: ApiToken, ip: str | None = None) -> ApiToken:
    """Revoke ``token`` now; revoking a revoked token changes and records nothing.

    The caller has checked that ``actor`` may (the tokens page only finds the user's own tokens).
    """
    with transaction.atomic():
        row = ApiToken.objects.select_for_update().get(pk=token.pk)
        if row.revoked_at is not None:
            return row
        row.revoked_at = now()
        row.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor, action="api_token.revoke", obj=row, ip=ip,
            before={"name": row.name, "prefix": row.prefix, "revoked_at": None},
            after={"revoked_at": format_instant(row.revoked_at)},
        )
    return row


def _token_with_user(prefix: str) -> ApiToken | None:
    """The token of ``prefix`` with its user, the user's accounts and memberships kept for the
    request (:func:`~prorata.accounts.permissions.remember_memberships` spares the endpoint the
    account's query): one hand-written query, :func:`prorata.api.queries.token_with_memberships`."""
    found = token_with_memberships(prefix=prefix)
    if found is None:
        return None
    token, pairs = found
    remember_memberships(token.user, pairs)
    return token


def api_token_authenticate(*, token: str) -> User:
    """The active user that ``token`` belongs to; records the use in ``last_used_at``.

    Raises InvalidApiToken (HTTP 401) for a malformed, unknown, revoked or expired token, or one
    whose user is disabled. Revoked and expired are told apart only after the secret matched.
    """
    match = _TOKEN.match(token.strip())
    if match is None:
        raise InvalidApiToken(
            "This is not a Prorata API token; they look like prorata_xxxxxxxxxx_… "
            "and are created on your profile's API tokens page.",
            reason="malformed",
        )
    row = _token_with_user(match.group(1))
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(match.group(0))):
        raise InvalidApiToken("This API token is not valid.", reason="unknown")
    instant = now()
    status = row.status_at(instant)
    if status == "revoked":
        raise InvalidApiToken(
            "This API token was revoked; create a new one on your profile's API tokens page.",
            reason="revoked",
        )
    if status == "expired" and row.expires_at is not None:
        raise InvalidApiToken(
            f"This API token expired at {format_instant(row.expires_at)}; create a new one on "
            "your profile's API tokens page.",
            reason="expired", expired_at=format_instant(row.expires_at),
        )
    if not row.user.is_active:
        raise InvalidApiToken("The user of this API token is disabled.", reason="user_inactive")
    if row.last_used_at is None or instant - row.last_used_at >= LAST_USED_PRECISION:
        _mark_used(row.pk, instant)
        row.last_used_at = instant
    return row.user


@retry_transient
def _mark_used(token_id: int, instant: datetime) -> None:
    """One statement, its own transaction: retried when SQLite's writer is busy."""
    ApiToken.objects.filter(pk=token_id).update(last_used_at=instant)
