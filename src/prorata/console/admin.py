"""The console's pages for the staff's money actions: refund a paid invoice (and approve or turn
down the refunds awaiting a second approval), grant account credit, and the operators' limits.

Each action page shows what will happen before it does it, carries a submission key (the same
form posted twice acts once), and calls one service of :mod:`prorata.console.services`, which
checks the role again and audits who, on whose behalf, why and from which IP.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from prorata.accounts.models import Account, User
from prorata.accounts.throttle import client_ip
from prorata.billing.models import Document, DocumentKind
from prorata.common.console import ReadOnlyAdmin
from prorata.console.audited import AuditedAdmin
from prorata.console.models import CreditAdjustment, StaffLimits, StaffRefund, StaffRefundStatus
from prorata.console.scope import account_scope
from prorata.console.services import (
    credit_adjust,
    credit_cap,
    invoice_refundable,
    may_handle_money,
    refund_approve,
    refund_reject,
    refund_request,
    staff_limits,
)
from prorata.console.views import console_money
from prorata.support.models import SupportRequest
from prorata_core.errors import ProrataError
from prorata_core.money import Money


def _money_actor(request: HttpRequest) -> User:
    user: User = request.user  # type: ignore[assignment]
    if not (user.is_superuser or may_handle_money(user, Account(advisor_id=user.pk))):
        raise PermissionDenied  # operators, and staff without a role
    return user


def _parse_amount(text: str, currency: str) -> Money:
    return Money.of((text or "").strip(), currency)


def _overview(account_id: int) -> str:
    return reverse("admin:accounts_account_overview", args=[account_id])


class MoneyActionAdmin(ReadOnlyAdmin):
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and (
            user.is_superuser or may_handle_money(user, Account(advisor_id=user.pk))))  # type: ignore[arg-type]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).filter(
            account_scope(request.user, "account__"))  # type: ignore[arg-type]


@admin.register(StaffRefund)
class StaffRefundAdmin(MoneyActionAdmin):
    list_display = ("created_at", "account", "invoice", "amount_display", "status",
                    "requested_by", "approved_by", "decide_link")
    list_filter = ("status",)
    list_select_related = ("account", "invoice", "requested_by", "approved_by")
    search_fields = ("account__name", "invoice__number", "reason")

    @admin.display(description="amount")
    def amount_display(self, obj: StaffRefund) -> str:
        return console_money(obj.amount, obj.currency)

    @admin.display(description="")
    def decide_link(self, obj: StaffRefund) -> str:
        from django.utils.html import format_html

        if obj.status != StaffRefundStatus.AWAITING_APPROVAL:
            return ""
        return format_html('<a href="{}">Approve or turn down</a>',
                           reverse("admin:console_staffrefund_decide", args=[obj.pk]))

    def get_urls(self) -> list[Any]:
        return [
            path("new/<int:invoice_id>/", self.admin_site.admin_view(self.new_view),
                 name="console_staffrefund_new"),
            path("<int:refund_id>/decide/", self.admin_site.admin_view(self.decide_view),
                 name="console_staffrefund_decide"),
            *super().get_urls(),
        ]

    def new_view(self, request: HttpRequest, invoice_id: int) -> HttpResponse:
        """Refund a paid invoice, whole or in part: the amount (tax included) and the reason."""
        user = _money_actor(request)
        invoice = (Document.objects.filter(account_scope(user, "account__"))
                   .filter(pk=invoice_id, kind=DocumentKind.INVOICE, number__isnull=False)
                   .select_related("account").first())
        if invoice is None:
            raise Http404("No such invoice")
        if not may_handle_money(user, invoice.account):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        support_request = SupportRequest.objects.filter(
            pk=int(source["request"]) if source.get("request", "").isdigit() else 0,
            account=invoice.account).first()
        left = invoice_refundable(invoice).amount
        error = ""
        amount_text = source.get("amount") or Money(left, invoice.currency).as_decimal_string()
        if request.method == "POST":
            try:
                done = refund_request(
                    invoice=invoice, amount=_parse_amount(amount_text, invoice.currency),
                    reason=request.POST.get("reason", ""), actor=user,
                    idempotency_key=request.POST.get("key", ""), ip=client_ip(request),
                    support_request=support_request)
            except ProrataError as refused:
                error = refused.message
            else:
                self._tell(request, done)
                return HttpResponseRedirect(_overview(invoice.account_id))
        limits = staff_limits(invoice.currency)
        return render(request, "admin/console/refund.html", {
            **self.admin_site.each_context(request), "opts": self.opts,
            "title": f"Refund invoice {invoice.number}", "invoice": invoice,
            "total": console_money(invoice.total, invoice.currency),
            "left": console_money(left, invoice.currency), "amount": amount_text,
            "reason": request.POST.get("reason", "") if request.method == "POST" else "",
            "threshold": console_money(limits.refund_approval_above, invoice.currency),
            "key": request.POST.get("key") or uuid.uuid4().hex, "error": error,
            "support_request": support_request, "overview": _overview(invoice.account_id),
        }, status=400 if error else 200)

    def _tell(self, request: HttpRequest, done: StaffRefund) -> None:
        amount = console_money(done.amount, done.currency)
        if done.status == StaffRefundStatus.REFUNDED:
            self.message_user(request, f"{amount} refunded to the card; credit note "
                              f"{done.credit_note.number} e-mailed to the customer.",  # type: ignore[union-attr]
                              messages.SUCCESS)
        elif done.status == StaffRefundStatus.AWAITING_APPROVAL:
            self.message_user(request, f"The refund of {amount} is above the approval threshold: "
                              "it waits for a second staff member's approval.", messages.WARNING)
        elif done.status == StaffRefundStatus.FAILED:
            self.message_user(request, f"The refund of {amount} FAILED: {done.message} Credit "
                              f"note {done.credit_note.number} stays unpaid; its amount is "  # type: ignore[union-attr]
                              "credit on the account.", messages.ERROR)
        else:
            self.message_user(request, f"The refund of {amount} is sent; the provider has not "
                              f"answered yet. {done.message}", messages.WARNING)

    def decide_view(self, request: HttpRequest, refund_id: int) -> HttpResponse:
        """Approve (not the one who asked) or turn down a refund awaiting approval."""
        user = _money_actor(request)
        staff_refund = self.get_queryset(request).filter(pk=refund_id).select_related(
            "invoice", "account", "requested_by").first()
        if staff_refund is None:
            raise Http404("No such refund")
        error = ""
        if request.method == "POST":
            try:
                if request.POST.get("action") == "approve":
                    done = refund_approve(staff_refund=staff_refund, actor=user,
                                          ip=client_ip(request))
                    self._tell(request, done)
                else:
                    refund_reject(staff_refund=staff_refund, actor=user,
                                  reason=request.POST.get("reason", ""), ip=client_ip(request))
                    self.message_user(request, "The refund is turned down.", messages.SUCCESS)
            except ProrataError as refused:
                error = refused.message
            else:
                return HttpResponseRedirect(reverse("admin:console_staffrefund_changelist"))
        return render(request, "admin/console/decide.html", {
            **self.admin_site.each_context(request), "opts": self.opts,
            "title": "Approve a refund", "refund": staff_refund, "error": error,
            "amount": console_money(staff_refund.amount, staff_refund.currency),
            "own": staff_refund.requested_by_id == user.pk,
        }, status=400 if error else 200)


@admin.register(CreditAdjustment)
class CreditAdjustmentAdmin(MoneyActionAdmin):
    list_display = ("created_at", "account", "amount_display", "reason", "actor", "credit_note")
    list_select_related = ("account", "actor", "credit_note")
    search_fields = ("account__name", "reason")

    @admin.display(description="amount")
    def amount_display(self, obj: CreditAdjustment) -> str:
        return console_money(obj.amount, obj.currency)

    def get_urls(self) -> list[Any]:
        return [
            path("new/<int:account_id>/", self.admin_site.admin_view(self.new_view),
                 name="console_creditadjustment_new"),
            *super().get_urls(),
        ]

    def new_view(self, request: HttpRequest, account_id: int) -> HttpResponse:
        user = _money_actor(request)
        account = Account.objects.filter(account_scope(user), pk=account_id).first()
        if account is None:
            raise Http404("No such account")
        if not may_handle_money(user, account):
            raise PermissionDenied
        currency = account.currency or "EUR"
        cap = credit_cap(user, currency)
        error = ""
        if request.method == "POST":
            try:
                granted = credit_adjust(
                    account=account,
                    amount=_parse_amount(request.POST.get("amount", ""), currency),
                    reason=request.POST.get("reason", ""), actor=user,
                    idempotency_key=request.POST.get("key", ""), ip=client_ip(request))
            except ProrataError as refused:
                error = refused.message
            else:
                self.message_user(request, f"{console_money(granted.amount, granted.currency)} "
                                  f"credited (credit note {granted.credit_note.number}).",
                                  messages.SUCCESS)
                return HttpResponseRedirect(_overview(account.pk))
        return render(request, "admin/console/credit.html", {
            **self.admin_site.each_context(request), "opts": self.opts,
            "title": f"Credit {account.name}", "account": account, "currency": currency,
            "cap": console_money(cap, currency) if cap is not None else "no limit",
            "amount": request.POST.get("amount", ""), "reason": request.POST.get("reason", ""),
            "key": request.POST.get("key") or uuid.uuid4().hex, "error": error,
            "overview": _overview(account.pk),
        }, status=400 if error else 200)


@admin.register(StaffLimits)
class StaffLimitsAdmin(AuditedAdmin):
    """Operators set the refund approval threshold and the credit caps (audited as settings)."""

    audit_label = "setting.staff_limits"
    list_display = ("currency", "refund_approval_above", "agent_credit_cap",
                    "advisor_credit_cap")


# django-otp's device pages answer a missing device with a server error and show TOTP secrets;
# the console keeps only what a superuser needs: see a staff member's devices and delete a lost
# one (the staff member then enrols again at the next sign-in).
for _device_model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device_model):
        admin.site.unregister(_device_model)


class DeviceAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "confirmed")
    search_fields = ("user__email",)
    fields = ("user", "name", "confirmed")
    readonly_fields = ("user", "name", "confirmed")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        from prorata.accounts.services import audit_record

        audit_record(actor=request.user,  # type: ignore[arg-type]
                     action="auth.second_factor_removed", obj=obj.user, ip=client_ip(request),
                     after={"device": obj._meta.model_name, "name": obj.name})
        super().delete_model(request, obj)


admin.site.register(TOTPDevice, DeviceAdmin)
admin.site.register(StaticDevice, DeviceAdmin)
