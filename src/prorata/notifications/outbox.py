"""The e-mail outbox: enqueue inside the business transaction, deliver at least once with a job.

- :func:`outbox_enqueue` writes one :class:`~prorata.notifications.models.OutboxMessage` row. Call it
  inside the transaction of the change it reports, so that both are kept or neither (DESIGN §8:
  ``transaction.on_commit`` alone loses the e-mail on a crash between commit and send). The same
  ``dedupe_key`` twice keeps the first row.
- :func:`outbox_deliver` (the ``prorata deliver-mail`` job) claims due rows, renders each in its
  language, attaches documents through the registered attachment renderers, and sends it with
  Django's e-mail framework. A failed attempt is retried later by the project clock
  (:data:`RETRY_DELAYS`); after :data:`MAX_ATTEMPTS` attempts the row is ``failed``.

Claiming moves ``next_attempt_at`` forward *before* sending (a lease): a crash mid-send leaves the row
due again later rather than lost, and two workers never send one row at the same time. A row can thus
be sent twice (after a crash between sending and marking it sent): the ``Message-ID`` and
``X-Prorata-Dedupe-Key`` headers, both derived from the dedupe key, let the receiver drop the copy.

Templates live under ``notifications/email/<template>/`` as ``subject.txt``, ``body.txt`` and
``body.html``. Their context is plain JSON: amounts as ``{"amount": <minor units>, "currency": "EUR"}``,
instants as ISO 8601 UTC strings, links as site paths (``/billing/receipts/12/``, made absolute with
``settings.PRORATA_BASE_URL``) or absolute URLs. :data:`TEMPLATES` lists each template's keys.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import format_datetime, parseaddr
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from prorata.common import faults
from prorata.common.clock import now
from prorata.notifications.models import OutboxMessage, OutboxStatus

logger = logging.getLogger(__name__)

#: Wait after the n-th failed attempt (index n-1); the last one repeats if a row goes past it.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
)
#: A message whose 8th attempt fails is given up (``failed``), about 45 hours after the first.
MAX_ATTEMPTS = 8

#: Each template's context keys: (required, optional). Items are strings, or
#: ``{"product", "plan", "licenses", "cycle", "previous": {"plan", "licenses", "cycle"} | None}``;
#: a receipt's items (:class:`prorata.billing.writer.ReceiptItem`) add ``period_start`` and
#: ``period_end`` (the period ``[start, end)`` paid for) and ``next_billing_date`` (None: not
#: renewed), which the e-mails show under each item.
TEMPLATES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # A paid invoice: first purchase, change or renewal (DESIGN S6, S12); or (kind refund) a
    # credit note paid back to the card, refunding amount_paid of invoice_number to method.
    # kind: purchase|change|renewal|refund.
    "receipt": (
        frozenset({"kind", "document_number", "amount_paid"}),
        frozenset({"name", "items", "period_start", "period_end", "total", "credit_applied",
                   "next_billing_date", "url", "invoice_number", "method"}),
    ),
    # A change that left credit on the account (S8): credit created, balance, when it is used.
    "credit_created": (
        frozenset({"credit"}),
        frozenset({"name", "document_number", "balance", "items", "next_billing_date", "url",
                   "applied_to"}),
    ),
    # The next renewal cancelled (S2): active until period_end, then it expires.
    "renewal_cancelled": (
        frozenset({"product", "period_end"}),
        frozenset({"name", "plan", "licenses", "url"}),
    ),
    # To a corporate account's advisor (S14): an invoice on payment terms is past its due date.
    "invoice_overdue": (
        frozenset({"number", "account", "amount_due", "due_at"}),
        frozenset({"name", "url"}),
    ),
    # A subscription that ended without renewal (S2, S16): a cancelled renewal, a free trial, or
    # (reason "payment_failed") the end of dunning: the unpaid invoice and the credit note voiding it.
    "subscription_expired": (
        frozenset({"product", "period_end"}),
        frozenset({"name", "trial", "url", "reason", "document_number", "amount_due",
                   "credit_note_number"}),
    ),
    # The renewal resumed (S2): renewed automatically at period_end.
    "renewal_resumed": (
        frozenset({"product", "period_end"}),
        frozenset({"name", "plan", "licenses", "url"}),
    ),
    # A paid order that could not be applied as priced (its subscription moved while the payment
    # was being confirmed): the payment refunded (refunded true) or kept as credit (balance).
    "order_not_applied": (
        frozenset({"amount", "refunded"}),
        frozenset({"name", "items", "balance", "url", "applied_to"}),
    ),
    # Credit granted by staff (prorata.console), with the credit note attached.
    # applied_to (here and in credit_created, order_not_applied): the open invoices the new
    # credit paid first (prorata.billing.credit), each number, amount and what is still due.
    "credit_granted": (
        frozenset({"credit", "document_number"}),
        frozenset({"name", "url", "balance", "applied_to"}),
    ),
    # Support (prorata.support): a staff message to the customer's people; kind is the request's.
    "support_reply": (
        frozenset({"request_id", "kind", "body"}),
        frozenset({"name", "resolved", "url"}),
    ),
    # Support: a customer's message to the assignee, the advisor or the support queue (English).
    "support_to_staff": (
        frozenset({"request_id", "account", "kind", "author", "body"}),
        frozenset({"name", "reopened", "url"}),
    ),
    # A renewal or order whose charge failed: what is due, why, when it is retried, where to pay.
    "payment_failed": (
        frozenset({"amount_due"}),
        frozenset({"name", "document_number", "reason", "next_retry_at", "url", "items"}),
    ),
    # A renewal charge the customer's bank wants them to authenticate (3-D Secure, off session):
    # nothing charged; what is due, for what, when the card is tried again, and the Pay now page
    # (url) where they confirm the payment with their bank.
    "payment_requires_action": (
        frozenset({"amount_due", "url"}),
        frozenset({"name", "document_number", "next_retry_at", "items"}),
    ),
    # A password-reset link (prorata.accounts.resets), in the accounts e-mails' wording: the
    # address, the user's id in base 64 (uid) and the reset token, which the link carries.
    "password_reset": (frozenset({"email", "uid", "token"}), frozenset()),
}

#: Keys any template's context may carry, about its reader (:mod:`prorata.billing.writer`'s
#: ``contact_messages``): ``name``'s neighbours ``time_zone`` (the account's IANA zone: dates are
#: written in it and it is named under the signature) and ``to_billing_email`` (the reader is the
#: account's billing e-mail, not a member: the footer says so).
READER_KEYS = frozenset({"time_zone", "to_billing_email"})

#: (document id, language) → (file name, PDF bytes).
AttachmentRenderer = Callable[[int, str], tuple[str, bytes]]
_RENDERERS: dict[str, AttachmentRenderer] = {}

_DEDUPE_KEY = re.compile(r"[\x21-\x7e]{1,200}")
_MESSAGE_ID_SAFE = re.compile(r"[^A-Za-z0-9_-]")
_BLANK_LINES = re.compile(r"\n\s*\n")


class OutboxError(ValueError):
    """A programming error in a call to the outbox (unknown template, bad context or key)."""


def register_attachment_renderer(kind: str, fn: AttachmentRenderer) -> None:
    """Make attachments of ``kind`` (``"invoice"``, ``"credit_note"``) renderable at delivery:
    ``fn(document_id, language)`` returns ``(filename, pdf_bytes)``. Registering a kind again
    replaces its renderer. Call it from an ``AppConfig.ready``."""
    _RENDERERS[kind] = fn


def outbox_message(
    *,
    to: str,
    template: str,
    context: dict[str, Any],
    language: str,
    dedupe_key: str,
    at: datetime,
    attachments: list[dict[str, Any]] | None = None,
) -> OutboxMessage:
    """One e-mail's row, checked against its template's contract, due at ``at``; not saved.

    Every road that queues e-mails builds its rows here (:func:`outbox_enqueue` one at a time,
    the billing run many at once with :func:`outbox_save_many`), so every row passes the same
    checks. ``dedupe_key``: printable ASCII without spaces, at most 200 characters, naming the
    event (``"receipt:invoice:42:7"``). Raises :class:`OutboxError` for an unknown template or
    language, a missing or unknown context key, a malformed key, address or attachment.
    """
    _check(template=template, context=context, language=language, dedupe_key=dedupe_key,
           attachments=attachments or [], to=to)
    return OutboxMessage(
        dedupe_key=dedupe_key, to=to, template=template, context=context, language=language,
        attachments=attachments or [], status=OutboxStatus.PENDING, next_attempt_at=at,
        created_at=at,
    )


def outbox_save(message: OutboxMessage) -> OutboxMessage:
    """Save a row built by :func:`outbox_message`, in the caller's transaction; the same
    ``dedupe_key`` twice keeps the first row (returned)."""
    saved, _created = OutboxMessage.objects.get_or_create(
        dedupe_key=message.dedupe_key,
        defaults={
            "to": message.to, "template": message.template, "context": message.context,
            "language": message.language, "attachments": message.attachments,
            "next_attempt_at": message.next_attempt_at, "created_at": message.created_at,
        },
    )
    faults.point("after_outbox_row")
    return saved


def outbox_save_many(messages: list[OutboxMessage]) -> None:
    """Save rows built by :func:`outbox_message` in one statement, in the caller's transaction;
    a ``dedupe_key`` already queued keeps its first row."""
    OutboxMessage.objects.bulk_create(messages, ignore_conflicts=True)
    faults.point("after_outbox_row")


def outbox_enqueue(
    *,
    to: str,
    template: str,
    context: dict[str, Any],
    language: str,
    dedupe_key: str,
    attachments: list[dict[str, Any]] | None = None,
) -> OutboxMessage:
    """Queue one e-mail; returns its row (the existing one if ``dedupe_key`` was queued before).

    Call it inside the caller's ``transaction.atomic()`` block, with the change it reports: a rollback
    then takes the e-mail with it. Checks as :func:`outbox_message`.
    """
    return outbox_save(outbox_message(to=to, template=template, context=context,
                                      language=language, dedupe_key=dedupe_key,
                                      attachments=attachments, at=now()))


@dataclass(frozen=True)
class DeliveryBatch:
    """What one call of the delivery job did: rows claimed, and of them, sent."""

    claimed: int
    sent: int


def outbox_deliver(*, limit: int = 100) -> int:
    """Send up to ``limit`` due messages; returns how many were sent (see the module docstring)."""
    return outbox_deliver_batch(limit=limit).sent


def outbox_deliver_batch(*, limit: int = 100) -> DeliveryBatch:
    """:func:`outbox_deliver`, also saying how many rows it claimed (the job loops while > 0)."""
    claimed = _claim(limit)
    if not claimed:
        return DeliveryBatch(0, 0)
    faults.point("relay_after_claim")
    mail = get_connection(fail_silently=False)
    try:
        mail.open()
    except Exception as error:
        for message in claimed:
            _record_failure(message, error)
        return DeliveryBatch(len(claimed), 0)
    sent = 0
    try:
        for message in claimed:
            try:
                email = render_message(message)
                email.connection = mail
                email.send(fail_silently=False)
                faults.point("relay_after_send")
            except Exception as error:
                _record_failure(message, error)
            else:
                OutboxMessage.objects.filter(pk=message.pk).update(
                    status=OutboxStatus.SENT, sent_at=now(), last_error=""
                )
                faults.point("relay_after_mark_sent")
                sent += 1
    finally:
        mail.close()
    return DeliveryBatch(len(claimed), sent)


def outbox_retry_now(*, ids: list[int]) -> int:
    """Make the unsent messages among ``ids`` (waiting or failed) due now; returns how many. A
    failed message gets one more attempt (staff's "Send again now" in the console)."""
    return OutboxMessage.objects.filter(pk__in=ids).exclude(status=OutboxStatus.SENT).update(
        status=OutboxStatus.PENDING, next_attempt_at=now()
    )


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt (1 min, 5 min, 30 min, 2 h, ...)."""
    return RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]


def render_message(message: OutboxMessage) -> EmailMultiAlternatives:
    """The e-mail of ``message``, rendered in its language, with its attachments (not sent)."""
    folder = f"notifications/email/{message.template}/"
    with translation.override(message.language), timezone.override(
            _zone(message.context.get("time_zone"))):
        context = {
            **message.context,
            "language": message.language,
            "seller_name": settings.PRORATA_SELLER_NAME,
        }
        subject = " ".join(render_to_string(folder + "subject.txt", context).split())
        # Optional lines leave blank runs behind in a text template: at most one blank line.
        text = _BLANK_LINES.sub("\n\n", render_to_string(folder + "body.txt", context)).strip()
        text += "\n"
        html = render_to_string(folder + "body.html", context)
    email = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[message.to],
        headers={
            # The project clock's instant, not the system's: a demo's e-mails carry the demo's date.
            "Date": format_datetime(now()),
            "Message-ID": message_id(message.dedupe_key),
            "X-Prorata-Dedupe-Key": message.dedupe_key,
        },
    )
    email.attach_alternative(html, "text/html")
    for attachment in message.attachments:
        renderer = _RENDERERS.get(attachment["kind"])
        if renderer is None:
            raise OutboxError(
                f"No attachment renderer is registered for {attachment['kind']!r}; "
                "register one with register_attachment_renderer()."
            )
        filename, content = renderer(int(attachment["id"]), message.language)
        email.attach(filename, content, "application/pdf")
    return email


def _zone(name: Any) -> tzinfo:
    """The zone an e-mail's dates are written in: its context's ``time_zone``, else UTC."""
    try:
        return ZoneInfo(str(name)) if name else UTC
    except (ValueError, ZoneInfoNotFoundError):
        return UTC


def message_id(dedupe_key: str) -> str:
    """The ``Message-ID`` of the e-mail of ``dedupe_key``: the same key always gives the same id."""
    local = _MESSAGE_ID_SAFE.sub(lambda m: "".join(f"={b:02X}" for b in m[0].encode()), dedupe_key)
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    domain = address.rpartition("@")[2] or "prorata.localhost"
    return f"<{local}@{domain}>"


def _claim(limit: int) -> list[OutboxMessage]:
    """Take up to ``limit`` due pending rows, counting the attempt and moving ``next_attempt_at`` to
    when a failure would retry it. PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets workers share the
    queue. SQLite: the transaction takes the database's write lock at BEGIN, so claims queue."""
    at = now()
    with transaction.atomic():
        due = OutboxMessage.objects.filter(
            status=OutboxStatus.PENDING, next_attempt_at__lte=at
        ).order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        claimed = list(due[:limit])
        for message in claimed:
            message.attempts += 1
            message.next_attempt_at = at + retry_delay(message.attempts)
        OutboxMessage.objects.bulk_update(claimed, ["attempts", "next_attempt_at"])
    return claimed


def _record_failure(message: OutboxMessage, error: Exception) -> None:
    gave_up = message.attempts >= MAX_ATTEMPTS
    logger.warning(
        "E-mail %s (%s to %s), attempt %d, failed%s: %r", message.pk, message.template,
        message.to, message.attempts, " for the last time" if gave_up else "", error,
    )
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxStatus.FAILED if gave_up else OutboxStatus.PENDING,
        last_error=f"{type(error).__name__}: {error}"[:2000],
    )


def _check(
    *, template: str, context: dict[str, Any], language: str, dedupe_key: str,
    attachments: list[dict[str, Any]], to: str,
) -> None:
    if template not in TEMPLATES:
        raise OutboxError(f"Unknown e-mail template {template!r}; known: {sorted(TEMPLATES)}.")
    required, optional = TEMPLATES[template]
    missing = required - context.keys()
    unknown = context.keys() - required - optional - READER_KEYS
    if missing or unknown:
        raise OutboxError(
            f"The {template!r} e-mail's context lacks {sorted(missing)} or has unknown keys "
            f"{sorted(unknown)}; it takes {sorted(required)} and optionally {sorted(optional)}."
        )
    if language not in dict(settings.LANGUAGES):
        raise OutboxError(
            f"{language!r} is not one of the project's languages {sorted(dict(settings.LANGUAGES))}."
        )
    if not _DEDUPE_KEY.fullmatch(dedupe_key):
        raise OutboxError(
            f"{dedupe_key!r} is not a dedupe key: use 1 to 200 printable ASCII characters without "
            "spaces, such as 'receipt:invoice:42'."
        )
    if "@" not in to or any(char.isspace() for char in to.strip()):
        raise OutboxError(f"{to!r} is not an e-mail address.")
    for attachment in attachments:
        if (
            not isinstance(attachment, dict)
            or set(attachment) != {"kind", "id"}
            or not isinstance(attachment["kind"], str)
            or type(attachment["id"]) is not int
        ):
            raise OutboxError(
                f"{attachment!r} is not an attachment; write {{'kind': 'invoice', 'id': 42}}."
            )
