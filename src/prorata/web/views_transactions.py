"""View all transactions (S10, S12; issue 16): one row per invoice or credit note with its status
and, on demand, the ledger rows behind it; filters by type, status and dates that survive paging;
the filtered list as a streamed CSV file.

Thin edges: :func:`account_for` first (404 for another account, 403 without the billing role),
then one selector, then a page or a streamed response.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import User
from prorata.accounts.permissions import Action, account_for, can
from prorata.billing.export import history_csv
from prorata.billing.history import document_history
from prorata.billing.models import DocumentKind, LedgerKind
from prorata.common.formatting import format_date, format_money
from prorata.subscriptions.selectors import cart_count
from prorata_core.money import Money

TRANSACTIONS_PER_PAGE = 25
KINDS = {DocumentKind.INVOICE.value: _("Invoice"), DocumentKind.CREDIT_NOTE.value: _("Credit note")}
STATUS_LABELS = {
    "paid": pgettext_lazy("document status", "Paid"),
    "credit_applied": pgettext_lazy("document status", "Credit applied"),
    "refunded": pgettext_lazy("document status", "Refunded"),
    "open": pgettext_lazy("document status", "Open"),
    "void": pgettext_lazy("document status", "Void"),
}
ENTRY_LABELS = {
    LedgerKind.INVOICE: _("Charge"), LedgerKind.CREDIT_NOTE: _("Credit"),
    LedgerKind.PAYMENT: _("Payment"), LedgerKind.REFUND: _("Refund"),
}


def _day(text: str | None) -> datetime | None:
    """A ``YYYY-MM-DD`` filter day as the start of that day in the active (account's) zone."""
    if not text:
        return None
    try:
        day = datetime.fromisoformat(text)
    except ValueError:
        return None
    return day.replace(tzinfo=timezone.get_current_timezone())


class Filters:
    """The page's filters, read once from the query string; unknown values are ignored."""

    def __init__(self, request: HttpRequest) -> None:
        query = request.GET
        self.kind = query.get("kind", "") if query.get("kind") in KINDS else ""
        self.status = query.get("status", "") if query.get("status") in STATUS_LABELS else ""
        self.start_text = query.get("start", "") if _day(query.get("start")) else ""
        self.end_text = query.get("end", "") if _day(query.get("end")) else ""
        self.start = _day(self.start_text)
        end = _day(self.end_text)
        # The end day is included; the last day there is (9999-12-31, no day after it: an
        # OverflowError, a 500) includes everything, as no end does.
        self.end = end + timedelta(days=1) if end and end.date() < date.max else None

    def selector_args(self) -> dict[str, Any]:
        return {"kinds": [self.kind] if self.kind else None,
                "statuses": [self.status] if self.status else None,
                "start": self.start, "end": self.end}

    def query(self, **extra: str) -> str:
        pairs = [("kind", self.kind), ("status", self.status), ("start", self.start_text),
                 ("end", self.end_text), *extra.items()]
        from urllib.parse import urlencode

        return urlencode([(key, value) for key, value in pairs if value])


def history_rows(rows: list[Any], account_id: int) -> list[dict[str, Any]]:
    """Rows of the documents table, their texts already in the reader's language."""
    language = get_language() or "en"
    out = []
    for row in rows:
        document = row.document
        out.append({
            "day": format_date(document.issued_at, language),
            "kind": document.kind, "label": str(KINDS.get(document.kind, document.kind)),
            "number": document.number, "status": row.status,
            "status_label": str(STATUS_LABELS.get(row.status, row.status)),
            "total": format_money(Money(document.total, document.currency), language),
            "pdf_url": reverse("billing:document", args=[account_id, document.pk]),
            "entries": [{
                "day": format_date(entry.at, language),
                "label": str(ENTRY_LABELS.get(entry.kind, entry.kind)),
                "memo": (entry.payment.method_label if entry.payment is not None
                         and entry.payment.method_label else entry.memo),
                "amount": format_money(Money(entry.amount, entry.currency), language),
            } for entry in row.entries],
        })
    return out


@login_required
def transactions(request: HttpRequest, account_id: int) -> HttpResponse:
    """Every invoice and credit note, newest first, filtered; keyset pages (no count)."""
    user: User = request.user  # type: ignore[assignment]
    account = account_for(user, account_id, Action.VIEW_BILLING)
    filters = Filters(request)
    page = document_history(account=account, cursor=request.GET.get("cursor") or None,
                            limit=TRANSACTIONS_PER_PAGE, **filters.selector_args())
    manage = can(user, Action.MANAGE_BILLING, account)
    return render(request, "web/billing/transactions.html", {
        "account": account, "rows": history_rows(page.rows, account.pk),
        "older": f"?{filters.query(cursor=page.next_cursor)}" if page.next_cursor else None,
        "newest": f"?{filters.query()}", "first_page": not request.GET.get("cursor"),
        "filters": filters, "kinds": [(code, str(label)) for code, label in KINDS.items()],
        "statuses": [(code, str(label)) for code, label in STATUS_LABELS.items()],
        "export_url": reverse("billing:transactions_csv", args=[account.pk])
        + (f"?{filters.query()}" if filters.query() else ""),
        "manage": manage, "billing": True, "cart_count": cart_count(account=account) if manage
        else 0,
    })


@login_required
def transactions_csv(request: HttpRequest, account_id: int) -> StreamingHttpResponse:
    """The filtered list as CSV, streamed chunk by chunk (100,000 documents fit in one chunk's
    memory)."""
    user: User = request.user  # type: ignore[assignment]
    account = account_for(user, account_id, Action.VIEW_BILLING)
    filters = Filters(request)
    response = StreamingHttpResponse(history_csv(account=account, **filters.selector_args()),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="transactions-{account.pk}.csv"'
    return response
