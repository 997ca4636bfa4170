"""One-time links that expire by the project clock: password reset and e-mail change.

- Password reset uses Django's token generator, whose ``_now`` reads the wall clock; ours asks the
  project clock instead, so links expire after ``settings.PASSWORD_RESET_TIMEOUT`` of *project* time
  (a test or the demo moves the clock past it). The token hashes the password and last sign-in, so
  it stops working once used.
- E-mail change links carry a request id, its issue instant and a random nonce, signed with the
  project's secret key. Only the nonce's SHA-256 is stored; the expiry and the single use are checked
  against the stored request (see :func:`prorata.accounts.profile.email_change_confirm`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing

from prorata.common.clock import now


class ClockPasswordResetTokenGenerator(PasswordResetTokenGenerator):
    """Django's password reset tokens, timed by the project clock."""

    def _now(self) -> datetime:
        # Django counts seconds from the naive datetime(2001, 1, 1); the project clock is aware UTC.
        return now().astimezone(UTC).replace(tzinfo=None)


password_reset_tokens = ClockPasswordResetTokenGenerator()

EMAIL_CHANGE_SALT = "prorata.accounts.email-change"


def email_change_lifetime() -> timedelta:
    """How long an e-mail change link works: the password reset timeout (24 hours)."""
    return timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)


def new_nonce() -> str:
    return secrets.token_urlsafe(32)


def nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class EmailChangeLink:
    request_id: int
    issued_at: int  # seconds since the epoch, project clock
    nonce: str


def email_change_token(link: EmailChangeLink) -> str:
    """The signed, URL-safe token of an e-mail change link."""
    return signing.dumps(
        {"r": link.request_id, "i": link.issued_at, "n": link.nonce}, salt=EMAIL_CHANGE_SALT
    )


def email_change_link(token: str) -> EmailChangeLink | None:
    """The link a token stands for, or None if it was not signed by us or is malformed."""
    try:
        data = signing.loads(token, salt=EMAIL_CHANGE_SALT)
        return EmailChangeLink(int(data["r"]), int(data["i"]), str(data["n"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
