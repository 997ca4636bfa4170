"""The console's account overview: everything staff need about one customer account on one page,
read-only; the changes are the actions it links to (refund, order on the customer's behalf,
credit adjustment), each its own audited service.

Reached from the account list and from each support request. A role that may not see the account
gets 403 (no account page at all: operators) or 404 (another advisor's account).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import pgettext_lazy

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
from prorata.common.formatting import format_money
from prorata.console.scope import NOTHING, account_scope
from prorata.jobs.models import Renewal
from prorata.subscriptions.models import Subscription, SubscriptionEvent
from prorata.support.models import SupportRequest
from prorata_core.errors import ProrataError
from prorata_core.money import Money

#: How a billing period reads in the automatic answer to the customer ("billed monthly").
CYCLE_WORDS = {"monthly": pgettext_lazy("billed …", "monthly"),
               "quarterly": pgettext_lazy("billed …", "quarterly"),
               "annual": pgettext_lazy("billed …", "annually")}

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


#: How a history entry's fields read in the console, in this order; others follow as ``key: value``.
_HISTORY_LABELS = (("status", "status"), ("auto_renew", "renews"), ("invoice", "invoice"),
                   ("invoiced_amount", "invoiced"), ("period_start", "from"),
                   ("period_end", "to"))


def history_summary(after: Any, currency: str) -> str:
    """A subscription history entry's fields in words (``Lite × 5, monthly · €55.00 per license ·
    status active · from 2026-03-01 00:00 UTC``), not its raw JSON: money in the account's currency,
    instants in UTC as the page's headings say."""
    if not isinstance(after, dict):
        return "" if after is None else str(after)
    parts, done = [], {"plan", "cycle", "quantity", "unit_amount", "currency", "version"}
    if after.get("plan"):
        text = str(after["plan"]).capitalize()
        if after.get("quantity") is not None:
            text += f" × {after['quantity']}"
        if after.get("cycle"):
            text += f", {after['cycle']}"
        parts.append(text)
    money_currency = str(after.get("currency") or currency or "EUR")
    if isinstance(after.get("unit_amount"), int):
        parts.append(f"{console_money(after['unit_amount'], money_currency)} per license")
    for key, label in _HISTORY_LABELS:
        if key not in after:
            continue
        done.add(key)
        value = after[key]
        if key == "invoiced_amount" and isinstance(value, int):
            value = console_money(value, money_currency)
        elif key in {"period_start", "period_end"}:
            value = _utc_text(value)
        elif key == "auto_renew":
            value = "yes" if value else "no"
        parts.append(f"{label} {value}")
    parts += [f"{key}: {value}" for key, value in after.items() if key not in done]
    return " · ".join(parts)


def _utc_text(value: Any) -> str:
    from datetime import datetime

    from prorata.common.clock import instant_from_json

    if isinstance(value, str):
        try:
            value = instant_from_json(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


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
            "at": event.at, "what": event.get_kind_display(),
            "after": history_summary(event.after, currency),
            "actor": event.actor.email if event.actor else "",
        })
    for renewal in Renewal.objects.filter(account=account).select_related("invoice"):
        timeline.setdefault(renewal.subscription_id, []).append({
            "at": renewal.period_start, "what": f"renewed ({renewal.get_status_display()})",
            "after": history_summary({"invoice": renewal.invoice.number,
                                      "period_end": renewal.period_end}, currency),
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
        "balance": console_money(balance.amount, balance.currency) if balance is not None else "—",
        "documents": rows, "payments": payments, "refunds": refunds, "ledger": ledger,
        "requests": SupportRequest.objects.filter(account=account)
        .select_related("assignee").order_by("-updated_at")[:LATEST],
        "audit": AuditEntry.objects.filter(account=account)[:LATEST],
    })


# --- an order on the customer's behalf ------------------------------------------------------------

def _staff_item(source: Any, product_code: str, currency: str) -> tuple[Any, str]:
    """The checkout item the form asks for, or (None, what is wrong)."""
    from prorata.subscriptions.selectors import CheckoutItem

    plan, cycle = source.get("plan", ""), source.get("cycle", "")
    try:
        quantity = int(source.get("quantity", ""))
    except ValueError:
        return None, "Give the number of licenses as a whole number."
    unit_amount = None
    if (source.get("unit_price") or "").strip():
        try:
            unit_amount = Money.of(source["unit_price"].strip(), currency or "EUR").amount
        except ProrataError as error:
            return None, error.message
    if not plan or not cycle:
        return None, "Choose the plan and the billing period."
    return CheckoutItem(product_code, plan, cycle, quantity, unit_amount), ""


def staff_order(request: HttpRequest, account_id: int, product_code: str, admin_site: Any
                ) -> HttpResponse:
    """Change (or buy) a product for the customer with the billing center's own engine: the
    order summary first (``?preview``), then Place the order (POST, the summary's fingerprint and a
    submission key). The customer gets the same confirmation and receipt as if they had ordered;
    the linked support request (``request``) is answered and resolved."""
    import uuid

    from prorata.catalog.models import BillingCycle, Plan
    from prorata.subscriptions.selectors import may_act_as_staff, order_quote
    from prorata.subscriptions.services import checkout_place

    user: User = request.user  # type: ignore[assignment]
    account = account_for_staff(user, account_id)
    if not may_act_as_staff(user, account):
        raise PermissionDenied
    source = request.POST if request.method == "POST" else request.GET
    support_request = SupportRequest.objects.filter(
        pk=int(source["request"]) if source.get("request", "").isdigit() else 0,
        account=account).first()
    subscription = (Subscription.objects.filter(account=account, product__code=product_code)
                    .select_related("plan", "cycle").first())
    initial = {"plan": "", "cycle": "", "quantity": "1", "unit_price": "", "reason": ""}
    if subscription is not None:
        initial.update(plan=subscription.plan.code, cycle=subscription.cycle.code,
                       quantity=str(subscription.quantity))
    if support_request is not None and support_request.target_plan:
        initial.update(plan=support_request.target_plan,
                       cycle=support_request.target_cycle or initial["cycle"],
                       quantity=str(support_request.target_quantity or initial["quantity"]),
                       reason=f"Support request #{support_request.pk}")
    form = {key: source.get(key, value) for key, value in initial.items()}
    error, quote, placed = "", None, None
    item, error = (_staff_item(form, product_code, account.currency)
                   if request.method == "POST" or "preview" in request.GET else (None, ""))
    if request.method == "POST" and item is not None:
        reason = (form["reason"] or "").strip()
        if not reason:
            error = "Give the reason (e.g. the support request): it is kept in the audit log."
        else:
            # The engine prices the order again and compares it with the summary shown (its
            # fingerprint); a replay of the same submission key returns the first order.
            try:
                placed = checkout_place(
                    account=account, user=user, idempotency_key=request.POST.get("key", ""),
                    expected=[request.POST.get("fingerprint", "")], items=[item],
                    by_staff=True)
            except ProrataError as refused:
                error = refused.message
            else:
                if not placed.replayed:
                    _after_staff_order(request, user, account, item, placed, reason,
                                       support_request)
                messages.success(request, f"Order placed for {account.name} ({placed.status}).")
                return HttpResponseRedirect(reverse("admin:accounts_account_overview",
                                                    args=[account.pk]))
    if item is not None:
        try:
            quote = order_quote(account=account, user=user, product_code=product_code,
                                plan_code=item.plan_code, cycle_code=item.cycle_code,
                                quantity=item.quantity, by_staff=True,
                                unit_amount=item.unit_amount)
        except ProrataError as refused:
            error = error or refused.message
        except KeyError:
            error = error or "This plan or billing period is not sold in the account's currency."
    summary = None
    if quote is not None:
        totals = quote.totals
        summary = {
            "lines": [{"description": line.description,
                       "amount": console_money(line.amount.amount, line.amount.currency),
                       "tax": console_money(line.tax.amount, line.tax.currency)}
                      for line in quote.order.lines],
            "subtotal": console_money(totals.subtotal.amount, totals.subtotal.currency),
            "tax": console_money(totals.tax.amount, totals.tax.currency),
            "total": console_money(totals.total.amount, totals.total.currency),
            "credit_applied": console_money(totals.credit_applied.amount,
                                            totals.credit_applied.currency),
            "amount_due": console_money(totals.amount_due.amount, totals.amount_due.currency),
            "credit_created": console_money(totals.credit_created.amount,
                                            totals.credit_created.currency),
            "next_billing_date": quote.next_billing_date,
            "fingerprint": quote.fingerprint,
        }
    return render(request, "admin/console/staff_order.html", {
        **admin_site.each_context(request), "title": f"Order for {account.name}",
        "opts": Account._meta, "account": account, "product_code": product_code,
        "subscription": subscription, "form": form, "error": error, "summary": summary,
        "plans": Plan.objects.filter(active=True).order_by("rank"),
        "cycles": BillingCycle.objects.order_by("months"),
        "support_request": support_request, "key": request.POST.get("key") or uuid.uuid4().hex,
        "overview": reverse("admin:accounts_account_overview", args=[account.pk]),
    }, status=400 if error and request.method == "POST" else 200)


def _after_staff_order(request: HttpRequest, user: User, account: Account, item: Any,
                       placed: Any, reason: str, support_request: SupportRequest | None) -> None:
    """Who ordered for whom, why and from where; the linked request answered and resolved."""
    from prorata.accounts.services import audit_record
    from prorata.accounts.throttle import client_ip
    from prorata.catalog.models import Plan
    from prorata.support.services import support_request_answer

    audit_record(actor=user, action="staff.order", account=account, obj=placed.order,
                 ip=client_ip(request),
                 after={"reason": reason, "item": item.as_json(), "status": placed.status,
                        "support_request": support_request.pk if support_request else None})
    if support_request is not None:
        from django.utils import translation
        from django.utils.translation import gettext

        plan = Plan.objects.get(code=item.plan_code)
        # The automatic answer is in the customer's language, as their e-mails are.
        with translation.override(support_request.user.language or account.language):
            answer = gettext(
                "Done: your subscription is now %(plan)s, %(count)s license(s), billed "
                "%(cycle)s. The confirmation and the receipt are in your e-mail and on your "
                "Transactions page.") % {"plan": plan.name, "count": item.quantity,
                                         "cycle": str(CYCLE_WORDS.get(item.cycle_code,
                                                                     item.cycle_code))}
        support_request_answer(support_request=support_request, actor=user, close=True,
                               ip=client_ip(request), answer=answer)
