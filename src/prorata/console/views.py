"""The console's account overview: everything staff need about one customer account on one page,
read-only; the changes are the actions it links to (refund, order on the customer's behalf,
credit adjustment), each its own audited service.

Reached from the account list and from each support request. A role that may not see the account
gets 403 (no account page at all: operators) or 404 (another advisor's account).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from prorata.accounts.models import Account, AuditEntry, Membership, User
from prorata.billing.models import (
    Document,
    DocumentKind,
    DocumentStatus,
    LedgerEntry,
    Payment,
    PaymentStatus,
    Refund,
)
from prorata.billing.selectors import account_balance
from prorata.console.scope import NOTHING, account_scope
from prorata.jobs.models import Renewal
from prorata.subscriptions.models import Subscription, SubscriptionEvent
from prorata.support.models import SupportRequest
from prorata.web.formatting import format_money
from prorata_core.money import Money

#: Rows per section: the newest ones; the full lists are the console's own pages.
LATEST = 50


def console_money(amount: int, currency: str) -> str:
    """Minor units shown as money in the account's currency for the (English) console:
    716400 EUR → €7,164.00."""
    if not currency:
        return str(amount)
    return format_money(Money(amount, currency), "en")


def account_for_staff(user: User, account_id: int) -> Account:
    """The account if ``user``'s role may see it: 403 for a role that sees no account, 404 for
    one outside their scope (another advisor's)."""
    scope = account_scope(user)
    if scope == NOTHING:
        raise PermissionDenied
    account = Account.objects.filter(scope, pk=account_id).select_related("advisor").first()
    if account is None:
        raise Http404("No such account")
    return account


def refundable(invoice: Document) -> int:
    """What is left to refund on a paid invoice: its card payments minus their refunds that
    succeeded or are still pending (minor units)."""
    paid = invoice.payments.filter(status=PaymentStatus.SUCCEEDED, method="card").aggregate(
        total=Sum("amount"))["total"] or 0
    refunded = Refund.objects.filter(
        payment__invoice=invoice, status__in=[PaymentStatus.SUCCEEDED, PaymentStatus.PENDING],
    ).aggregate(total=Sum("amount"))["total"] or 0
    return max(paid - refunded, 0)


def account_overview(request: HttpRequest, account_id: int, admin_site: Any) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    account = account_for_staff(user, account_id)
    currency = account.currency
    subscriptions = list(Subscription.objects.filter(account=account)
                         .select_related("product", "plan", "cycle"))
    timeline: dict[int, list[dict[str, Any]]] = {s.pk: [] for s in subscriptions}
    for event in (SubscriptionEvent.objects.filter(subscription__account=account)
                  .select_related("actor").order_by("at", "id")):
        timeline[event.subscription_id].append({
            "at": event.at, "what": event.get_kind_display(), "after": event.after,
            "actor": event.actor.email if event.actor else "",
        })
    for renewal in Renewal.objects.filter(account=account).select_related("invoice"):
        timeline.setdefault(renewal.subscription_id, []).append({
            "at": renewal.period_start, "what": f"renewed ({renewal.get_status_display()})",
            "after": {"invoice": renewal.invoice.number, "period_end": renewal.period_end},
            "actor": "",
        })
    for entries in timeline.values():
        entries.sort(key=lambda entry: entry["at"])
    documents = list(Document.objects.filter(account=account, number__isnull=False)
                     .select_related("refers_to").order_by("-issued_at", "-id")[:LATEST])
    rows = []
    for document in documents:
        rows.append({
            "document": document,
            "total": console_money(document.total, document.currency),
            "amount_due": console_money(document.amount_due, document.currency),
            "refundable": (console_money(refundable(document), document.currency)
                           if document.kind == DocumentKind.INVOICE
                           and document.status == DocumentStatus.PAID else ""),
        })
    payments = [{"payment": p, "amount": console_money(p.amount, p.currency)}
                for p in Payment.objects.filter(account=account)
                .select_related("invoice")[:LATEST]]
    refunds = [{"refund": r, "amount": console_money(r.amount, r.currency)}
               for r in Refund.objects.filter(account=account)
               .select_related("payment", "actor")[:LATEST]]
    ledger = [{"entry": e, "amount": console_money(e.amount, e.currency)}
              for e in LedgerEntry.objects.filter(account=account)
              .select_related("document")[:LATEST]]
    balance = account_balance(account) if currency else None
    return render(request, "admin/console/account_overview.html", {
        **admin_site.each_context(request), "title": f"Account: {account.name}",
        "account": account, "opts": Account._meta,
        "members": Membership.objects.filter(account=account).select_related("user")
        .order_by("user__email"),
        "subscriptions": [{"subscription": s, "timeline": timeline.get(s.pk, []),
                           "unit_amount": console_money(s.unit_amount, s.currency)}
                          for s in subscriptions],
        "balance": console_money(balance.amount, balance.currency) if balance else "—",
        "documents": rows, "payments": payments, "refunds": refunds, "ledger": ledger,
        "requests": SupportRequest.objects.filter(account=account)
        .select_related("assignee").order_by("-updated_at")[:LATEST],
        "audit": AuditEntry.objects.filter(account=account)[:LATEST],
    })
