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

from prorata.accounts.models import Account, User
from prorata.accounts.permissions import remember_memberships
from prorata.accounts.services import audit_record
from prorata.api.errors import InvalidApiToken
from prorata.api.models import ApiToken, OperatorKey, OperatorKeyScope, OperatorRequest
from prorata.api.queries import token_with_memberships
from prorata.common.cardnumbers import mask_card_numbers
from prorata.common.clock import MOVABLE, clock_mode, format_instant, now
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
    name = mask_card_numbers(name.strip())
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


# --- operator API keys (issue 17) -----------------------------------------------------------------

#: ``prorata_sk_live_<prefix>_<secret>`` / ``prorata_sk_test_…``: a secret scanner's pattern.
OPERATOR_BRAND = "prorata_sk_"
_OPERATOR_KEY = re.compile(r"^prorata_sk_(live|test)_([a-z2-7]{10})_([A-Za-z0-9_-]{43})$")
#: The domain of the keys' own users: ``.invalid`` is reserved (RFC 2606), no mail goes there.
PRINCIPAL_DOMAIN = "operator-keys.invalid"


def operator_key_create(
    *, name: str, scope: str, actor: User, ip: str | None = None,
) -> tuple[OperatorKey, str]:
    """Create an operator API key named ``name`` (1 to 100 characters) with ``scope``
    (:class:`~prorata.api.models.OperatorKeyScope`); returns the row and the key, which is
    never stored (only its SHA-256). The key is a test key when the project clock is movable.

    Who may call: the console's operator-key page, for an operator or a superuser (it checks).
    Audited (``operator_key.create``, with the prefix and scope, never the secret). Bad input
    raises ValidationError and creates nothing.
    """
    name = mask_card_numbers(" ".join((name or "").split()))
    if not name:
        raise ValidationError("Give the key a name that says which system uses it.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(f"A key name has at most {NAME_MAX_LENGTH} characters.",
                              field="name", max_length=NAME_MAX_LENGTH)
    if scope not in OperatorKeyScope.values:
        raise ValidationError("Choose read only or read and write.", field="scope")
    test_mode = clock_mode() == MOVABLE
    mode = "test" if test_mode else "live"
    instant = now()
    secret = secrets.token_urlsafe(32)
    for attempt in range(3):
        prefix = _new_prefix()
        key = f"{OPERATOR_BRAND}{mode}_{prefix}_{secret}"
        try:
            with transaction.atomic():
                principal = User.objects.create_user(
                    f"key-{prefix}@{PRINCIPAL_DOMAIN}", None, first_name="API key",
                    last_name=name[:150])
                row = OperatorKey.objects.create(
                    name=name, prefix=prefix, secret_hash=_hash(key), scope=scope,
                    test_mode=test_mode, principal=principal, created_at=instant,
                    created_by=actor)
                audit_record(actor=actor, action="operator_key.create", obj=row, ip=ip,
                             after={"name": name, "prefix": prefix, "scope": scope,
                                    "test_mode": test_mode, "acts_as": principal.email})
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        return row, key
    raise AssertionError("unreachable")  # pragma: no cover


def operator_key_revoke(*, key: OperatorKey, actor: User, ip: str | None = None) -> bool:
    """Revoke ``key`` now: its next request is a 401. False (and nothing recorded) if it
    already was. Audited (``operator_key.revoke``)."""
    with transaction.atomic():
        row = OperatorKey.objects.select_for_update().get(pk=key.pk)
        if row.revoked_at is not None:
            return False
        row.revoked_at, row.revoked_by = now(), actor
        row.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(actor=actor, action="operator_key.revoke", obj=row, ip=ip,
                     before={"name": row.name, "prefix": row.prefix, "scope": row.scope,
                             "revoked_at": None},
                     after={"revoked_at": format_instant(row.revoked_at)})
    return True


def operator_key_authenticate(*, key: str, ip: str | None = None) -> OperatorKey:
    """The usable operator key ``key`` with its principal loaded; records the use
    (``last_used_at``, at most once a minute, and ``last_used_ip``).

    Raises InvalidApiToken (HTTP 401, ``params.reason``: ``malformed``, ``unknown``,
    ``revoked``, ``mode_mismatch``). The secret is compared in constant time; revoked is told
    apart only after it matched.
    """
    match = _OPERATOR_KEY.match((key or "").strip())
    if match is None:
        raise InvalidApiToken(
            "This endpoint takes an operator API key (prorata_sk_live_… or prorata_sk_test_…), "
            "created by an operator in the console.", reason="malformed")
    row = (OperatorKey.objects.select_related("principal").filter(prefix=match.group(2))
           .first())
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(match.group(0))):
        raise InvalidApiToken("This operator API key is not valid.", reason="unknown")
    if row.revoked_at is not None:
        raise InvalidApiToken("This operator API key was revoked; an operator creates a new one "
                              "in the console.", reason="revoked")
    if row.test_mode != (clock_mode() == MOVABLE):
        raise InvalidApiToken(
            "This is a test key and the clock here is the real one (or a live key on a test "
            "clock): use a key made on this installation.", reason="mode_mismatch",
            mode=row.mode)
    instant = now()
    if (row.last_used_at is None or instant - row.last_used_at >= LAST_USED_PRECISION
            or row.last_used_ip != ip):
        _mark_key_used(row.pk, instant, ip)
        row.last_used_at, row.last_used_ip = instant, ip
    return row


@retry_transient
def _mark_key_used(key_id: int, instant: datetime, ip: str | None) -> None:
    OperatorKey.objects.filter(pk=key_id).update(last_used_at=instant, last_used_ip=ip)


# --- the operator API's writes under their Idempotency-Key ---------------------------------------

#: A first request still marked running after this long died with its process (its business
#: transaction rolled back with it, and an order is protected by its own key): a retry takes over.
ABANDONED_AFTER = timedelta(minutes=5)


def operator_request_begin(
    *, key: str, fingerprint: str, operator_key: OperatorKey
) -> tuple[OperatorRequest | None, OperatorRequest | None]:
    """Claim ``key`` for a write: ``(claimed, None)`` for a new key (committed at once, so that a
    concurrent retry sees it), ``(None, stored)`` for a replay of a finished one.

    Raises IdempotencyConflict when ``key`` was sent with another request (``fingerprint``:
    method, path and body), CheckoutInProgress while its first request is still running."""
    from prorata.subscriptions.errors import CheckoutInProgress, IdempotencyConflict

    instant = now()
    try:
        with transaction.atomic():
            row = OperatorRequest.objects.create(key=key, fingerprint=fingerprint,
                                                 operator_key=operator_key, created_at=instant)
        return row, None
    except IntegrityError:
        pass
    stored = OperatorRequest.objects.filter(key=key).first()
    if stored is None:  # abandoned and deleted in between: the caller may simply retry
        raise CheckoutInProgress("This request is being processed; send it again in a moment.")
    if stored.fingerprint != fingerprint:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used for another request: use a new key for a new "
            "request, and the same key only to retry the very same one.")
    if stored.status:
        return None, stored
    if instant - stored.created_at < ABANDONED_AFTER:
        raise CheckoutInProgress(
            "The first request with this Idempotency-Key is still being processed; send it "
            "again in a moment.")
    taken = OperatorRequest.objects.filter(pk=stored.pk, status=0,
                                           created_at=stored.created_at).update(created_at=instant)
    if not taken:
        raise CheckoutInProgress("This request is being processed; send it again in a moment.")
    stored.created_at = instant
    return stored, None


def operator_request_finish(*, row: OperatorRequest, status: int, body: bytes) -> None:
    """Keep the answer of a claimed key (in the write's own transaction when it has one)."""
    OperatorRequest.objects.filter(pk=row.pk).update(status=status, body=body)


def operator_request_release(*, row: OperatorRequest) -> None:
    """Forget a claimed key whose request failed (nothing kept): the same key may be retried."""
    OperatorRequest.objects.filter(pk=row.pk, status=0).delete()


def operator_customer_language(*, account: Account, language: str, actor: User,
                               ip: str | None = None) -> Account:
    """Set the language of the customer's e-mails and documents (``en`` or ``fr``), audited as
    ``account.language``. Who may call: the operator API (a read-write key)."""
    from django.conf import settings

    from prorata.billing.locks import lock_account

    if language not in dict(settings.LANGUAGES):
        raise ValidationError("language is 'en' or 'fr'.", field="language")
    with transaction.atomic():
        locked = lock_account(account.pk)
        if locked.language != language:
            before = locked.language
            locked.language = language
            locked.save(update_fields=["language"])
            audit_record(actor=actor, action="account.language", account=locked, obj=locked,
                         before={"language": before}, after={"language": language}, ip=ip)
    return locked
