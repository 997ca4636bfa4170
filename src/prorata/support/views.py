"""The customer's Support pages (Assistance), under ``/billing/<account>/support/``: the account's
requests with their status, a form to open one, and each request as a thread with a reply form.

Thin edges: :func:`account_for` first (404 for another account, 403 without the billing role), then
one service call. A request of another account is a 404 even for a member of this one.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from prorata.accounts.models import Account, BillingMode, User
from prorata.accounts.permissions import Action, account_for, can
from prorata.billing.models import Document, DocumentKind
from prorata.catalog.models import Plan
from prorata.subscriptions.selectors import cart_count
from prorata.support.models import SupportRequest, SupportRequestKind
from prorata.support.services import support_message_post, support_request_create
from prorata.web.errors import error_message
from prorata_core.errors import ProrataError


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _context(user: User, account: Account) -> dict[str, Any]:
    """The sub-navigation's needs and who answers: a corporate account's advisor (S3, S14)."""
    manage = can(user, Action.MANAGE_BILLING, account)
    advisor = None
    if account.billing_mode == BillingMode.CORPORATE and account.advisor is not None:
        advisor = {"name": account.advisor.get_full_name() or account.advisor.email,
                   "email": account.advisor.email}
    return {"account": account, "manage": manage,
            "billing": can(user, Action.VIEW_BILLING, account),
            "cart_count": cart_count(account=account) if manage else 0, "advisor": advisor}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@login_required
@require_http_methods(["GET", "POST"])
def support_index(request: HttpRequest, account_id: int) -> HttpResponse:
    """The account's requests, newest first, and the form to open one; the refused downgrade's
    one-click request posts here with its prefilled text and target."""
    user = _user(request)
    account = account_for(user, account_id, Action.MANAGE_BILLING)
    source = request.POST if request.method == "POST" else request.GET
    form = {
        "kind": source.get("kind") or SupportRequestKind.BILLING_QUESTION,
        "message": source.get("message", ""),
        "invoice": _int(source.get("invoice")),
        "product_code": source.get("product_code", ""),
        "target_plan": source.get("target_plan", ""),
        "target_cycle": source.get("target_cycle", ""),
        "target_quantity": _int(source.get("target_quantity")),
    }
    error = None
    if request.method == "POST":
        try:
            created = support_request_create(
                account=account, user=user, kind=form["kind"], message=form["message"],
                invoice_id=form["invoice"], product_code=form["product_code"],
                target_plan=form["target_plan"], target_cycle=form["target_cycle"],
                target_quantity=form["target_quantity"],
            )
        except ProrataError as refused:
            error = error_message(refused)
        else:
            if created.assignee_id is not None and account.is_corporate:
                messages.success(request, gettext(
                    "Your request was sent to %(name)s, your advisor. The answer comes here and "
                    "by e-mail.") % {"name": created.assignee.get_full_name()
                                     or created.assignee.email})
            else:
                messages.success(request, gettext(
                    "Your request was sent to our support team. We answer here and by e-mail, "
                    "usually within one business day."))
            return redirect("billing:support_request", account_id=account.pk,
                            request_id=created.pk)
    return render(request, "support/index.html", {
        **_context(user, account), "form": form, "error": error,
        "kinds": SupportRequestKind.choices,
        "requests": SupportRequest.objects.filter(account=account).order_by("-updated_at", "-id"),
        "invoices": Document.objects.filter(account=account, kind=DocumentKind.INVOICE,
                                            number__isnull=False).order_by("-issued_at", "-id")[:50],
        "plans": Plan.objects.filter(active=True).order_by("rank"),
    }, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def support_thread(request: HttpRequest, account_id: int, request_id: int) -> HttpResponse:
    """One request and its messages; a reply reopens it."""
    user = _user(request)
    account = account_for(user, account_id, Action.MANAGE_BILLING)
    thread = (SupportRequest.objects.filter(account=account, pk=request_id)
              .select_related("invoice").first())
    if thread is None:
        raise Http404("No such request")
    error, reply = None, ""
    if request.method == "POST":
        reply = request.POST.get("message", "")
        try:
            support_message_post(support_request=thread, user=user, message=reply)
        except ProrataError as refused:
            error = error_message(refused)
        else:
            messages.success(request, gettext("Your reply was sent to our support team."))
            return redirect("billing:support_request", account_id=account.pk,
                            request_id=thread.pk)
    plan = Plan.objects.filter(code=thread.target_plan).first() if thread.target_plan else None
    return render(request, "support/thread.html", {
        **_context(user, account), "thread": thread, "error": error, "reply": reply,
        "thread_messages": thread.messages.select_related("author"), "target_plan": plan,
    }, status=400 if error else 200)
