"""The console's pages for invoices and credit notes (read-only), with the advisor's one action:
recording a bank transfer received for an open invoice (S14).

Documents are immutable once issued, so nothing here edits them; a transfer is recorded through
:func:`prorata.billing.services.invoice_record_payment` (payment, ledger entry, audit entry, receipt
e-mail). Corporate advisors see the documents of the accounts they advise; support agents all.
The "overdue" filter (``?overdue=yes``) is the advisors' follow-up list of net-30 invoices unpaid
after their due date (linked from the console home).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import StaffRole
from prorata.accounts.permissions import Action, can, staff_roles
from prorata.billing.models import Document, DocumentKind, DocumentStatus
from prorata.billing.receipts import document_pdf
from prorata.billing.services import invoice_record_payment
from prorata.common.clock import now
from prorata.common.console import ReadOnlyAdmin
from prorata.console.scope import account_scope
from prorata.console.views import console_money
from prorata_core.errors import ProrataError
from prorata_core.money import Money


class TransferForm(forms.Form):
    amount = forms.CharField(label=_("Amount received"), help_text=_("e.g. 48000.00"))
    reference = forms.CharField(label=_("Bank reference"), max_length=120)


def overdue_invoices(queryset: QuerySet[Document], at: datetime) -> QuerySet[Document]:
    """Invoices on payment terms (corporate, net 30) still unpaid after their due date, at ``at``
    (the rule of :func:`prorata.jobs.endings.flag_overdue_corporate_invoices`), oldest due first."""
    return queryset.filter(kind=DocumentKind.INVOICE, status=DocumentStatus.OPEN,
                           amount_due__gt=0, due_at__lt=at).order_by("due_at", "id")


class OverdueFilter(admin.SimpleListFilter):
    """The advisor's follow-up list (S14): invoices past their due date, unpaid (the project
    clock's now). What each role sees of it is the page's own scope (an advisor: their accounts)."""

    title = _("payment")
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", _("overdue (unpaid after its due date)"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() != "yes":
            return queryset
        return overdue_invoices(queryset, now())


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ("number", "kind", "account", "issued_at", "due_at", "overdue_display",
                    "status", "total_display", "amount_due_display", "pdf_link", "transfer_link")
    list_filter = (OverdueFilter, "kind", "status", "account__billing_mode")
    search_fields = ("number", "account__name")
    date_hierarchy = "issued_at"
    list_select_related = ("account",)
    ordering = ("-issued_at", "-id")

    @admin.display(description=_("overdue"))
    def overdue_display(self, obj: Document) -> str:
        """How long an unpaid invoice on payment terms is past its due date ("12 days")."""
        at = now()
        if (obj.kind != DocumentKind.INVOICE or obj.status != DocumentStatus.OPEN
                or obj.amount_due <= 0 or obj.due_at is None or obj.due_at >= at):
            return ""
        days = (at - obj.due_at).days
        return ngettext("%(days)d day", "%(days)d days", days) % {"days": days}

    @admin.display(description=_("total"))
    def total_display(self, obj: Document) -> str:
        return console_money(obj.total, obj.currency)

    @admin.display(description=_("amount due"))
    def amount_due_display(self, obj: Document) -> str:
        return console_money(obj.amount_due, obj.currency)

    @admin.display(description="PDF")
    def pdf_link(self, obj: Document) -> str:
        if obj.number is None:
            return ""
        return format_html('<a href="{}">PDF</a>',
                           reverse("admin:billing_document_pdf", args=[obj.pk]))

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Money formatted in the document's currency and its PDF, not raw minor units and JSON.
        return ["number", "kind", "account", "refers_to", "order", "status", "issued_at",
                "due_at", "paid_at", "currency", "subtotal_display", "tax_display",
                "total_display", "credit_applied_display", "amount_paid_display",
                "amount_due_display", "tax_rule", "tax_mention", "pdf_link"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return self.get_fields(request, obj)

    @admin.display(description=_("subtotal"))
    def subtotal_display(self, obj: Document) -> str:
        return console_money(obj.subtotal, obj.currency)

    @admin.display(description=_("tax"))
    def tax_display(self, obj: Document) -> str:
        return console_money(obj.tax, obj.currency)

    @admin.display(description=_("credit applied"))
    def credit_applied_display(self, obj: Document) -> str:
        return console_money(obj.credit_applied, obj.currency)

    @admin.display(description=_("amount paid"))
    def amount_paid_display(self, obj: Document) -> str:
        return console_money(obj.amount_paid, obj.currency)

    def pdf_view(self, request: HttpRequest, document_id: int) -> HttpResponse:
        """The document's PDF (English: the console's language), for staff who may see it."""
        document = get_object_or_404(self.get_queryset(request), pk=document_id,
                                     number__isnull=False)
        filename, content = document_pdf(document=document, language="en")
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{filename}"'
        return response

    @admin.display(description=_("bank transfer"))
    def transfer_link(self, obj: Document) -> str:
        if obj.kind != DocumentKind.INVOICE or obj.status != DocumentStatus.OPEN:
            return ""
        url = reverse("admin:billing_document_transfer", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Record a transfer"))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        return super().get_queryset(request).filter(
            account_scope(request.user, "account__"))  # type: ignore[arg-type]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and (
            user.is_superuser or staff_roles(user) & {StaffRole.SUPPORT_AGENT,  # type: ignore[arg-type]
                                                      StaffRole.CORPORATE_ADVISOR}))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_urls(self) -> list[Any]:
        return [
            path("<int:document_id>/pdf/", self.admin_site.admin_view(self.pdf_view),
                 name="billing_document_pdf"),
            path("<int:document_id>/transfer/", self.admin_site.admin_view(self.transfer_view),
                 name="billing_document_transfer"),
            *super().get_urls(),
        ]

    def transfer_view(self, request: HttpRequest, document_id: int) -> HttpResponse:
        """Record a bank transfer for an open invoice: only staff who manage the account's billing
        (its advisor, a superuser); the amount is at most what is due."""
        invoice = get_object_or_404(self.get_queryset(request), pk=document_id,
                                    kind=DocumentKind.INVOICE)
        if not can(request.user, Action.MANAGE_BILLING, invoice.account):  # type: ignore[arg-type]
            raise PermissionDenied
        form = TransferForm(request.POST or None, initial={
            "amount": Money(invoice.amount_due, invoice.currency).as_decimal_string()})
        if request.method == "POST" and form.is_valid():
            try:
                invoice_record_payment(
                    invoice=invoice, reference=form.cleaned_data["reference"],
                    amount=Money.of(form.cleaned_data["amount"], invoice.currency),
                    actor=request.user,  # type: ignore[arg-type]
                )
            except ProrataError as refused:
                form.add_error("amount", refused.message)
            else:
                self.message_user(request, gettext("The transfer is recorded on invoice %(number)s.")
                                  % {"number": invoice.number}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:billing_document_changelist"))
        return render(request, "admin/billing/transfer.html", {
            **self.admin_site.each_context(request), "invoice": invoice, "form": form,
            "amount_due": Money(invoice.amount_due, invoice.currency), "opts": self.model._meta,
            "title": gettext("Record a bank transfer"),
        })
