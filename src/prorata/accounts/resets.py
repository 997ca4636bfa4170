"""Password-reset requests: the page answers the same, in the same work, for any address.

Django's own reset view looks the address up and sends the e-mail by SMTP while the visitor waits,
so a known address answers measurably slower than an unknown one (an enumeration oracle), and
nothing limits how many e-mails one visitor can make Prorata send to someone else.

- :func:`password_reset_request` is all the page does: one read (the requests from the client's IP
  in :data:`WINDOW`) and one insert of a :class:`~prorata.accounts.models.PasswordResetRequest`,
  the same statements whether or not an account uses the address. Past :data:`MAX_PER_IP` requests
  from one IP it refuses (the page says how long to wait) and writes nothing.
- :func:`password_resets_queue` (the worker's mail job, every few seconds) handles the pending
  requests: for an active user with a usable password it queues the reset e-mail in the outbox in
  the user's language, at most :data:`MAX_PER_ADDRESS` per address in :data:`WINDOW` (more are
  ``throttled``: the owner is not mail-bombed); an unknown address is recorded ``unknown``. The
  outbox then delivers it with its retries and ``Message-ID`` (:mod:`prorata.notifications.outbox`).

The link's token is made when the job queues the e-mail (it is valid 24 hours of the project clock
from then, :mod:`prorata.accounts.tokens`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.forms import PasswordResetForm
from django.db import transaction
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from prorata.accounts.models import PasswordResetRequest
from prorata.accounts.throttle import IP, Block, normalize_email
from prorata.accounts.tokens import password_reset_tokens
from prorata.common.clock import now
from prorata.notifications.outbox import outbox_enqueue

#: Requests accepted from one client IP within :data:`WINDOW` (an office behind one proxy included).
MAX_PER_IP = 20
#: Reset e-mails sent to one address within :data:`WINDOW`; further requests send nothing.
MAX_PER_ADDRESS = 3
WINDOW = timedelta(hours=1)

SENT = "sent"
UNKNOWN = "unknown"
THROTTLED = "throttled"


def password_reset_request(*, email: str, ip: str | None, language: str) -> Block | None:
    """Record a reset request for ``email`` (already a valid address) from ``ip``, its e-mail to be
    written in ``language`` unless the user chose one. Returns the :class:`Block` when ``ip`` made
    :data:`MAX_PER_IP` requests in the last :data:`WINDOW` (nothing written), else None.

    Who may call: the password-reset page, for anyone (signed in or not)."""
    at = now()
    if ip is not None:
        recent = list(PasswordResetRequest.objects.filter(ip=ip, at__gt=at - WINDOW)
                      .order_by("-at").values_list("at", flat=True)[:MAX_PER_IP])
        if len(recent) >= MAX_PER_IP:
            return Block(scope=IP, until=recent[-1] + WINDOW)
    PasswordResetRequest.objects.create(email=normalize_email(email), ip=ip,
                                        language=language[:8], at=at)
    return None


def password_resets_queue(*, limit: int = 100) -> dict[str, int]:
    """Handle every pending reset request, ``limit`` per transaction: queue the e-mail, or record
    why not. Returns the counts by outcome. Safe to run twice at once (rows claimed with
    ``SKIP LOCKED`` on PostgreSQL; SQLite has one writer). Purges handled requests older than
    :data:`WINDOW`.

    Who may call: the worker's mail job (:func:`prorata.jobs.periodic.deliver_mail`), the
    ``deliver-mail`` command, tests."""
    counts = {SENT: 0, UNKNOWN: 0, THROTTLED: 0}
    while True:
        with transaction.atomic():
            pending = list(PasswordResetRequest.objects.select_for_update(skip_locked=True)
                           .filter(handled_at=None).order_by("id")[:limit])
            if not pending:
                break
            at = now()
            # E-mails this batch queued, per address: its rows are saved only at the end.
            batch: dict[str, int] = {}
            for request in pending:
                request.outcome = _outcome(request, at, batch)
                request.handled_at = at
                counts[request.outcome] += 1
            PasswordResetRequest.objects.bulk_update(pending, ["outcome", "handled_at"])
    PasswordResetRequest.objects.filter(handled_at__lt=now() - WINDOW).delete()
    return counts


def _outcome(request: PasswordResetRequest, at: datetime, batch: dict[str, int]) -> str:
    # Django's rule for who may reset: active, with a usable password, the address matched
    # without regard to case.
    users = list(PasswordResetForm().get_users(request.email))
    if not users:
        return UNKNOWN
    already = batch.get(request.email, 0) + PasswordResetRequest.objects.filter(
        email=request.email, outcome=SENT, handled_at__gt=at - WINDOW).count()
    if already >= MAX_PER_ADDRESS:
        return THROTTLED
    batch[request.email] = batch.get(request.email, 0) + 1
    for user in users:
        outbox_enqueue(
            to=user.email, template="password_reset", language=user.language or request.language,
            context={"email": user.email, "uid": urlsafe_base64_encode(force_bytes(user.pk)),
                     "token": password_reset_tokens.make_token(user)},
            dedupe_key=f"password-reset:{request.pk}:{user.pk}",
        )
    return SENT
