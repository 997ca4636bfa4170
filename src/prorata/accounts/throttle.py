"""Sign-in throttling: failed sign-ins are counted per e-mail address *from one client IP*, and per
client IP.

- At most :data:`MAX_PER_ADDRESS` failures for one address from one IP and :data:`MAX_PER_IP` from
  one IP (whatever the addresses) within a sliding :data:`WINDOW`; past that, sign-ins for that
  address from that IP (or anything from that IP) are refused without checking the password, until
  enough failures have aged out of the window.
- Per address *and IP*, not per address alone: someone guessing elsewhere cannot lock the owner
  out of their own account, and the customers behind one office proxy are not all locked out by
  one colleague's typos (the IP-only limit is much higher). Behind a reverse proxy the client's IP
  must be the real one: ``PRORATA_TRUST_X_FORWARDED_FOR`` (docs/settings.md).
- Failures are rows of :class:`~prorata.accounts.models.SignInFailure`, timed by the project clock, so
  every process and server agrees and a test can move the clock past the window.
- Refused attempts are not counted: an attacker cannot keep an address locked forever by hammering it,
  and the wait the message announces is the real one.
- The failure that starts a lockout writes one ``auth.lockout`` audit entry (per address or per IP).
- A successful sign-in, and a completed password reset, clear the address's failures.

Concurrent attempts may each pass the check before either records its failure, so the limits can be
overshot by the number of requests in flight; that is the accepted price of not locking a row.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from prorata.accounts.models import SignInFailure, User
from prorata.accounts.services import audit_record
from prorata.common.clock import format_instant, now

MAX_PER_ADDRESS = 5
MAX_PER_IP = 100
WINDOW = timedelta(minutes=15)

ADDRESS = "address"
IP = "ip"


@dataclass(frozen=True, slots=True)
class Block:
    """Sign-ins refused for ``scope`` (``"address"`` or ``"ip"``) until ``until`` (project clock)."""

    scope: str
    until: datetime

    def minutes_left(self, at: datetime) -> int:
        """Whole minutes to wait from ``at``, rounded up (a lockout never announces 0 minutes)."""
        return max(1, math.ceil((self.until - at).total_seconds() / 60))


def normalize_email(email: str | None) -> str:
    """The address as failures are counted: trimmed, lower-case, at most 254 characters."""
    return (email or "").strip().lower()[:254]


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address: REMOTE_ADDR, or the last X-Forwarded-For entry when a trusted reverse
    proxy appends it (``PRORATA_TRUST_X_FORWARDED_FOR=1``). None when it is not an IP address."""
    candidate = request.META.get("REMOTE_ADDR", "")
    if getattr(settings, "PRORATA_TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded.strip():
            candidate = forwarded.split(",")[-1]
    try:
        return str(ipaddress.ip_address(candidate.strip()))
    except ValueError:
        return None


def _block_for(scope: str, limit: int, times: list[datetime]) -> Block | None:
    # ``times``: the most recent failures in the window, newest first, at most ``limit`` of them.
    # Blocked while ``limit`` failures are in the window, i.e. until the limit-th newest ages out.
    if len(times) < limit:
        return None
    return Block(scope, times[limit - 1] + WINDOW)


def _pair(email: str, ip: str | None) -> dict[str, Any]:
    """The failures of ``email`` from ``ip`` (from an unknown IP: those whose IP was unknown)."""
    return {"email": email, "ip": ip} if ip else {"email": email, "ip__isnull": True}


def _recent(limit: int, since: datetime, **key: Any) -> list[datetime]:
    return list(
        SignInFailure.objects.filter(at__gt=since, **key)
        .order_by("-at", "-id")
        .values_list("at", flat=True)[:limit]
    )


def signin_block(*, email: str, ip: str | None, at: datetime | None = None) -> Block | None:
    """The lockout that refuses a sign-in for ``email`` from ``ip`` now, or None.

    The address's lockout is reported first (its message offers the password reset).
    """
    at = at or now()
    since = at - WINDOW
    email = normalize_email(email)
    if email:
        block = _block_for(ADDRESS, MAX_PER_ADDRESS,
                           _recent(MAX_PER_ADDRESS, since, **_pair(email, ip)))
        if block is not None:
            return block
    if ip:
        return _block_for(IP, MAX_PER_IP, _recent(MAX_PER_IP, since, ip=ip))
    return None


def signin_failure_record(*, email: str, ip: str | None) -> Block | None:
    """Count one failed sign-in; returns the lockout it starts, if it starts one (then audited).

    Also purges failures that have left the window, so the table stays small.
    """
    email = normalize_email(email)
    with transaction.atomic():
        at = now()
        since = at - WINDOW
        SignInFailure.objects.filter(at__lte=since).delete()
        SignInFailure.objects.create(email=email, ip=ip, at=at)
        checks: list[tuple[str, int, dict[str, Any]]] = []
        if email:
            checks.append((ADDRESS, MAX_PER_ADDRESS, _pair(email, ip)))
        if ip:
            checks.append((IP, MAX_PER_IP, {"ip": ip}))
        started = None
        for scope, limit, key in checks:
            times = _recent(limit + 1, since, **key)
            if len(times) != limit:
                continue  # below the limit, or already over it (a concurrent attempt got there)
            block = Block(scope, times[limit - 1] + WINDOW)
            _audit_lockout(block, email=email, ip=ip, failures=limit)
            started = started or block
        return started


def _audit_lockout(block: Block, *, email: str, ip: str | None, failures: int) -> None:
    user = User.objects.filter(email__iexact=email).first() if block.scope == ADDRESS else None
    audit_record(
        actor=None,
        action="auth.lockout",
        obj=user,
        after={
            "scope": block.scope,
            "email": email if block.scope == ADDRESS else "",
            "ip": ip or "",
            "failures": failures,
            "window_minutes": int(WINDOW.total_seconds() // 60),
            "until": format_instant(block.until),
        },
        ip=ip,
    )


def signin_failures_clear(*, email: str) -> int:
    """Forget the address's failures (after a successful sign-in or password reset)."""
    deleted, _per_model = SignInFailure.objects.filter(email=normalize_email(email)).delete()
    return deleted
