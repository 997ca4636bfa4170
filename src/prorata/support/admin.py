"""The support queue in the staff console: filter requests (kind, status, age, account,
assignee), assign them, read each thread, reply, resolve.

A request's page is the thread with a reply form, not a model form: staff never edit a request's
fields, they act on it through :mod:`prorata.support.services` (audited, e-mailed). Each role sees
the requests of the accounts it may see (:func:`prorata.console.scope.account_scope`): an advisor
only those of the accounts they advise; operators none.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from prorata.accounts.models import User
from prorata.accounts.throttle import client_ip
from prorata.common.clock import now
from prorata.console.scope import account_scope
from prorata.support.models import SupportRequest, SupportRequestKind, SupportRequestStatus
from prorata.support.services import (
    support_request_answer,
    support_request_assign,
    support_request_resolve,
)
from prorata_core.errors import ProrataError


class AgeFilter(admin.SimpleListFilter):
    """How long since the last message (the project clock's now)."""

    title = _("waiting for")
    parameter_name = "age"
    DAYS = {"1": 1, "3": 3, "7": 7}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1", _("more than a day")), ("3", _("more than 3 days")),
                ("7", _("more than a week"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        days = self.DAYS.get(self.value() or "")
        if days is None:
            return queryset
        return queryset.filter(updated_at__lt=now() - timedelta(days=days))


@admin.register(SupportRequest)
class SupportRequestAdmin(admin.ModelAdmin):
    list_display = ("number", "account", "user", "kind", "status", "assignee", "created_at",
                    "updated_at")
    list_filter = ("status", "kind", AgeFilter, ("account", admin.RelatedOnlyFieldListFilter),
                   ("assignee", admin.RelatedOnlyFieldListFilter))
    search_fields = ("account__name", "user__email", "messages__body")
    list_select_related = ("account", "user", "assignee")
    ordering = ("status", "updated_at", "id")
    actions = ("assign_to_me", "resolve")

    @admin.display(description="#", ordering="id")
    def number(self, obj: SupportRequest) -> str:
        return f"#{obj.pk}"

    def get_queryset(self, request: HttpRequest) -> QuerySet[SupportRequest]:
        # An advisor sees the requests of the accounts they advise, not every customer's.
        return super().get_queryset(request).filter(
            account_scope(request.user, "account__"))  # type: ignore[arg-type]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Assign to me"), permissions=["change"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[SupportRequest]) -> None:
        for support_request in queryset:
            support_request_assign(support_request=support_request,
                                   actor=request.user,  # type: ignore[arg-type]
                                   assignee=request.user,  # type: ignore[arg-type]
                                   ip=client_ip(request))
        self.message_user(request, f"{queryset.count()} request(s) assigned to you.",
                          messages.SUCCESS)

    @admin.action(description=_("Mark as resolved"), permissions=["change"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[SupportRequest]) -> None:
        for support_request in queryset:
            support_request_resolve(support_request=support_request,
                                    actor=request.user,  # type: ignore[arg-type]
                                    ip=client_ip(request))
        self.message_user(request, f"{queryset.count()} request(s) resolved.", messages.SUCCESS)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The thread, with reply / assign / resolve (POST ``action``)."""
        support_request = self.get_object(request, object_id)
        if support_request is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, support_request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        user: User = request.user  # type: ignore[assignment]
        may_act = self.has_change_permission(request, support_request)
        error, reply = "", ""
        if request.method == "POST":
            if not may_act:
                from django.core.exceptions import PermissionDenied

                raise PermissionDenied
            action = request.POST.get("action", "")
            reply = request.POST.get("message", "")
            try:
                if action in ("reply", "reply_resolve"):
                    support_request_answer(support_request=support_request, actor=user,
                                           answer=reply, close=action == "reply_resolve",
                                           ip=client_ip(request))
                    self.message_user(request, "Your answer is sent to the customer.",
                                      messages.SUCCESS)
                elif action == "assign":
                    support_request_assign(support_request=support_request, actor=user,
                                           assignee=user, ip=client_ip(request))
                    self.message_user(request, "The request is assigned to you.",
                                      messages.SUCCESS)
                elif action == "resolve":
                    support_request_resolve(support_request=support_request, actor=user,
                                            ip=client_ip(request))
                    self.message_user(request, "The request is resolved.", messages.SUCCESS)
                else:
                    error = "Choose what to do: reply, assign to me or resolve."
            except ProrataError as refused:
                error = refused.message
            if not error:
                return HttpResponseRedirect(request.path)
        return render(request, "admin/support/thread.html", {
            **self.admin_site.each_context(request), "opts": self.opts,
            "title": f"Support request #{support_request.pk}", "original": support_request,
            "thread": support_request, "may_act": may_act, "error": error, "reply": reply,
            "thread_messages": support_request.messages.select_related("author"),
            "overview_url": reverse("admin:accounts_account_overview",
                                    args=[support_request.account_id]),
            "kinds": SupportRequestKind, "statuses": SupportRequestStatus,
        })
