"""Writes of support requests (S11, S13, S14): opened and answered by the account's members,
answered, assigned and resolved by staff. Every write is audited; every message e-mails the other
side through the outbox, in the same transaction.

Who is told:
- a customer's message: the assigned staff member; else the account's advisor for a corporate
  account (S14); else the support queue (``settings.PRORATA_SUPPORT_EMAIL``);
- a staff message: the request's author and the account's billing contacts (the members who may
  see the Support pages), each in their language.

Statuses: a staff reply sets ``waiting`` (on the customer) unless it resolves the request; any
customer message sets ``open`` again, also on a resolved request (a reply reopens it).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import gettext_noop

from prorata.accounts.models import Account, Membership, User
from prorata.accounts.services import audit_record
from prorata.billing.models import Document, DocumentKind
from prorata.catalog.models import Plan
from prorata.common.cardnumbers import mask_card_numbers
from prorata.common.clock import now
from prorata.support.models import (
    SupportMessage,
    SupportRequest,
    SupportRequestKind,
    SupportRequestStatus,
)
from prorata_core.errors import ValidationError

MESSAGE_MAX = 5000


def _text(message: str) -> str:
    """The message as stored, e-mailed and audited: trimmed, any card number masked."""
    text = (message or "").strip()
    if not text or len(text) > MESSAGE_MAX:
        # One literal, so that the page shows its translation (web.errors falls back to gettext).
        raise ValidationError(gettext_noop("Write a message of 1 to 5000 characters."),
                              max=MESSAGE_MAX)
    return mask_card_numbers(text)


def support_request_create(
    *, account: Account, user: User, kind: str, message: str, invoice_id: int | None = None,
    product_code: str = "", target_plan: str = "", target_cycle: str = "",
    target_quantity: int | None = None,
) -> SupportRequest:
    """Open a request of ``user`` (a member of ``account``: the caller checked it) to support.

    ``kind``: billing_question, refund_request (``invoice_id``: an issued invoice of the account),
    downgrade_request (``target_plan``: a plan code of the catalog; product, cycle and license
    count optional) or other; ``message``: 1 to 5,000 characters. Audited; the staff are e-mailed.
    A corporate account's request is addressed to its advisor (S14): assigned to them at once.
    """
    if kind not in SupportRequestKind.values:
        raise ValidationError(gettext_noop("Choose what the request is about."), kind=kind)
    text = _text(message)
    invoice = None
    if kind == SupportRequestKind.REFUND_REQUEST:
        invoice = Document.objects.filter(
            pk=invoice_id or 0, account=account, kind=DocumentKind.INVOICE, number__isnull=False,
        ).first()
        if invoice is None:
            raise ValidationError(gettext_noop("Choose the invoice you would like refunded."))
    if kind == SupportRequestKind.DOWNGRADE_REQUEST:
        if not Plan.objects.filter(code=target_plan, active=True).exists():
            raise ValidationError(gettext_noop("Choose the plan you would like to move to."))
    else:
        product_code = target_plan = target_cycle = ""
        target_quantity = None
    with transaction.atomic():
        at = now()
        request = SupportRequest.objects.create(
            account=account, user=user, kind=kind, invoice=invoice,
            assignee=account.advisor if account.is_corporate and account.advisor_id else None,
            product_code=product_code[:40], target_plan=target_plan[:40],
            target_cycle=target_cycle[:40], target_quantity=target_quantity,
            created_at=at, updated_at=at,
        )
        message_row = SupportMessage.objects.create(request=request, author=user, body=text,
                                                    created_at=at)
        audit_record(actor=user, action="support_request.create", account=account, obj=request,
                     after={"kind": kind, "message": text,
                            "invoice": invoice.number if invoice else None,
                            "target_plan": target_plan or None})
        _notify_staff(request, message_row)
    return request


def support_message_post(*, support_request: SupportRequest, user: User, message: str
                         ) -> SupportMessage:
    """A member's reply in the thread (the caller checked membership): the request is open again,
    also if it was resolved; the assignee (or queue, or advisor) is e-mailed."""
    text = _text(message)
    with transaction.atomic():
        request = SupportRequest.objects.select_for_update().get(pk=support_request.pk)
        at = now()
        row = SupportMessage.objects.create(request=request, author=user, body=text,
                                            created_at=at)
        before = request.status
        request.status, request.resolved_at, request.updated_at = (
            SupportRequestStatus.OPEN, None, at)
        request.save(update_fields=["status", "resolved_at", "updated_at"])
        audit_record(actor=user, action="support_request.reply", account=request.account,
                     obj=request, before={"status": before},
                     after={"status": request.status, "message": text})
        _notify_staff(request, row)
    support_request.refresh_from_db()
    return row


def support_request_answer(
    *, support_request: SupportRequest, actor: User, answer: str, close: bool = False,
    ip: str | None = None,
) -> SupportRequest:
    """Staff's message in the thread (the console; the caller checked that ``actor`` may handle
    the account): the request waits on the customer, or is resolved if ``close``. The customer's
    billing contacts and the author are e-mailed. An unassigned request is assigned to ``actor``."""
    text = _text(answer)
    with transaction.atomic():
        request = SupportRequest.objects.select_for_update().get(pk=support_request.pk)
        at = now()
        row = SupportMessage.objects.create(request=request, author=actor, from_staff=True,
                                            body=text, created_at=at)
        before = {"status": request.status, "assignee": request.assignee_id}
        request.status = SupportRequestStatus.RESOLVED if close else SupportRequestStatus.WAITING
        request.resolved_at = at if close else None
        request.updated_at = at
        request.assignee = request.assignee or actor
        request.save(update_fields=["status", "resolved_at", "updated_at", "assignee"])
        audit_record(actor=actor, action="support_request.answer", account=request.account,
                     obj=request, before=before, ip=ip,
                     after={"status": request.status, "assignee": request.assignee_id,
                            "message": text})
        _notify_customer(request, row)
    support_request.refresh_from_db()
    return support_request


def support_request_assign(*, support_request: SupportRequest, actor: User,
                           assignee: User | None, ip: str | None = None) -> SupportRequest:
    """Give the request to ``assignee`` (a staff member; None: back to the queue). Audited."""
    if assignee is not None and not assignee.is_staff:
        raise ValidationError(gettext_noop("Requests are assigned to staff members only."))
    with transaction.atomic():
        request = SupportRequest.objects.select_for_update().get(pk=support_request.pk)
        before = request.assignee_id
        request.assignee = assignee
        request.save(update_fields=["assignee"])
        audit_record(actor=actor, action="support_request.assign", account=request.account,
                     obj=request, before={"assignee": before},
                     after={"assignee": assignee.pk if assignee else None}, ip=ip)
    support_request.refresh_from_db()
    return support_request


def support_request_resolve(*, support_request: SupportRequest, actor: User,
                            ip: str | None = None) -> SupportRequest:
    """Mark the request resolved without a message (the answer was given elsewhere, e.g. by the
    refund's or the order's own e-mail). Audited; a resolved request stays resolved."""
    with transaction.atomic():
        request = SupportRequest.objects.select_for_update().get(pk=support_request.pk)
        if request.status != SupportRequestStatus.RESOLVED:
            before = request.status
            at = now()
            request.status, request.resolved_at = SupportRequestStatus.RESOLVED, at
            request.assignee = request.assignee or actor
            request.save(update_fields=["status", "resolved_at", "assignee"])
            audit_record(actor=actor, action="support_request.resolve", account=request.account,
                         obj=request, before={"status": before},
                         after={"status": request.status}, ip=ip)
    support_request.refresh_from_db()
    return support_request


# --- e-mails -------------------------------------------------------------------------------------

def _staff_recipient(request: SupportRequest) -> tuple[str, str]:
    """(address, name) of who handles ``request`` on the staff side."""
    if request.assignee_id is not None and request.assignee.is_active:
        who = request.assignee
        return who.email, who.get_full_name() or who.email
    account = request.account
    if account.is_corporate and account.advisor_id is not None:
        who = account.advisor
        return who.email, who.get_full_name() or who.email
    return settings.PRORATA_SUPPORT_EMAIL, ""


def _notify_staff(request: SupportRequest, message: SupportMessage) -> None:
    from prorata.notifications.outbox import outbox_enqueue

    to, name = _staff_recipient(request)
    outbox_enqueue(
        to=to, template="support_to_staff", language="en",
        dedupe_key=f"support:message:{message.pk}:staff",
        context={"request_id": request.pk, "account": request.account.name,
                 "kind": request.kind, "author": message.author.email, "body": message.body,
                 "name": name, "reopened": request.messages.filter(from_staff=True).exists(),
                 "url": reverse("admin:support_supportrequest_change", args=[request.pk])},
    )


def _notify_customer(request: SupportRequest, message: SupportMessage) -> None:
    from prorata.notifications.outbox import outbox_enqueue

    account = request.account
    people = {member.user for member in Membership.objects.filter(
        account=account, is_billing_contact=True, user__is_active=True).select_related("user")}
    author = request.user
    if author.is_active and Membership.objects.filter(account=account, user=author).exists():
        people.add(author)
    url = reverse("billing:support_request", args=[account.pk, request.pk])
    for person in sorted(people, key=lambda user: user.pk):
        outbox_enqueue(
            to=person.email, template="support_reply",
            language=person.language or account.language,
            dedupe_key=f"support:message:{message.pk}:{person.pk}",
            context={"request_id": request.pk, "kind": request.kind, "body": message.body,
                     "name": person.get_full_name() or person.email,
                     "resolved": request.status == SupportRequestStatus.RESOLVED, "url": url},
        )
