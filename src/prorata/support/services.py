"""Writes of support requests (S11, S13): created by customers, answered and closed by staff."""

from __future__ import annotations

from django.db import transaction

from prorata.accounts.models import Account, User
from prorata.accounts.services import audit_record
from prorata.common.clock import now
from prorata.support.models import SupportRequest, SupportRequestKind, SupportRequestStatus
from prorata_core.errors import ValidationError

MESSAGE_MAX = 5000


def support_request_create(
    *, account: Account, user: User, kind: str, message: str
) -> SupportRequest:
    """Record a request of ``user`` (a member of ``account``: the caller checked it) to support.

    ``kind``: billing_question, refund_request or downgrade_request; ``message``: 1 to 5,000
    characters. Audited in the same transaction.
    """
    if kind not in SupportRequestKind.values:
        raise ValidationError("Choose what the request is about.", kind=kind)
    text = (message or "").strip()
    if not text or len(text) > MESSAGE_MAX:
        raise ValidationError(
            f"Write a message of 1 to {MESSAGE_MAX} characters.", max=MESSAGE_MAX,
        )
    with transaction.atomic():
        request = SupportRequest.objects.create(
            account=account, user=user, kind=kind, message=text, created_at=now(),
        )
        audit_record(actor=user, action="support_request.create", account=account, obj=request,
                     after={"kind": kind, "message": text})
    return request


def support_request_answer(
    *, support_request: SupportRequest, actor: User, answer: str, close: bool = True
) -> SupportRequest:
    """Staff's answer to a request (the console), closing it unless ``close`` is false."""
    with transaction.atomic():
        before = {"status": support_request.status, "answer": support_request.answer}
        support_request.answer = answer.strip()
        support_request.answered_by = actor
        if close:
            support_request.status = SupportRequestStatus.CLOSED
            support_request.closed_at = now()
        support_request.save(update_fields=["answer", "answered_by", "status", "closed_at"])
        audit_record(actor=actor, action="support_request.answer",
                     account=support_request.account, obj=support_request, before=before,
                     after={"status": support_request.status, "answer": support_request.answer})
    return support_request
